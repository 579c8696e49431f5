import type { Logger } from '../logger.js';
import { closeRedis, duplicateForBlocking, ensureConnected, type Redis } from './redis.js';

/**
 * A connection of its own for one blocking reader (the hub's XREAD, a worker's XREADGROUP), with
 * the one way to interrupt it: CLIENT UNBLOCK of its current client id, sent on the main
 * connection. The id changes on every reconnect, so it is read again on each 'ready'.
 */
export class BlockingReader {
  readonly client: Redis;
  private id: number | undefined;
  private readonly log: Logger;

  constructor(
    private readonly main: Redis,
    name: string,
    logger: Logger,
  ) {
    this.log = logger;
    this.client = duplicateForBlocking(main, name, logger);
    this.client.on('ready', () => void this.refreshId());
  }

  /** Connects, however long Redis takes to appear. */
  async start(): Promise<void> {
    await ensureConnected(this.client);
    await this.refreshId();
  }

  /**
   * Makes a blocked read return as if it timed out (nothing is lost). True when a read was
   * unblocked; false when none was blocked yet (its command still on the wire), the id is not
   * known, or the main connection is down.
   */
  async unblock(): Promise<boolean> {
    if (this.id === undefined || this.main.status !== 'ready') return false;
    return (await this.main.client('UNBLOCK', this.id)) === 1;
  }

  /** Drops the connection at once: a blocked read fails, and no reconnect follows. */
  disconnect(): void {
    this.client.disconnect();
  }

  /** Idempotent. */
  close(): Promise<void> {
    return closeRedis(this.client);
  }

  private async refreshId(): Promise<void> {
    try {
      this.id = (await this.client.client('ID')) as number;
    } catch (err) {
      this.log.warn({ err }, 'could not read a blocking reader\'s client id');
    }
  }
}
