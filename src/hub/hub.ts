import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { BlockingReader } from '../store/blocking-reader.js';
import { TaskCorrupted, corruptedStreams, isWrongType } from '../store/corrupted.js';
import { eventRange, readEvents, type Entry } from '../store/event-reads.js';
import { wireEvent, type WireEvent } from '../store/events.js';
import type { Redis } from '../store/redis.js';
import { compareEventIds } from '../wire/event-id.js';

/** Receives one task's events, in order, each exactly once. */
export interface Sink {
  event(event: WireEvent): void;
  /**
   * The feed failed for good: the hub closed (the watcher should resume elsewhere), or the task
   * is corrupted (TaskCorrupted: its stream key holds another type; resuming cannot help).
   */
  error(err: Error): void;
}

export interface Subscription {
  close(): void;
}

interface Sub {
  sink: Sink;
  /** The last event id this watcher has been given. */
  cursor: string;
  /** Live events held back while the watcher catches up with XRANGE. */
  backlog: WireEvent[] | null;
  closed: boolean;
}

interface Stream {
  taskId: string;
  /** Every event up to this id has been read and handed to this stream's watchers. */
  cursor: string;
  subs: Set<Sub>;
}

export interface HubDeps {
  redis: Redis;
  logger: Logger;
  /** Events read per stream per XREAD. */
  batch?: number;
  /** Upper bound of one blocking read; wake-ups normally come sooner through CLIENT UNBLOCK. */
  blockMs?: number;
}

/**
 * One multiplexed blocking XREAD per gateway process over every watched task stream. Watchers of
 * the same task share its read; a watcher that starts behind the shared cursor catches up with
 * XRANGE while live events queue for it, so replay hands over to live with no gap or duplicate.
 */
