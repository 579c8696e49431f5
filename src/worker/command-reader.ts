import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { BlockingReader } from '../store/blocking-reader.js';
import { isSlotMoving } from '../store/cluster-nodes.js';
import { redisTrouble } from '../store/unavailable.js';
import type { CommandEntry, CommandQueue } from '../store/command-queue.js';
import { PRIORITIES } from '../wire/events.js';
import type { Redis } from '../store/redis.js';
import { atMost } from '../at-most.js';

/** How long a read blocks when idle; bounds how late a lost wake-up could be noticed. */
const READ_BLOCK_MS = 5000;
/** The same while some partition's reader is failing, so that it is tried again soon. */
const RETRY_BLOCK_MS = 250;
/**
 * How long a read waits for one partition's node before it goes on without it, ms: a node that
 * hangs (a paused VM, SIGSTOP) answers neither the read nor CLIENT UNBLOCK until its reader's
 * command timeout (READ_BLOCK_MS + 5 s), and the other partitions must not wait for that.
 */
export const SLOW_NODE_MS = 1000;

/** What one partition's read came to: its commands, or (with none) its failure. */
interface Outcome {
  got: CommandEntry[];
  err?: unknown;
}

/**
 * A worker's reads of new commands: one blocking reader (a connection of its own) per partition
 * of the deployment, one on a single node. A partition's read that its node leaves unanswered is
 * not waited for: the others go on, that partition is skipped while the read is on its way, and
 * the commands it brings when it ends are handed out by the next read() (none is lost: they are
 * this consumer's pending entries either way).
 */
export class CommandReader {
  private readonly readers: BlockingReader[];
  /** Partitions whose last read failed: their reader looks its node up again first. */
  private readonly failing = new Set<number>();
  /** Partitions with a read on their connection that a read() stopped waiting for. */
  private readonly busy = new Set<number>();
  /** Commands those reads brought after all. */
  private late: CommandEntry[] = [];
  /** Wakes a read() waiting for commands when a late read brings some. */
  private lateArrived: (() => void) | undefined;
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
   * Up to `count` new commands, a higher priority first: every waiting one of a higher priority, on
   * any partition, before any of a lower one, without blocking; when none waits, the first to come
   * on any partition (waiting at most READ_BLOCK_MS). The commands of late reads come too: they and
   * the wait (one per stream) may make more than `count` (the caller hands back what it cannot
   * start). On a cluster, while some partition does not fail, a failing partition is read in the
   * background, and a read whose node does not answer within SLOW_NODE_MS is left to end by itself
   * (a late read). Rejects when every partition's read failed and no command came.
   */
  async read(count: number): Promise<CommandEntry[]> {
    const { partitions } = this.queue.layout;
    const out = this.late.splice(0);
    const errors = new Map<number, unknown>();
    // With one partition, or all failing, there is no other to go on with: the read waits for them.
    const others = partitions.length > 1 && this.failing.size < partitions.length;
    // Nodes that left a read of this sweep unanswered: their other partitions are not waited for.
    const slow = new Set<string>();
    for (const priority of PRIORITIES) {
      for (let k = 0; k < partitions.length && out.length < count; k++) {
        const i = (this.next + k) % partitions.length;
        if (errors.has(i) || this.busy.has(i)) continue;
        const want = count - out.length;
        const node = this.readers[i]!.node;
        const reading = this.run(i, async (client) => this.queue.take(client, partitions[i]!, priority, want));
        // A failing partition is probed without waiting: its node may be the one that hangs.
        const background = this.failing.has(i) || slow.has(node);
        const outcome = !others ? await reading : background ? undefined : await atMost(reading, SLOW_NODE_MS);
        if (outcome === undefined && !background) slow.add(node);
        if (outcome === undefined) this.leave(i, reading);
        else if (outcome.err !== undefined) errors.set(i, outcome.err);
        else out.push(...outcome.got);
      }
    }
    this.next = (this.next + 1) % partitions.length;
    // Late reads that ended meanwhile.
    out.push(...this.late.splice(0));
    if (out.length > 0) return byPriority(out);
    if (errors.size === partitions.length) throw errors.values().next().value;
    return byPriority(await this.awaitAny());
  }

