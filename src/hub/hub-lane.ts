import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { BlockingReader } from '../store/blocking-reader.js';
import { isSlotMoving } from '../store/cluster-nodes.js';
import { isWrongType } from '../store/corrupted.js';
import { reconnectDelayMs, type Redis } from '../store/redis.js';
import type { Partition } from '../store/layout.js';
import { masterOf, readsFromReplicas } from '../store/replication.js';
import { FailureStreak } from '../store/failure-streak.js';
import { Overdue } from '../store/overdue.js';
import { redisTrouble } from '../store/unavailable.js';
import { auditStreams, readStreams, wrongTypes, type StreamSource } from '../store/stream-source.js';
import { WatchedStreams, type Sink, type Stream, type Subscription } from './watched-streams.js';

export type { Sink, Subscription } from './watched-streams.js';

/** HubDeps.blockMs when not given, ms. */
const DEFAULT_BLOCK_MS = 10_000;
/** A read still unanswered this long after its BLOCK ran out is warned (Redis hangs), ms; checked every OVERDUE_CHECK_MS. */
const OVERDUE_AFTER_BLOCK_MS = 5000;
const OVERDUE_CHECK_MS = 1000;

export interface HubDeps {
  redis: Redis;
  logger: Logger;
  /** Events read per stream per XREAD. */
  batch?: number;
  /**
   * Upper bound of one blocking read; wake-ups normally come sooner through CLIENT UNBLOCK. Also
   * how often the watched tasks' keys are audited: a task whose keys are gone (deleted, or lost by
   * a Redis restarted without its data) or hold the wrong type ends its watchers (TaskGone,
   * TaskCorrupted) instead of leaving them waiting for events that cannot come. A stream is judged
   * once it was in the read set at the audit before, so a replica that lags a new task's writes by
   * less than that does not end it.
   */
  blockMs?: number;
}

/**
 * The hub's reader of one partition (src/store/layout.ts): one blocking XREAD, on a connection of
 * its own, over every watched stream of the partition (task event streams and feeds, see
 * StreamSource), which WatchedStreams hands to their watchers. A read still unanswered
 * OVERDUE_AFTER_BLOCK_MS after its BLOCK ran out is warned once, and its answer logged (Overdue).
 */
