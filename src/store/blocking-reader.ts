import type { Cluster } from 'ioredis';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { connectionTo, nodeConnection, nodeKey, nodeServing, nodesOf, onSlotMap, refreshSlots } from './cluster-nodes.js';
import type { Partition } from './layout.js';
import { closeRedis, duplicateForBlocking, ensureConnected, logConnectionErrors, reconnectDelayMs, type Redis } from './redis.js';
import { atMost } from '../at-most.js';
import { replicaSyncOf } from './replica-sync.js';

/** How long settle() waits for the connection to a partition's new node, ms. */
const CONNECT_WAIT_MS = 2000;

/**
 * A connection of its own for one blocking reader (the hub's XREAD, a worker's XREADGROUP), with
 * the one way to interrupt it: CLIENT UNBLOCK of its current client id, sent on the main
 * connection. The id changes on every reconnect, so it is read again on each 'ready'.
 *
 * With a Cluster client as `main`, the reader serves one partition: a plain connection to the
 * master of the partition's slot (or, with `replica`, to its first replica, READONLY), pointed
 * again after a failover or a slot move, and unblocked through `main`'s connection to that node.
 * A replica is read only while it is known to be in sync with its master (ReplicaSync, checked
 * each second): until then, and whenever a check fails, the master is read.
 * It follows as soon as `main` reads a slot map that names another node for the partition (each
 * second, see createCluster): the connection to the old node is dropped, so a read that a hung
 * node leaves unanswered fails then instead of when it times out (`moves` tells the caller that
 * its read failed because the reader moved). It fails its commands at once while disconnected,
 * so a read on a dead node errs instead of waiting for it.
 */
export class BlockingReader {
  private current: Redis;
  private id: number | undefined;
  private stale = false;
  private closed = false;
  private followed = 0;
  /** The connection to the node last followed to, until settle() waited for it. */
  private connecting: Promise<boolean> | undefined;
  private stopWatchingSlots: () => void = () => undefined;
  private readonly log: Logger;
  /** The partition served, in cluster mode. */
  private readonly partition: Partition | undefined;

  constructor(
    private readonly main: Redis,
    private readonly name: string,
    logger: Logger,
    partition?: Partition,
    private readonly replica = false,
    /** The longest BLOCK of its reads, ms: in cluster mode a read unanswered 5 s longer fails (a hung node). */
    private readonly maxBlockMs = 10_000,
  ) {
    this.log = logger;
    this.partition = main.isCluster ? partition : undefined;
    // Cluster mode: connected by start(), once the replicas' sync is known (ReplicaSync).
    this.current = this.partition === undefined ? this.watch(duplicateForBlocking(main, name, logger)) : this.connectTo(this.owner(), false);
    if (this.partition !== undefined) this.stopWatchingSlots = onSlotMap(main, this.onSlotMap);
  }

  /** How many times it followed its partition to another node: a read that failed while this changed failed because of it. */
  get moves(): number {
    return this.followed;
  }

  /** The connection to read on; call settle() before each read. */
  get client(): Redis {
    return this.current;
  }

  /** The node it reads on (`host:port`). */
  get node(): string {
    return nodeKey(this.current);
  }

  /** Connects, however long Redis takes to appear. */
  async start(): Promise<void> {
    if (this.partition !== undefined) {
      const sync = this.replica ? replicaSyncOf(this.main) : undefined;
      if (sync) {
        await sync.checked(this.main as unknown as Cluster);
        const owner = this.owner();
        if (owner !== nodeKey(this.current)) this.current = this.connectTo(owner, false);
      }
      this.connecting = ensureConnected(this.current).then(() => true, () => false);
    }
    await this.settle();
    await ensureConnected(this.current);
    await this.refreshId();
  }

  /**
   * Cluster mode: after a failed read (`failed`), refreshes the slot map; points the connection at
   * the node that now serves the partition. Resolves at once otherwise.
   */
  async settle(failed = false): Promise<void> {
    if (this.partition === undefined || this.closed) return;
    if (failed || this.stale) {
      this.stale = false;
      await refreshSlots(this.main);
    }
    this.followOwner();
    const connecting = this.connecting;
    this.connecting = undefined;
    // Bounded: a node that refuses connections keeps the client reconnecting (it never ends), and a
    // read on it fails at once anyway (no offline queue); the next settle looks again.
    if (connecting && !(await atMost(connecting, CONNECT_WAIT_MS))) this.stale = true;
  }

