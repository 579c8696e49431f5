import calculateSlot from 'cluster-key-slot';
import { Redis as NodeClient, type Cluster, type RedisOptions } from 'ioredis';
import type { Partition } from './layout.js';
import type { Redis } from './client.js';

/** `host:port` of a node connection, as Cluster.slots names nodes. */
export const nodeKey = (client: { options: { host?: string | undefined; port?: number | undefined } }): string => `${client.options.host}:${client.options.port}`;

/** The hash slot of a partition's keys. */
export const slotOf = (p: Partition): number => calculateSlot(p.prefix);

/**
 * The node (`host:port`) that serves partition `p`, as `cluster` last learnt the slot map: its
 * master, or with `replica` its first replica that the client reaches and `replica` accepts,
 * when it has one.
 */
export function nodeServing(cluster: Redis, p: Partition, replica?: (node: string) => boolean): string {
  const nodes = nodesOf(cluster, p);
  // A replica the cluster client failed to reach (failed, or gone with its master) serves nothing;
  // one it has not used yet (its connections are lazy: 'wait') may, so that readers go back to a
  // replica that joined after a failover.
  const usable = (n: string) => ['ready', 'wait'].includes(connectionTo(cluster, n)?.status ?? 'none');
  const live = replica ? nodes.slice(1).find((n) => usable(n) && replica(n)) : undefined;
  const node = live ?? nodes[0];
  if (node === undefined) throw new Error(`no node serves slot ${slotOf(p)} yet: connect the cluster client first`);
  return node;
}

/** The nodes (`host:port`) of partition `p`'s slot, its master first, as `cluster` last learnt the slot map. */
export function nodesOf(cluster: Redis, p: Partition): string[] {
  return (cluster as unknown as Cluster).slots[slotOf(p)] ?? [];
}

/** `cluster`'s own connection to `node`, which carries the commands it routes there. */
export function connectionTo(cluster: Redis, node: string): Redis | undefined {
  return (cluster as unknown as Cluster).nodes('all').find((n) => nodeKey(n) === node) as Redis | undefined;
}

/**
 * A plain connection of its own to one node of a cluster (`host:port`), named `taskcast:<name>`
 * in CLIENT LIST, lazy (connect() it), failing its commands at once while disconnected (no
 * offline queue, no retries per command); `options` add to or override that.
 */
export function nodeConnection(node: string, name: string, options: RedisOptions): NodeClient {
  const at = node.lastIndexOf(':');
  return new NodeClient({
    host: node.slice(0, at),
    port: Number(node.slice(at + 1)),
    lazyConnect: true,
    connectionName: `taskcast:${name}`,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    ...options,
  });
}

/** Refreshes `cluster`'s slot map (after a failover or a slot move showed it stale). */
export function refreshSlots(cluster: Redis): Promise<void> {
  return new Promise<void>((resolve) => (cluster as unknown as Cluster).refreshSlotsCache(() => resolve()));
}

const slotMapWatchers = new WeakMap<Redis, Set<() => void>>();

/**
 * Calls `watcher` each time `cluster` has read the slot map (at least every second, see
 * createCluster); returns the way to stop. One 'refresh' listener per client, however many watch.
 */
export function onSlotMap(cluster: Redis, watcher: () => void): () => void {
  const watchers = slotMapWatchers.get(cluster) ?? listenForSlotMaps(cluster);
  watchers.add(watcher);
  return () => void watchers.delete(watcher);
}

function listenForSlotMaps(cluster: Redis): Set<() => void> {
  const watchers = new Set<() => void>();
  cluster.on('refresh', () => {
    for (const w of watchers) w();
  });
  slotMapWatchers.set(cluster, watchers);
  return watchers;
}

/**
 * Whether `err` says a read's slot is moving or moved to another node: MOVED, ASK (mid-migration),
 * or a blocked read ended because its key left the node (UNBLOCKED). A reader follows it after
 * reading the slot map again (BlockingReader.settle).
 */
export const isSlotMoving = (err: unknown): boolean =>
  err instanceof Error && /^(MOVED |ASK |UNBLOCKED the stream key no longer exists)/.test(err.message);