  /** Every idle healthy partition's reader blocks; the first to get a command ends the others' waits. */
  private async awaitAny(): Promise<CommandEntry[]> {
    const { partitions } = this.queue.layout;
    const blockMs = this.failing.size > 0 || this.busy.size > 0 ? RETRY_BLOCK_MS : READ_BLOCK_MS;
    const waiting = partitions.filter((p) => !this.failing.has(p.index) && !this.busy.has(p.index));
    let answered = false;
    let wake!: () => void;
    const first = new Promise<void>((resolve) => (wake = resolve));
    this.lateArrived = wake;
    const reads = waiting.map((p) => {
      const reading = this.run(p.index, (client) => this.queue.await(client, p, blockMs));
      void reading.then(({ got }) => {
        if (got.length === 0 || answered) return;
        answered = true;
        wake();
        for (const other of waiting) if (other !== p) void this.interrupt(this.readers[other.index]!, reads[waiting.indexOf(other)]!);
      });
      return reading;
    });
    // Rejects when every read failed (the caller backs off).
    let ended = false;
    const all = Promise.all(reads).then((outcomes) => {
      ended = true;
      if (waiting.length > 0 && outcomes.every((o) => o.err !== undefined)) throw outcomes[0]!.err;
    });
    // On a cluster the wait also ends when a read outlives its BLOCK (its node hangs); with no
    // partition to wait on (all busy or failing), a late read or the retry delay ends it.
    const bound = partitions.length > 1 ? [delay(waiting.length > 0 ? blockMs + SLOW_NODE_MS : blockMs, undefined, { ref: false })] : [];
    try {
      await Promise.race([...(waiting.length > 0 ? [all] : []), first, ...bound]);
    } finally {
      this.lateArrived = undefined;
    }
    // Ends the reads still blocked, unless one was answered (it interrupted the others) or all
    // ended. They end at once, but for one whose node hangs: it is left to end by itself.
    if (!answered && !ended) for (const [n, p] of waiting.entries()) void this.interrupt(this.readers[p.index]!, reads[n]!);
    const outcomes = await Promise.all(reads.map((reading) => (partitions.length > 1 ? atMost(reading, SLOW_NODE_MS) : reading)));
    const got = this.late.splice(0);
    outcomes.forEach((outcome, n) => {
      if (outcome === undefined) this.leave(waiting[n]!.index, reads[n]!);
      else got.push(...outcome.got);
    });
    return got;
  }

  /** Runs a read on partition `i`'s reader (settled first); a failure is recorded (fail) and given as the outcome. */
  private run(i: number, read: (client: Redis) => Promise<CommandEntry[]>): Promise<Outcome> {
    const reader = this.readers[i]!;
    const moves = reader.moves;
    return (async () => {
      try {
        await reader.settle(this.failing.has(i));
        const got = await read(reader.client);
        this.failing.delete(i);
        return { got };
      } catch (err) {
        this.fail(i, err, moves);
        return { got: [], err };
      }
    })();
  }

  /** Leaves `reading` on partition `i` to end by itself: the partition is busy until then, and its commands go to `late`. */
  private leave(i: number, reading: Promise<Outcome>): void {
    this.busy.add(i);
    void reading.then(({ got }) => {
      this.busy.delete(i);
      if (got.length === 0) return;
      this.late.push(...got);
      this.lateArrived?.();
    });
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

  /** Commands of late reads not handed out yet: the worker hands them back when it stops reading. */
  drain(): CommandEntry[] {
    return this.late.splice(0);
  }

  /** Makes blocked reads return empty (no entry is lost); false when one could not be unblocked. */
  async unblock(): Promise<boolean> {
    this.lateArrived?.();
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

/** `entries` of a higher priority first, in their order otherwise. */
function byPriority(entries: CommandEntry[]): CommandEntry[] {
  return entries.sort((a, b) => PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority));
}