  /** `main` read the slot map: follows the partition at once if another node serves it now. */
  private readonly onSlotMap = (): void => {
    if (this.closed) return;
    try {
      this.followOwner();
    } catch {
      // No node serves the partition in this map (a failover under way): a later map will name one.
    }
  };

  /**
   * Follows the partition when another node than the current one serves it, as `main` last learnt
   * the slot map; with `replica`, also from its master to its replica once that is in sync, and
   * back once it is not.
   */
  private followOwner(): void {
    const owner = this.owner();
    const current = nodeKey(this.current);
    if (owner === current) return;
    const nodes = nodesOf(this.main, this.partition!);
    let why = 'blocking reader follows its partition to another node';
    if (nodes.includes(current)) {
      why = owner === nodes[0] ? "blocking reader reads its partition's master: the replica is not in sync" : "blocking reader reads its partition's replica, in sync";
    }
    this.follow(owner, why);
  }

  /** Points the reader at `owner`; a read in flight on the old node fails now. */
  private follow(owner: string, why: string): void {
    this.log.info({ reader: this.name, node: owner }, why);
    const old = this.current;
    this.current = this.connectTo(owner);
    this.id = undefined;
    this.followed += 1;
    this.connecting = ensureConnected(this.current).then(() => true, () => false);
    old.disconnect();
  }

  /**
   * Makes a blocked read return as if it timed out (nothing is lost). True when a read was
   * unblocked; false when none was blocked yet (its command still on the wire), the id is not
   * known, or the main connection is down.
   */
  async unblock(): Promise<boolean> {
    const via = this.partition === undefined ? this.main : connectionTo(this.main, nodeKey(this.current));
    if (this.id === undefined || !via || via.status !== 'ready') return false;
    return (await via.client('UNBLOCK', this.id)) === 1;
  }

  /**
   * The one way to interrupt a read: unblock() until it unblocks one, or until `wanted()` turns
   * false (e.g. the read returned by itself). CLIENT UNBLOCK answers 0 while the read is still on
   * the wire, so it is sent again after min(attempt, 20) ms; one that fails goes to `onError` and
   * is sent again too.
   */
  async interrupt(wanted: () => boolean, onError: (err: unknown) => void = () => undefined): Promise<void> {
    for (let attempt = 0; wanted(); attempt++) {
      try {
        if (await this.unblock()) return;
      } catch (err) {
        onError(err);
      }
      await delay(Math.min(attempt, 20));
    }
  }

  /** Drops the connection at once: a blocked read fails, and no reconnect follows. */
  disconnect(): void {
    this.closed = true;
    this.stopWatchingSlots();
    this.current.disconnect();
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closed = true;
    this.stopWatchingSlots();
    return closeRedis(this.current);
  }

  /**
   * The node to read on, as the main client (connected first) last learnt the slot map: with
   * `replica`, the partition's first replica in sync (ReplicaSync), else its master.
   */
  private owner(): string {
    const sync = this.replica ? replicaSyncOf(this.main) : undefined;
    return nodeServing(this.main, this.partition!, sync && ((node) => sync.inSync(node)));
  }

  /** A connection to `node`, connecting at once unless `now` is false. */
  private connectTo(node: string, now = true): Redis {
    const client = nodeConnection(node, this.name, {
      readOnly: this.replica,
      commandTimeout: this.maxBlockMs + 5000,
      retryStrategy: reconnectDelayMs,
    });
    logConnectionErrors(client, this.name, this.log);
    client.on('end', () => (this.stale = true));
    if (now) client.connect().catch(() => (this.stale = true));
    return this.watch(client);
  }

  private watch(client: Redis): Redis {
    client.on('ready', () => {
      if (client === this.current) void this.refreshId();
    });
    return client;
  }

  private async refreshId(): Promise<void> {
    try {
      this.id = (await this.current.client('ID')) as number;
    } catch (err) {
      this.log.warn({ err }, 'could not read a blocking reader\'s client id');
    }
  }
}
