import type { Logger } from '../logger.js';
import { BlockingReader } from '../store/blocking-reader.js';
import { isSlotMoving } from '../store/cluster-nodes.js';
import { redisTrouble } from '../store/unavailable.js';
import type { CommandEntry, CommandQueue } from '../store/command-queue.js';
import { PRIORITIES } from '../wire/events.js';
import type { Redis } from '../store/redis.js';

/** How long a read blocks when idle; bounds how late a lost wake-up could be noticed. */
const READ_BLOCK_MS = 5000;
/** The same while some partition's reader is failing, so that it is tried again soon. */
const RETRY_BLOCK_MS = 250;

/**
 * A worker's reads of new commands: one blocking reader (a connection of its own) per partition
 * of the deployment, one on a single node.
 */
export class CommandReader {
  private readonly readers: BlockingReader[];
  /** Partitions whose last read failed: their reader looks its node up again first. */
  private readonly failing = new Set<number>();
  /** Where the next sweep starts, so that no partition is always served last. */
  private next = 0;

  constructor(
    redis: Redis,
    private readonly queue: CommandQueue,
    name: string,
    private readonly log: Logger,
  ) {
    this.readers = queue.layout.partitions.map((p) => new BlockingReader(redis, queue.layout.cluster ? `${name}:${p.index}` : name, log, p, false, READ_BLOCK_MS));
  }

  async start(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.start()));
  }

  /**
   * Up to `count` new commands: every waiting one of a higher priority, on any partition, before
   * any of a lower one, without blocking; when none waits, the first to come on any partition
   * (waiting at most READ_BLOCK_MS). That wait may return one per stream, more than `count` (the
   * caller hands back what it cannot start). Rejects when every partition's read failed.
   */
  async read(count: number): Promise<CommandEntry[]> {
    const { partitions } = this.queue.layout;
    const out: CommandEntry[] = [];
    const errors = new Map<number, unknown>();
    for (const priority of PRIORITIES) {
      for (let k = 0; k < partitions.length && out.length < count; k++) {
        const i = (this.next + k) % partitions.length;
        if (errors.has(i)) continue;
        const moves = this.readers[i]!.moves;
        try {
          await this.readers[i]!.settle(this.failing.has(i));
          out.push(...(await this.queue.take(this.readers[i]!.client, partitions[i]!, priority, count - out.length)));
          this.failing.delete(i);
        } catch (err) {
          errors.set(i, err);
          this.fail(i, err, moves);
        }
      }
    }
    this.next = (this.next + 1) % partitions.length;
    if (errors.size === partitions.length) throw errors.values().next().value;
    if (out.length > 0) return out;
    return this.awaitAny();
  }

  /** Every healthy partition's reader blocks; the first to get a command ends the others' waits. */
  private async awaitAny(): Promise<CommandEntry[]> {
    const { partitions } = this.queue.layout;
    const blockMs = this.failing.size > 0 ? RETRY_BLOCK_MS : READ_BLOCK_MS;
    const waiting = partitions.filter((p) => !this.failing.has(p.index));
    let answered = false;
    const errors: unknown[] = [];
    const reads = waiting.map(async (p) => {
      const moves = this.readers[p.index]!.moves;
      try {
        const got = await this.queue.await(this.readers[p.index]!.client, p, blockMs);
        if (got.length > 0 && !answered) {
          answered = true;
          for (const other of waiting) if (other !== p) void this.interrupt(this.readers[other.index]!, reads[waiting.indexOf(other)]!);
        }
        return got;
      } catch (err) {
        errors.push(err);
        this.fail(p.index, err, moves);
        return [];
      }
    });
    const got = (await Promise.all(reads)).flat();
    if (waiting.length > 0 && errors.length === waiting.length) throw errors[0];
    return got;
  }

  /**
   * A read of partition `index` failed; `moves` is its reader's count from before the read. A read
   * cut by the reader's move, or told that the partition moves (MOVED, ASK, UNBLOCKED), is no
   * failure to warn of: the next read follows it.
   */
  private fail(index: number, err: unknown, moves: number): void {
    const first = this.queue.layout.cluster && !this.failing.has(index);
    this.failing.add(index);
    if (!first || this.readers[index]!.moves !== moves) return;
    if (isSlotMoving(err)) this.log.info({ err: String(err), partition: index }, 'a partition\'s commands move to another node; following them');
    else this.log.warn({ err: redisTrouble(err) ? String(err) : err, partition: index }, 'reading a partition\'s commands failed');
  }

  /** Unblocks `reader` until its read `pending` (which never rejects) returns. */
  private async interrupt(reader: BlockingReader, pending: Promise<unknown>): Promise<void> {
    let done = false;
    void pending.finally(() => (done = true));
    await reader.interrupt(() => !done);
  }

  /** Makes blocked reads return empty (no entry is lost); false when one could not be unblocked. */
  async unblock(): Promise<boolean> {
    const done = await Promise.all(this.readers.map((r) => r.unblock().catch(() => false)));
    return done.every(Boolean);
  }

  /** Drops the connections at once: blocked reads fail. */
  disconnect(): void {
    for (const r of this.readers) r.disconnect();
  }

  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close()));
  }
}
