import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';
import { refreshSlots } from './cluster-nodes.js';
import { corruptedOr } from './corrupted.js';
import { FEED_STREAM, FEED_TAG_PREFIX, TASK_KEY_PREFIX } from './keys.js';
import { ReplicaSync, readFromSyncedReplicas } from './replica-sync.js';
import { confirmWrites, type ReplicaWait } from './replication.js';
import { atMost } from '../at-most.js';

/** The client type, with the script commands below typed on it: src/store/client.ts. */
export type { Redis } from './client.js';

/** `varying`: the key count depends on the number of items, and the first argument gives it. */
const scripts: { name: string; file: string; keys: number | 'varying' }[] = [
  { name: 'appendEvents', file: 'append-events.lua', keys: 'varying' },
  { name: 'claimTasks', file: 'claim-tasks.lua', keys: 'varying' },
  { name: 'startTasks', file: 'start-tasks.lua', keys: 'varying' },
  { name: 'heartbeat', file: 'heartbeat.lua', keys: 'varying' },
  { name: 'promoteScheduled', file: 'promote-scheduled.lua', keys: 'varying' },
  { name: 'maintainSlots', file: 'maintain-slots.lua', keys: 'varying' },
  { name: 'cancelTask', file: 'cancel-task.lua', keys: 4 },
  { name: 'deadLetter', file: 'dead-letter.lua', keys: 4 },
  { name: 'trimCommands', file: 'trim-commands.lua', keys: 1 },
  { name: 'pruneConsumers', file: 'prune-consumers.lua', keys: 1 },
];

/** How the scripts append to the feeds (config FEED_MAXLEN, FEED_PROGRESS_MS, TASK_TTL_S). */
export interface FeedSettings {
  maxLen: number;
  progressMs: number;
  /** A tag's feed expires this long after its latest entry, seconds (TASK_TTL_S, as its tasks do). */
  tagTtlS: number;
}

export const DEFAULT_FEED_SETTINGS: FeedSettings = { maxLen: 100_000, progressMs: 250, tagTtlS: 86_400 };

const sources = new Map<string, string>();

const readLua = (file: string) => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');

/**
 * A script's source: the constants that prelude.lua uses (key names from keys.ts in the script's
 * partition, feed bounds from the config), the shared prelude (is_terminal, wrong_type, feed_append),
 * then the script.
 */
function lua(file: string, feed: FeedSettings): string {
  const cacheKey = `${file}:${feed.maxLen}:${feed.progressMs}:${feed.tagTtlS}`;
  let source = sources.get(cacheKey);
  if (source === undefined) {
    // A script's keys all share one partition (src/store/layout.ts): its hash tag, read off KEYS[1],
    // prefixes the key names the prelude derives.
    const constants =
      `local PARTITION = string.match(KEYS[1] or '', '^{[^}]*}') or ''\n` +
      `local TASK_KEY_PREFIX = PARTITION .. ${JSON.stringify(TASK_KEY_PREFIX)}\n` +
      `local FEED_STREAM, FEED_TAG_PREFIX = PARTITION .. ${JSON.stringify(FEED_STREAM)}, PARTITION .. ${JSON.stringify(FEED_TAG_PREFIX)}\n` +
      `local FEED_MAXLEN, FEED_PROGRESS_MS, FEED_TAG_TTL_S = ${Math.floor(feed.maxLen)}, ${Math.floor(feed.progressMs)}, ${Math.floor(feed.tagTtlS)}\n`;
    source = constants + readLua('prelude.lua') + readLua(file);
    sources.set(cacheKey, source);
  }
  return source;
}

