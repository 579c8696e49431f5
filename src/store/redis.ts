import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions, type Result } from 'ioredis';
import type { Logger } from '../logger.js';
import { corruptedOr } from './corrupted.js';
import { FEED_STREAM, FEED_TAG_PREFIX, TASK_KEY_PREFIX } from './keys.js';

type Arg = string | number;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    startTasks(...args: Arg[]): Result<string[][], Context>;
    appendEvents(...args: Arg[]): Result<string[][], Context>;
    claimTasks(...args: Arg[]): Result<string[][], Context>;
    cancelTask(...args: Arg[]): Result<string[], Context>;
    deadLetter(...args: Arg[]): Result<[string, 'FAILED' | 'CORRUPTED' | 'UNTOUCHED'], Context>;
    heartbeat(...args: Arg[]): Result<string[], Context>;
    trimCommands(...args: Arg[]): Result<number, Context>;
    pruneConsumers(...args: Arg[]): Result<string[], Context>;
    promoteScheduled(...args: Arg[]): Result<string[][], Context>;
    maintainSlots(...args: Arg[]): Result<string[], Context>;
  }
}

export type { Redis };

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
 * A script's source: the feed constants that prelude.lua's feed_append uses (key names from
 * keys.ts, bounds from the config), the shared prelude (is_terminal, wrong_type, feed_append),
 * then the script.
 */
function lua(file: string, feed: FeedSettings): string {
  const cacheKey = `${file}:${feed.maxLen}:${feed.progressMs}:${feed.tagTtlS}`;
  let source = sources.get(cacheKey);
  if (source === undefined) {
    const constants =
      `local TASK_KEY_PREFIX = ${JSON.stringify(TASK_KEY_PREFIX)}\n` +
      `local FEED_STREAM, FEED_TAG_PREFIX = ${JSON.stringify(FEED_STREAM)}, ${JSON.stringify(FEED_TAG_PREFIX)}\n` +
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
}

/**
 * A client with our Lua scripts defined (EVALSHA, loaded on first use). It does not connect until
 * `connect()` is called; whoever creates it closes it with `quit()` or `disconnect()`.
 */
export function createRedis(url: string, options: RedisClientOptions, extra: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    connectionName: `taskcast:${options.name}`,
    enableOfflineQueue: options.offlineQueue ?? true,
    maxRetriesPerRequest: options.offlineQueue === false ? 0 : null,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    ...extra,
  });
  const feed = options.feed ?? DEFAULT_FEED_SETTINGS;
  for (const s of scripts) {
    const source = lua(s.file, feed);
    client.defineCommand(s.name, s.keys === 'varying' ? { lua: source } : { numberOfKeys: s.keys, lua: source });
  }
  logConnectionErrors(client, options.name, options.logger);
  return client;
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

/** A second connection to the same server, for a blocking reader that must not hold up others. */
export function duplicateForBlocking(client: Redis, name: string, logger?: Logger): Redis {
  const reader = client.duplicate({
    connectionName: `taskcast:${name}`,
    enableOfflineQueue: true,
    maxRetriesPerRequest: null,
    // A blocking reader has one command in flight: batching gains nothing, and deferring the
    // next read to the end of the event-loop turn leaves the reader unparked for that long.
    enableAutoPipelining: false,
  });
  logConnectionErrors(reader, name, logger);
  return reader;
}

/** One log line per outage rather than one per reconnect attempt. */
function logConnectionErrors(client: Redis, name: string, logger: Logger | undefined): void {
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

/** Closes a client politely, falling back to a hard disconnect when the server is gone. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  await client.quit().catch(() => client.disconnect());
}