export class Hub {
  private readonly streams = new Map<string, Stream>();
  private readonly reader: BlockingReader;
  private readonly log: Logger;
  private inFlight = false;
  private wakeWanted = false;
  private unblocking = false;
  private idle: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly deps: HubDeps) {
    this.log = deps.logger.child({ component: 'hub' });
    this.reader = new BlockingReader(deps.redis, 'hub-reader', deps.logger);
  }

  async start(): Promise<void> {
    await this.reader.start();
    this.loop = this.readLoop();
  }

  get watchedStreams(): number {
    return this.streams.size;
  }

  /** Feeds `sink` every event of `taskId` after `fromId` (a canonical id), then live ones. */
  subscribe(taskId: string, fromId: string, sink: Sink): Subscription {
    if (this.closed) throw new Error('hub is closed');
    let stream = this.streams.get(taskId);
    if (!stream) {
      stream = { taskId, cursor: fromId, subs: new Set() };
      this.streams.set(taskId, stream);
      this.wake();
    }
    const sub: Sub = { sink, cursor: fromId, backlog: null, closed: false };
    stream.subs.add(sub);
    if (compareEventIds(fromId, stream.cursor) < 0) void this.catchUp(stream, sub, stream.cursor);
    return { close: () => this.unsubscribe(stream, sub) };
  }

  private unsubscribe(stream: Stream, sub: Sub): void {
    sub.closed = true;
    stream.subs.delete(sub);
    if (stream.subs.size === 0 && this.streams.get(stream.taskId) === stream) this.streams.delete(stream.taskId);
  }

  /** Reads (sub.cursor, upTo] with XRANGE, then releases the live events queued meanwhile. */
  private async catchUp(stream: Stream, sub: Sub, upTo: string): Promise<void> {
    sub.backlog = [];
    try {
      const entries = await eventRange(this.deps.redis, stream.taskId, sub.cursor, upTo);
      for (const [id, fields] of entries) this.deliver(stream, sub, wireEvent(stream.taskId, id, fields));
      const backlog = sub.backlog;
      sub.backlog = null;
      for (const event of backlog) this.deliver(stream, sub, event);
    } catch (err) {
      this.fail(stream, sub, err);
    }
  }

  private deliver(stream: Stream, sub: Sub, event: WireEvent): void {
    if (sub.closed || compareEventIds(event.id, sub.cursor) <= 0) return;
    sub.cursor = event.id;
    if (event.terminal) this.unsubscribe(stream, sub);
    sub.sink.event(event);
  }

  private fail(stream: Stream, sub: Sub, err: unknown): void {
    if (sub.closed) return;
    this.unsubscribe(stream, sub);
    sub.sink.error(err instanceof Error ? err : new Error(String(err)));
  }

  private async readLoop(): Promise<void> {
    const { batch = 100, blockMs = 10_000 } = this.deps;
    let failures = 0;
    while (!this.closed) {
      if (this.streams.size === 0) {
        await new Promise<void>((resolve) => (this.idle = resolve));
        continue;
      }
      const snapshot = [...this.streams.values()];
      this.inFlight = true;
      this.wakeWanted = false;
      try {
        const reply = await readEvents(this.reader.client, snapshot.map((s) => s.taskId), snapshot.map((s) => s.cursor), batch, blockMs);
        failures = 0;
        this.inFlight = false;
        const sent = new Set(snapshot);
        for (const { taskId, entries } of reply) this.dispatch(sent, taskId, entries);
      } catch (err) {
        this.inFlight = false;
        if (this.closed) break;
        // One stream of the wrong type fails the whole read: it leaves, the others are read at once.
        if (isWrongType(err) && (await this.isolate(snapshot))) continue;
        failures += 1;
        this.log.error({ err }, 'hub read failed; backing off');
        await delay(Math.min(50 * 2 ** failures, 2000));
      }
    }
  }

  /**
   * After a read failed with WRONGTYPE: ends the watchers of the streams of `snapshot` whose key
   * holds another type (TaskCorrupted) and drops those streams from the read set. True when any
   * was found, so the others can be read again at once.
   */
  private async isolate(snapshot: Stream[]): Promise<boolean> {
    let corrupted: TaskCorrupted[];
    try {
      corrupted = await corruptedStreams(this.reader.client, snapshot.map((s) => s.taskId));
    } catch (err) {
      this.log.warn({ err }, 'could not check the types of the watched streams');
      return false;
    }
    for (const err of corrupted) {
      const stream = this.streams.get(err.taskId);
      if (!stream || !snapshot.includes(stream)) continue;
      this.log.warn({ taskId: err.taskId, err: err.message }, 'corrupted task stream left the read set; its watchers are ended');
      this.streams.delete(err.taskId);
      for (const sub of [...stream.subs]) this.fail(stream, sub, err);
    }
    return corrupted.length > 0;
  }

  /** Applies a read reply; a stream dropped or re-added since the read was sent is skipped. */
  private dispatch(sent: Set<Stream>, taskId: string, entries: Entry[]): void {
    const stream = this.streams.get(taskId);
    if (!stream || !sent.has(stream)) return;
    for (const [id, fields] of entries) {
      if (compareEventIds(id, stream.cursor) <= 0) continue;
      stream.cursor = id;
      const event = wireEvent(taskId, id, fields);
      for (const sub of [...stream.subs]) {
        if (sub.backlog) sub.backlog.push(event);
        else this.deliver(stream, sub, event);
      }
      if (event.terminal && this.streams.get(taskId) === stream) this.streams.delete(taskId);
    }
  }

  /**
   * Makes a blocked XREAD return so the next one includes new streams. CLIENT UNBLOCK answers 0
   * when the reader is not blocked yet (its XREAD still on the wire), so it is retried until the
   * read returns.
   */
  private wake(): void {
    if (this.idle) {
      this.idle();
      this.idle = undefined;
      return;
    }
    if (!this.inFlight) return;
    this.wakeWanted = true;
    if (!this.unblocking) void this.unblock();
  }

  /** At most one of these runs; it serves whichever read is in flight while a wake is wanted. */
  private async unblock(): Promise<void> {
    this.unblocking = true;
    try {
      for (let attempt = 0; this.inFlight && this.wakeWanted && !this.closed; attempt++) {
        try {
          if (await this.reader.unblock()) return;
        } catch (err) {
          this.log.warn({ err }, 'CLIENT UNBLOCK failed');
        }
        await delay(Math.min(attempt, 20));
      }
    } finally {
      this.unblocking = false;
    }
  }

  /** Stops reading and ends every subscription with an error, so watchers resume elsewhere. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.idle?.();
    this.reader.disconnect();
    await this.loop;
    const err = new Error('hub closed');
    for (const stream of [...this.streams.values()]) for (const sub of [...stream.subs]) this.fail(stream, sub, err);
    await this.reader.close();
  }
}
