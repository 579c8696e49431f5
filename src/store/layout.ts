import calculateSlot from 'cluster-key-slot';
import type { Batcher } from './batcher.js';
import type { Redis } from './client.js';

/** Hash slots of Redis Cluster. */
const SLOTS = 16_384;

/**
 * Partitions of a cluster deployment. Fixed, because a task's keys derive from it: 12 gives an
 * equal share to 1, 2, 3, 4, 6 or 12 masters whose slots are split evenly (as `redis-cli --cluster
 * create` does). Each partition is one hash slot, so a cluster uses at most 12 masters.
 */
export const CLUSTER_PARTITIONS = 12;

/**
 * The keys of one partition: a prefix put before every key name of keys.ts. Every key of a task
 * and every key its scripts touch with it (commands streams, index, feeds, slots, scheduled set,
 * idempotency keys) share the prefix, so each script touches one slot. Single-node mode has one
 * partition with the empty prefix: the key names of the README, unchanged.
 */
export interface Partition {
  readonly index: number;
  /** '' (single node) or a hash tag `{...}` whose slot is this partition's. */
  readonly prefix: string;
}

/** How task ids map to partitions, and which partitions there are. */
export interface Layout {
  readonly cluster: boolean;
  readonly partitions: readonly Partition[];
  /** The partition of a task, from its id alone. */
  of(taskId: string): Partition;
  /** The partition of a string (a task type, an idempotency key) that pins a task to it. */
  pinned(pin: string): Partition;
}

/** First 8 hex digits of a UUID as a number: spread evenly, so its remainder picks a partition. */
const head = (taskId: string): number => Number.parseInt(taskId.slice(0, 8), 16) || 0;

function layout(count: number, prefixOf: (index: number) => string): Layout {
  const partitions = Array.from({ length: count }, (_, index) => ({ index, prefix: prefixOf(index) }));
  return {
    cluster: count > 1,
    partitions,
    of: (taskId) => partitions[head(taskId) % count]!,
    pinned: (pin) => partitions[calculateSlot(pin) % count]!,
  };
}

/**
 * The hash tag of partition `index`: the first of `{t<index>}`, `{t<index>-1}`, ... whose slot
 * lies in the index'th of `count` equal slot ranges, so partitions spread evenly over masters.
 */
function clusterPrefix(index: number, count: number): string {
  const from = Math.floor((index * SLOTS) / count);
  const to = Math.floor(((index + 1) * SLOTS) / count);
  for (let n = 0; ; n++) {
    const tag = n === 0 ? `t${index}` : `t${index}-${n}`;
    const slot = calculateSlot(tag);
    if (slot >= from && slot < to) return `{${tag}}`;
  }
}

export const SINGLE_LAYOUT = layout(1, () => '');
export const CLUSTER_LAYOUT = layout(CLUSTER_PARTITIONS, (i) => clusterPrefix(i, CLUSTER_PARTITIONS));

/** The layout of the deployment `redis` talks to: a Cluster client's is partitioned. */
export function layoutOf(redis: Pick<Redis, 'isCluster'>): Layout {
  return redis.isCluster ? CLUSTER_LAYOUT : SINGLE_LAYOUT;
}

/**
 * A fresh task id (UUID v4) in `partition`: its first 8 hex digits are moved to the nearest value
 * with the partition's remainder, which keeps every other digit random.
 */
export function idIn(partition: Partition, count: number, uuid: string): string {
  if (count === 1) return uuid;
  let value = head(uuid) - (head(uuid) % count) + partition.index;
  if (value > 0xffffffff) value -= count;
  return value.toString(16).padStart(8, '0') + uuid.slice(8);
}

/**
 * One group commit (Batcher) per partition of `layout`, each with its own batches in flight, so
 * that a partition whose master is slow, hung or failing over holds up its own items only.
 * Returns the function that adds an item to its partition's batcher.
 */
export function batchPerPartition<I, R>(
  layout: Layout,
  partitionOf: (item: I) => Partition,
  make: (p: Partition) => Batcher<I, R>,
): (item: I) => Promise<R> {
  const batchers = layout.partitions.map(make);
  return (item) => batchers[partitionOf(item).index]!.add(item);
}
