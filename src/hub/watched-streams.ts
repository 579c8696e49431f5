import type { Redis } from '../store/redis.js';
import type { Entry } from '../store/event-reads.js';
import type { WireEvent } from '../store/events.js';
import type { StreamSource } from '../store/stream-source.js';
import { compareEventIds } from '../wire/event-id.js';

/** Receives one stream's entries (a task's events, or a feed's), in order, each exactly once. */
export interface Sink {
  event(event: WireEvent): void;
  /**
   * The stream failed for good: the hub closed (the watcher should resume elsewhere), the task is
   * corrupted (TaskCorrupted: its stream key holds another type; resuming cannot help), or a
   * feed's entries after the watcher's cursor were trimmed (FeedGap: reload, then continue).
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

/** A stream in a lane's read set, with its watchers. */
export interface Stream {
  source: StreamSource;
  /** Every event up to this id has been read and handed to this stream's watchers. */
  cursor: string;
  subs: Set<Sub>;
  /** When it joined the read set, epoch ms. */
  since: number;
}

/**
 * The read set of one hub lane: each watched stream once, with its watchers. Watchers of the same
 * stream share its read; a watcher that starts behind the stream's cursor catches up with XRANGE
 * while live events queue for it, so replay hands over to live with no gap or duplicate. A stream
 * leaves the set with its terminal event, its last watcher or `drop`.
 */
export class WatchedStreams {
  private readonly streams = new Map<string, Stream>();

  /** `onNew` is called when a stream joins the set (the lane's read must then include it). */
  constructor(
    private readonly redis: Redis,
    private readonly onNew: () => void,
  ) {}

  get size(): number {
    return this.streams.size;
  }

  /** The streams in the set now, in the order they joined. */
  all(): Stream[] {
    return [...this.streams.values()];
  }

  /** Whether `stream` is (still) the set's stream for its key. */
  has(stream: Stream): boolean {
    return this.streams.get(stream.source.key) === stream;
  }

  get(key: string): Stream | undefined {
    return this.streams.get(key);
  }

  /** Feeds `sink` every entry of `source` after `fromId` (a canonical id), then live ones. */
  follow(source: StreamSource, fromId: string, sink: Sink): Subscription {
    let stream = this.streams.get(source.key);
    if (!stream) {
      stream = { source, cursor: fromId, subs: new Set(), since: Date.now() };
      this.streams.set(source.key, stream);
      this.onNew();
    }
    const sub: Sub = { sink, cursor: fromId, backlog: null, closed: false };
    stream.subs.add(sub);
    if (compareEventIds(fromId, stream.cursor) < 0) void this.catchUp(stream, sub, stream.cursor);
    const joined = stream;
    return { close: () => this.unfollow(joined, sub) };
  }

  /** Applies a read's entries of `stream` (those after its cursor) to its watchers. */
  dispatch(stream: Stream, entries: Entry[]): void {
    const { key } = stream.source;
    for (const [id, fields] of entries) {
      if (compareEventIds(id, stream.cursor) <= 0) continue;
      stream.cursor = id;
      const event = stream.source.wire(id, fields);
      for (const sub of [...stream.subs]) {
        if (sub.backlog) sub.backlog.push(event);
        else this.deliver(stream, sub, event);
      }
      if (event.terminal && this.streams.get(key) === stream) this.streams.delete(key);
    }
  }

  /** Takes `stream` out of the set and ends its watchers with `err`. */
  drop(stream: Stream, err: unknown): void {
    if (this.has(stream)) this.streams.delete(stream.source.key);
    for (const sub of [...stream.subs]) this.fail(stream, sub, err);
  }

  /** Ends every watcher with `err` (the lane closed). */
  endAll(err: Error): void {
    for (const stream of this.all()) for (const sub of [...stream.subs]) this.fail(stream, sub, err);
  }

  private unfollow(stream: Stream, sub: Sub): void {
    sub.closed = true;
    stream.subs.delete(sub);
    if (stream.subs.size === 0 && this.has(stream)) this.streams.delete(stream.source.key);
  }

  /** Reads (sub.cursor, upTo] with XRANGE, then releases the live events queued meanwhile. */
  private async catchUp(stream: Stream, sub: Sub, upTo: string): Promise<void> {
    sub.backlog = [];
    try {
      const entries = await stream.source.range(this.redis, sub.cursor, upTo);
      for (const [id, fields] of entries) this.deliver(stream, sub, stream.source.wire(id, fields));
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
    if (event.terminal) this.unfollow(stream, sub);
    sub.sink.event(event);
  }

  private fail(stream: Stream, sub: Sub, err: unknown): void {
    if (sub.closed) return;
    this.unfollow(stream, sub);
    sub.sink.error(err instanceof Error ? err : new Error(String(err)));
  }
}
