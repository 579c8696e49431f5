import type { Cluster } from 'ioredis';
import { connectionTo, nodeKey, nodeServing, slotOf } from './cluster-nodes.js';
import type { Partition } from './layout.js';
import type { Redis } from './client.js';
import { replicaSyncOf } from './replica-sync.js';

/**
 * Cluster mode's write confirmation (REDIS_CLUSTER_WAIT_REPLICAS, REDIS_CLUSTER_WAIT_TIMEOUT_MS):
 * a write is reported done only once `replicas` replicas of its master have it, so that a master's
 * death with a replica promoted cannot lose it.
 */
export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
}

const waits = new WeakMap<object, ReplicaWait>();

/** Sets the write confirmation of the writes made through `client` (a Cluster client; none by default). */
export function confirmWrites(client: Redis, wait: ReplicaWait): void {
  waits.set(client, wait);
}

/**
 * A write Redis did not confirm on enough replicas in time: it may or may not survive a failover.
 * Its message starts with NOREPLICAS, which the classifier (unavailable.ts) takes as `refused`:
 * callers retry (the store's writes are idempotent on retry) or answer 503.
 */
export class NotReplicated extends Error {
  constructor(got: number, wanted: number) {
    super(`NOREPLICAS the write reached ${got} of ${wanted} replicas in time`);
    this.name = 'NotReplicated';
  }
}

/**
 * Waits until the writes sent so far to the master of partition `p`, on `redis`'s connection to
 * it, are on the replicas the write confirmation asks for (WAIT), or on every replica the master
 * has when it has fewer (none, after its replica was promoted away: then the write stands
 * unconfirmed, as on a single node, unless the master had replicas before and another master
 * says it no longer serves the slot: a stale master, whose write is refused with NotReplicated).
 * At once for a single node, or without confirmation.
 */
export async function awaitReplicas(redis: Redis, p: Partition): Promise<void> {
  const wait = waits.get(redis);
  if (!redis.isCluster || !wait || wait.replicas === 0) return;
  const node = nodeServing(redis, p);
  const connection = connectionTo(redis, node);
  if (!connection) throw new NotReplicated(0, wait.replicas);
  const wanted = Math.min(wait.replicas, await attachedReplicas(connection, node));
  if (wanted === 0) {
    // A master that had replicas and has none now may be a stale one, back from a pause after its
    // replica took over: what it takes now is lost when it learns that and resyncs.
    if (hadReplicas.has(node) && !(await othersAgree(redis, node, p))) throw new NotReplicated(0, 1);
    return;
  }
  const got = Number(await connection.call('WAIT', wanted, wait.timeoutMs));
  if (got < wanted) {
    attached.delete(node);
    throw new NotReplicated(got, wanted);
  }
}

/** How long a master's count of attached replicas is trusted, ms. */
const ATTACHED_TTL_MS = 1000;
const attached = new Map<string, { count: number; at: number }>();

/**
 * How many replicas are attached to the master `node` (ROLE on `connection`), read again at most
 * every ATTACHED_TTL_MS and after a wait that fell short: a WAIT for more would only time out.
 */
async function attachedReplicas(connection: Redis, node: string): Promise<number> {
  const known = attached.get(node);
  if (known && Date.now() - known.at < ATTACHED_TTL_MS) return known.count;
  const role = (await connection.call('ROLE')) as [string, number, unknown[]];
  const count = role[0] === 'master' ? role[2].length : 0;
  attached.set(node, { count, at: Date.now() });
  if (count > 0) hadReplicas.add(node);
  return count;
}

/** Masters seen with replicas attached (by `host:port`). */
const hadReplicas = new Set<string>();

/**
 * Whether another master of the cluster (the first that `redis` reaches) also says that `node`
 * serves partition `p`'s slot (CLUSTER SLOTS); true when no other master answers.
 */
async function othersAgree(redis: Redis, node: string, p: Partition): Promise<boolean> {
  const other = (redis as unknown as Cluster).nodes('master').find((n) => nodeKey(n) !== node && n.status === 'ready');
  if (!other) return true;
  const slot = slotOf(p);
  const ranges = (await other.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  return range !== undefined && `${range[2][0]}:${range[2][1]}` === node;
}

/**
 * `redis`'s connection to the master of partition `p` when `redis` reads from replicas, for a read
 * whose answer must not come from a replica that is behind: one that is resyncing after a
 * failover or a slot move serves what it had (an empty dataset, even) for seconds. Undefined when
 * reads go to the masters anyway, or the master's connection is not up.
 */
export function masterOf(redis: Redis, p: Partition): Redis | undefined {
  if (!readsFromReplicas(redis)) return undefined;
  let node: string;
  try {
    node = nodeServing(redis, p);
  } catch {
    return undefined;
  }
  const connection = connectionTo(redis, node);
  return connection?.status === 'ready' ? connection : undefined;
}

/**
 * `read` on `redis`, and once more on the master of `p` when its answer is one that a replica that
 * is behind could give (`doubtful`) and `redis` reads from replicas (masterOf).
 */
export async function readOrMaster<T>(redis: Redis, p: Partition, read: (client: Redis) => Promise<T>, doubtful: (answer: T) => boolean): Promise<T> {
  const answer = await read(redis);
  const master = doubtful(answer) ? masterOf(redis, p) : undefined;
  return master ? read(master) : answer;
}

/** Whether `redis` is a Cluster client that reads from replicas (RedisClientOptions.readFromReplicas). */
export function readsFromReplicas(redis: Redis): boolean {
  return replicaSyncOf(redis) !== undefined;
}
