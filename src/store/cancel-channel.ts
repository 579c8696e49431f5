import type { Redis as NodeClient } from 'ioredis';
import type { Logger } from '../logger.js';
import { nodeConnection, nodeServing, refreshSlots } from './cluster-nodes.js';
import { CANCEL_CHANNEL } from './keys.js';
import { CLUSTER_LAYOUT } from './layout.js';
import { closeRedis, duplicateForBlocking, ensureConnected, reconnectDelayMs, type Redis } from './redis.js';

/** A subscription to cancel requests; close() is idempotent. */
export interface CancelSubscription {
  close(): Promise<void>;
}

/**
 * Calls `onCancel(taskId)` for every cancel request published on `tasks:cancel` (cancel-task.lua),
 * over a connection of its own. Messages missed while disconnected are caught by the heartbeat,
 * which reports a requested cancel too.
 */
export async function subscribeCancels(main: Redis, name: string, logger: Logger, onCancel: (taskId: string) => void): Promise<CancelSubscription> {
  if (main.isCluster) {
    const subscriber = new ClusterCancelSubscriber(main, name, logger, onCancel);
    await subscriber.start();
    return subscriber;
  }
  const subscriber = duplicateForBlocking(main, name, logger);
  subscriber.on('message', (_channel: string, taskId: string) => onCancel(taskId));
  await ensureConnected(subscriber);
  await subscriber.subscribe(CANCEL_CHANNEL);
  return { close: () => closeRedis(subscriber) };
}

/**
 * Cluster mode: a cluster's PUBLISH reaches the subscribers of every node, so one plain connection
 * to one node (the master of partition 0) hears every cancel. When that connection ends, the slot
 * map is refreshed and the then master is subscribed to, after reconnectDelayMs. (ioredis's own
 * cluster subscriber picks a new node at once each time its connection ends, so a cluster whose
 * nodes refuse connections spins it at full CPU.)
 */
class ClusterCancelSubscriber implements CancelSubscription {
  private connection: NodeClient | undefined;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly main: Redis,
    private readonly name: string,
    private readonly log: Logger,
    private readonly onCancel: (taskId: string) => void,
  ) {}

  /** Resolves once subscribed, or once the first try failed (the retries go on in the background). */
  async start(): Promise<void> {
    await this.subscribe().catch((err: unknown) => {
      this.log.warn({ err, redis: this.name }, 'could not subscribe to cancels; retrying');
      if (this.connection === undefined) this.resubscribeLater(undefined);
    });
  }

  private async subscribe(): Promise<void> {
    if (this.closed) return;
    const node = nodeServing(this.main, CLUSTER_LAYOUT.partitions[0]!);
    const connection = nodeConnection(node, this.name, { retryStrategy: () => null });
    this.connection = connection;
    // Every failure ends the connection, and its end schedules the next try (logged there).
    connection.on('error', () => undefined);
    connection.on('message', (_channel: string, taskId: string) => this.onCancel(taskId));
    connection.once('end', () => this.resubscribeLater(connection));
    try {
      await connection.connect();
      await connection.subscribe(CANCEL_CHANNEL);
      if (this.failures > 0) this.log.info({ redis: this.name, node }, 'cancel subscription restored');
      this.failures = 0;
    } catch (err) {
      connection.disconnect();
      throw err;
    }
  }

  /** After `ended` (undefined: no connection was made) failed or ended. */
  private resubscribeLater(ended: NodeClient | undefined): void {
    if (this.closed || ended !== this.connection) return;
    this.failures += 1;
    if (this.failures === 1) this.log.warn({ redis: this.name }, 'cancel subscription lost; subscribing again');
    this.retry = setTimeout(() => {
      refreshSlots(this.main)
        .then(() => this.subscribe())
        .catch((err: unknown) => {
          this.log.debug({ err, redis: this.name }, 'could not subscribe to cancels; retrying');
          // A failure before a new connection was made (the slot map): no end event will follow.
          if (this.connection === ended) this.resubscribeLater(ended);
        });
    }, reconnectDelayMs(this.failures)).unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retry);
    if (this.connection) await closeRedis(this.connection);
  }
}