export interface RedisClientOptions {
  /** Shown by CLIENT LIST, so operators can tell our connections apart. */
  name: string;
  /**
   * false: commands fail at once while disconnected instead of queueing, so HTTP callers can
   * answer 503 promptly. Blocking readers keep the default queue and wait for the reconnect.
   */
  offlineQueue?: boolean;
  /** Connection errors are logged here (ioredis reconnects on its own). */
  logger?: Logger;
  /** The feed bounds the scripts apply; DEFAULT_FEED_SETTINGS (the config defaults) when absent. */
  feed?: FeedSettings;
  /** Cluster mode: the write confirmation of the store's writes (replication.ts); none when absent. */
  replicaWait?: ReplicaWait;
  /**
   * Cluster mode: reads go to replicas that are in sync (ReplicaSync, the master's when none
   * is), and so do the hub's blocking reads, so that watchers are only shown what a replica has
   * (README "Redis Cluster").
   */
  readFromReplicas?: boolean;
}

/** Where Redis is: one server's URL, or the seed nodes of a Redis Cluster (REDIS_CLUSTER_NODES). */
export type RedisTarget = string | { cluster: { host: string; port: number }[] };

/**
 * A client with our Lua scripts defined (EVALSHA, loaded on first use). It does not connect until
 * `connect()` is called; whoever creates it closes it with `quit()` or `disconnect()`.
 *
 * For a cluster it is an ioredis Cluster, typed as a Redis: it routes every command with keys to
 * the node of their slot (the store's commands and scripts each touch one slot, see layout.ts),
 * and layoutOf() tells it apart (`isCluster`). Keyless commands go to some node: the store sends
 * those (CLIENT UNBLOCK) to a node it picks itself (blocking-reader.ts).
 *
 * Without ioredis auto-pipelining: the store batches where a round trip carries many calls (group
 * commits, replay pipelines), and auto-pipelining's map of pipelines, changed on every event-loop
 * turn, kept finished commands and their callers alive through young-generation GCs.
 */
export function createRedis(target: RedisTarget, options: RedisClientOptions): Redis {
  const client = typeof target === 'string' ? new Redis(target, clientOptions(options)) : createCluster(target.cluster, options);
  const feed = options.feed ?? DEFAULT_FEED_SETTINGS;
  for (const s of scripts) {
    const source = lua(s.file, feed);
    client.defineCommand(s.name, s.keys === 'varying' ? { lua: source } : { numberOfKeys: s.keys, lua: source });
  }
  logConnectionErrors(client, options.name, options.logger);
  return client;
}

function clientOptions(options: RedisClientOptions): RedisOptions {
  return {
    lazyConnect: true,
    connectionName: `taskcast:${options.name}`,
    enableOfflineQueue: options.offlineQueue ?? true,
    maxRetriesPerRequest: options.offlineQueue === false ? 0 : null,
    retryStrategy: reconnectDelayMs,
  };
}

/**
 * Cluster mode: a command without an answer this long (plus the WAIT timeout) fails as `down`
 * (unavailable.ts) and is retried by its caller, ms: a node that hangs (a paused VM) neither
 * answers nor closes. No store command blocks on these clients.
 */
const CLUSTER_COMMAND_TIMEOUT_MS = 10_000;

/**
 * Cluster mode: the client reads the slot map again this often, ms, whatever its callers do. A
 * hung master answers nothing, so no reply tells the client that its replica took over: the
 * CLUSTERDOWN replies of the failover make ioredis read the map again, but the last such read
 * may come before the promotion (or from a node that has not heard of it yet), and the blocking
 * readers read it only when their worker reads. A map that names the new master moves the slot's
 * commands there, and drops the connection to the hung node (its pending commands fail as
 * `down` and are retried there). Each read is one CLUSTER SLOTS on a short connection of its own,
 * at most `slotsRefreshTimeout` (1 s) per node that does not answer. Not ioredis's own
 * `slotsRefreshInterval`: a quit() during one of its reads re-arms its timer for good, which
 * keeps the process alive.
 */
const CLUSTER_SLOTS_REFRESH_MS = 1000;