export class HubLane {
  private readonly streams: WatchedStreams;
  private readonly reader: BlockingReader;
  private readonly log: Logger;
  private readonly readFailures: FailureStreak;
  private readonly overdue: Overdue;
  private overdueChecks: NodeJS.Timeout | undefined;
  private inFlight = false;
  private wakeWanted = false;
  private unblocking = false;
  private idle: (() => void) | undefined;
  private auditedAt = 0;
  private loop: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly deps: HubDeps,
    private readonly partition: Partition,
    /** The reader's connection name (CLIENT LIST): `hub-reader`, with the partition in cluster mode. */
    name: string,
  ) {
    this.log = deps.logger.child({ component: 'hub', partition: partition.index });
    this.streams = new WatchedStreams(deps.redis, () => this.wake());
    this.readFailures = new FailureStreak(() => this.log, 'hub read failed; backing off');
    this.overdue = new Overdue(() => this.log, 'hub read', (deps.blockMs ?? DEFAULT_BLOCK_MS) + OVERDUE_AFTER_BLOCK_MS);
    this.reader = new BlockingReader(deps.redis, name, deps.logger, partition, readsFromReplicas(deps.redis), deps.blockMs ?? DEFAULT_BLOCK_MS);
  }

  async start(): Promise<void> {
    await this.reader.start();
    this.auditedAt = Date.now();
    this.overdueChecks = setInterval(() => {
      if (this.inFlight) this.overdue.check();
    }, OVERDUE_CHECK_MS).unref();
    this.loop = this.readLoop();
  }

  get watchedStreams(): number {
    return this.streams.size;
  }

  /** Feeds `sink` every entry of `source` after `fromId` (a canonical id), then live ones. */
  follow(source: StreamSource, fromId: string, sink: Sink): Subscription {
    return this.streams.follow(source, fromId, sink);
  }

  private async readLoop(): Promise<void> {
    const { batch = 100, blockMs = DEFAULT_BLOCK_MS } = this.deps;
    let failures = 0;
    while (!this.closed) {
      if (this.streams.size === 0) {
        await new Promise<void>((resolve) => (this.idle = resolve));
        continue;
      }
      const snapshot = this.streams.all();
      this.inFlight = true;
      this.overdue.begin();
      this.wakeWanted = false;
      const moves = this.reader.moves;
      try {
        await this.reader.settle(failures > 0);
        if (Date.now() - this.auditedAt >= blockMs) await this.audit();
        const keys = snapshot.map((s) => s.source.key);
        const reply = await readStreams(this.reader.client, keys, snapshot.map((s) => s.cursor), batch, blockMs);
        failures = 0;
        this.readFailures.ok();
        this.inFlight = false;
        this.overdue.end();
        const sent = new Set(snapshot);
        for (const { key, entries } of reply) {
          const stream = this.streams.get(key);
          if (!stream || !sent.has(stream)) continue;
          if (entries.length >= batch && stream.source.trimmed && !(await this.keptUp(stream))) continue;
          this.streams.dispatch(stream, entries);
        }
      } catch (err) {
        this.inFlight = false;
        this.overdue.end();
        if (this.closed) break;
        // The reader followed its partition to another node (BlockingReader): read there at once.
        if (this.reader.moves !== moves) continue;
        // One stream of the wrong type fails the whole read: it leaves, the others are read at once.
        if (isWrongType(err) && (await this.isolate(snapshot))) continue;
        failures += 1;
        // The partition moves to another node (a slot move or a failover): the next reads follow
        // it (BlockingReader.settle). Anything else is an outage or a bug (FailureStreak).
        if (isSlotMoving(err)) this.log.info({ err: String(err) }, 'hub read found its partition moving; following it');
        else this.readFailures.failed(err);
        await delay(reconnectDelayMs(failures));
      }
    }
  }

  /**
   * After a read failed with WRONGTYPE: ends the watchers of the streams of `snapshot` whose key
   * holds another type (TaskCorrupted for a task) and drops those streams from the read set. True
   * when any was found, so the others can be read again at once.
   */
  private async isolate(snapshot: Stream[]): Promise<boolean> {
    let corrupted: Map<string, string>;
    try {
      corrupted = await wrongTypes(this.reader.client, snapshot.map((s) => s.source.key));
    } catch (err) {
      this.log.warn({ err }, 'could not check the types of the watched streams');
      return false;
    }
    for (const [key, type] of corrupted) {
      const stream = this.streams.get(key);
      if (!stream || !snapshot.includes(stream)) continue;
      const err = stream.source.corrupted(type);
      this.log.warn({ ...stream.source.about, err: err.message }, 'corrupted stream left the read set; its watchers are ended');
      this.streams.drop(stream, err);
    }
    return corrupted.size > 0;
  }

  /** Ends the watchers of tasks whose keys are gone or corrupted (see HubDeps.blockMs); a failed check waits for the next. */
  private async audit(): Promise<void> {
    const since = this.auditedAt;
    this.auditedAt = Date.now();
    const judged = this.streams.all().filter((s) => s.since <= since);
    let ended: Map<StreamSource, Error>;
    try {
      ended = await auditStreams(this.reader.client, judged.map((s) => s.source));
      // A replica that is behind (resyncing) lacks keys that exist: the master says whether they are gone.
      const master = ended.size > 0 ? masterOf(this.deps.redis, this.partition) : undefined;
      if (master) ended = await auditStreams(master, [...ended.keys()]);
    } catch (err) {
      // An outage is the read loop's to report; the audit waits for the next round.
      if (redisTrouble(err)) this.log.debug({ err: String(err) }, 'could not audit the watched tasks\' keys');
      else this.log.warn({ err }, 'could not audit the watched tasks\' keys');
      return;
    }
    for (const stream of judged) {
      const err = ended.get(stream.source);
      if (!err || !this.streams.has(stream)) continue;
      this.log.warn({ ...stream.source.about, err: err.message }, 'watched task is gone or corrupted; its watchers are ended');
      this.streams.drop(stream, err);
    }
  }

  /**
   * A read of a feed came back full, so it may have fallen behind the feed's trimming (a feed
   * holds at least FEED_MAXLEN >= batch entries, so a read after a gap is always full): false,
   * with the stream's watchers ended with FeedGap and the stream dropped, when entries after its
   * cursor are gone.
   */
  private async keptUp(stream: Stream): Promise<boolean> {
    try {
      await stream.source.checkLive(this.reader.client, stream.cursor);
      return true;
    } catch (err) {
      this.streams.drop(stream, err);
      return false;
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
      await this.reader.interrupt(() => this.inFlight && this.wakeWanted && !this.closed, (err) => this.log.warn({ err }, 'CLIENT UNBLOCK failed'));
    } finally {
      this.unblocking = false;
    }
  }

  /** Stops reading and ends every subscription with an error, so watchers resume elsewhere. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.overdueChecks);
    this.idle?.();
    this.reader.disconnect();
    await this.loop;
    this.streams.endAll(new Error('hub closed'));
    await this.reader.close();
  }
}
