import type { Cluster, Redis as NodeClient } from 'ioredis';
import { atMost } from '../at-most.js';
import { nodeKey } from './cluster-nodes.js';
import type { Redis } from './client.js';

/** How long a replica found in sync counts as such without another check, ms. */
const IN_SYNC_TTL_MS = 5000;
/** How long one check of a replica may take, ms: a replica that hangs is not in sync. */
const CHECK_MS = 1000;

/**
 * Whether the replica on `connection` holds its master's data, at most behind it and never ahead
 * (INFO replication: a replica whose link to its master is up, no sync under way). A master paused
 * while its replica took over comes back as a replica of the new master holding the writes it took
 * on waking (its clients' commands queued meanwhile), in no task log, until its full resync
 * replaces them: nothing may be read there before.
 */
async function replicaInSync(connection: NodeClient): Promise<boolean> {
  const info = await connection.info('replication');
  const field = (name: string) => new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info)?.[1];
  return field('role') === 'slave' && field('master_link_status') === 'up' && field('master_sync_in_progress') === '0';
}

/**
 * Cluster mode with reads from replicas (RedisClientOptions.readFromReplicas): which replicas are
 * in sync (replicaInSync), checked each time the client reads the slot map (each second, see
 * createCluster). A read goes to a replica only while it is known to be in sync: the client's own
 * reads (`pick`, its scaleReads) and the hub's blocking reads (BlockingReader); the master otherwise.
 */
export class ReplicaSync {
  /** Epoch ms of the last check that found each replica (`host:port`) in sync. */
  private readonly syncedAt = new Map<string, number>();
  private round: Promise<void> | undefined;
  private checkedOnce = false;

  /** Whether `node` was found in sync within IN_SYNC_TTL_MS. */
  inSync(node: string): boolean {
    const at = this.syncedAt.get(node);
    return at !== undefined && Date.now() - at < IN_SYNC_TTL_MS;
  }

  /** ioredis scaleReads for read-only commands: the slot's replicas in sync (one is taken at random), else its master (`nodes[0]`). */
  readonly pick = (nodes: NodeClient[]): NodeClient | NodeClient[] => {
    const synced = nodes.slice(1).filter((n) => n !== undefined && this.inSync(nodeKey(n)));
    return synced.length > 0 ? synced : nodes[0]!;
  };

  /**
   * Checks every replica `cluster` knows (a node that is no replica now is out, whatever it was);
   * one round at a time: a call during a round joins it. Never rejects (a failed check is "not in sync").
   */
  check(cluster: Cluster): Promise<void> {
    this.round ??= this.checkAll(cluster).finally(() => {
      this.round = undefined;
      this.checkedOnce = true;
    });
    return this.round;
  }

  /** Resolves once a round of checks has ended (at once after the first), so that a first read can go to a replica in sync. */
  checked(cluster: Cluster): Promise<void> {
    return this.checkedOnce ? Promise.resolve() : this.check(cluster);
  }

  private async checkAll(cluster: Cluster): Promise<void> {
    const replicas = cluster.nodes('slave');
    const keys = new Set(replicas.map((n) => nodeKey(n)));
    for (const node of this.syncedAt.keys()) if (!keys.has(node)) this.syncedAt.delete(node);
    await Promise.all(
      replicas.map(async (connection) => {
        const node = nodeKey(connection);
        const inSync = await atMost(replicaInSync(connection), CHECK_MS).catch(() => false);
        if (inSync === true) this.syncedAt.set(node, Date.now());
        else this.syncedAt.delete(node);
      }),
    );
  }
}

const syncs = new WeakMap<object, ReplicaSync>();

/** Makes `cluster` read from its replicas that are in sync (its scaleReads must be `sync.pick`). */
export function readFromSyncedReplicas(cluster: Redis, sync: ReplicaSync): void {
  syncs.set(cluster, sync);
}

/** The ReplicaSync of a Cluster client that reads from replicas; undefined otherwise. */
export function replicaSyncOf(redis: Redis): ReplicaSync | undefined {
  return syncs.get(redis);
}