function createCluster(seeds: { host: string; port: number }[], options: RedisClientOptions): Redis {
  const { lazyConnect, enableOfflineQueue, retryStrategy, ...redisOptions } = clientOptions(options);
  const sync = options.readFromReplicas ? new ReplicaSync() : undefined;
  const cluster = new Cluster(seeds, {
    lazyConnect,
    enableOfflineQueue,
    clusterRetryStrategy: retryStrategy,
    // While a failover or a slot move is under way, commands wait for the new owner this long
    // between tries, at most `maxRedirections` times: about 13 s, more than a failover takes
    // (cluster-node-timeout plus the election; ioredis defaults: 100 ms, 16 times).
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    maxRedirections: 64,
    scaleReads: sync ? sync.pick : 'master',
    redisOptions: { ...redisOptions, commandTimeout: CLUSTER_COMMAND_TIMEOUT_MS + (options.replicaWait?.timeoutMs ?? 0) },
  });
  if (options.replicaWait) confirmWrites(cluster as unknown as Redis, options.replicaWait);
  if (sync) readFromSyncedReplicas(cluster as unknown as Redis, sync);
  // Neither rejects: a failed read of the map keeps the last one, a failed check of a replica counts it out of sync.
  const refresh = setInterval(() => void refreshSlots(cluster as unknown as Redis).then(() => sync?.check(cluster)), CLUSTER_SLOTS_REFRESH_MS).unref();
  cluster.once('end', () => clearInterval(refresh));
  return cluster as unknown as Redis;
}

/**
 * The replies of a batched script (start-tasks, claim-tasks, append-events), one per item: an
 * item's `{ 'ERR', message }` becomes an Error, which rejects that item alone (see Batcher); a
 * WRONGTYPE one becomes TaskCorrupted, naming the item's task (`taskIds`, in item order).
 */
export function itemReplies<R>(raw: string[][], taskIds: string[]): (R | Error)[] {
  return raw.map((r, i) => {
    if (r[0] !== 'ERR') return r as R;
    return corruptedOr(new Error(r[1] ?? 'script error'), taskIds[i]!) as Error;
  });
}

/**
 * A second connection to the same server, for a blocking reader or a subscriber that must not
 * hold up others. Single node only: in cluster mode those hold plain connections to the node they
 * need (blocking-reader.ts, cancel-channel.ts).
 */
export function duplicateForBlocking(client: Redis, name: string, logger?: Logger): Redis {
  const reader = client.duplicate({
    connectionName: `taskcast:${name}`,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
  });
  logConnectionErrors(reader, name, logger);
  return reader;
}

/** One log line per outage rather than one per reconnect attempt. */
export function logConnectionErrors(client: Redis, name: string, logger: Logger | undefined): void {
  let down = false;
  client.on('error', (err: Error) => {
    if (!down) logger?.warn({ redis: name, err: err.message }, 'redis connection error; reconnecting');
    down = true;
  });
  client.on('ready', () => {
    if (down) logger?.info({ redis: name }, 'redis connection restored');
    down = false;
  });
}

/** Whether the client is connected and ready for commands now (not connecting, reconnecting or closed). */
export function isReady(client: Redis): boolean {
  return client.status === 'ready';
}

/** Resolves once the client is ready, however long Redis takes to appear. */
export async function ensureConnected(client: Redis): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'wait') client.connect().catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    const onReady = () => {
      client.off('end', onEnd);
      resolve();
    };
    const onEnd = () => {
      client.off('ready', onReady);
      reject(new Error('Redis connection ended before it was ready'));
    };
    client.once('ready', onReady);
    client.once('end', onEnd);
  });
}

/** How long closeRedis waits for QUIT's answer before it drops the connection, ms. */
const QUIT_TIMEOUT_MS = 1000;

/**
 * Closes a client politely (QUIT), falling back to a hard disconnect when the server is gone or
 * does not answer within QUIT_TIMEOUT_MS (a cluster client's QUIT to a node that died waits in its
 * offline queue otherwise). Resolves within QUIT_TIMEOUT_MS.
 */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  if (!(await atMost(client.quit().then(() => true, () => false), QUIT_TIMEOUT_MS))) client.disconnect();
}

/**
 * The one backoff while Redis is unavailable, ms: before reconnect attempt `times` of a lost
 * connection, or after the `times`-th failed try of a loop (1 for the first): 100 doubling, at most 2000.
 */
export const reconnectDelayMs = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000);
