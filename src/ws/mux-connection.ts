import type { WebSocket } from 'ws';
import type { Auth } from '../auth/auth.js';
import type { Config } from '../config.js';
import { AppError, FINAL_WATCH_ERRORS, toAppError } from '../errors.js';
import { RateLimiter } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { overLimit, waitForRoom } from '../hub/room.js';
import { checkTaskId } from '../checked-ids.js';
import { openFeed } from '../hub/feed.js';
import { openWatch, type Watch, type WatchSink } from '../hub/watch.js';
import type { Hub } from '../hub/hub.js';
import type { FeedStore } from '../store/feed-store.js';
import type { WireEvent } from '../store/events.js';
import type { TaskStore } from '../store/task-store.js';
import { CloseCode } from '../wire/close-codes.js';
import { parseTaskId } from '../wire/task-id.js';
import { TAG_RULE } from '../wire/feed.js';
import { MUX_MAX_STRIKES, MUX_STRIKE_WINDOW_MS, SubscriptionCode, feedNameTag, subjectKey, type MuxControlMessage, type MuxSubject } from '../wire/mux.js';
import { parseClientMessage } from '../wire/mux-messages.js';
import { closeReason } from './close-reason.js';
import type { FrameWriter } from './frame-writer.js';

export interface MuxDeps {
  hub: Hub;
  store: TaskStore;
  feeds: FeedStore;
  logger: Logger;
  metrics: Metrics;
  auth: Auth;
  config: Pick<
    Config,
    'WS_MAX_BUFFERED_BYTES' | 'WS_REPLAY_STALL_MS' | 'WS_MAX_SUBSCRIPTIONS' | 'WS_MESSAGE_BURST' | 'WS_MESSAGES_PER_S'
  >;
}

interface Sub {
  subject: MuxSubject;
  /** Its key in `subs`: a task and a feed never share one. */
  key: string;
  /** Until its `ended` or `unsubscribed`: nothing of it is sent afterwards. */
  active: boolean;
  /** `subscribed` was sent (before its first event or its end). */
  acked: boolean;
  /** Its replay is being read: its events are flow-controlled by room(), not judged by overLimit. */
  replaying: boolean;
  watch: Watch | undefined;
}

/**
 * One connection of the multiplexed `/ws` (protocol: src/wire/mux.ts). Every task subscription is
 * an openWatch and every feed subscription an openFeed over the shared hub, so their guarantees
 * are those of `/ws/task/<id>` and `/ws/feed`, and Redis connections do not grow with subscriptions. Slow-consumer rules apply to the whole connection:
 * its send buffer is shared by every subscription. While any subscription replays, the replay
 * fills the buffer up to WS_MAX_BUFFERED_BYTES as fast as the client reads, so live events of the
 * others are judged against twice that: a client reading slower than a replay, but keeping up
 * with the live events, is not cut.
 */
export class MuxConnection {
  private readonly subs = new Map<string, Sub>();
  private readonly rate: RateLimiter;
  private readonly strikes: number[] = [];
  private stopped = false;
  /** Subscriptions whose replay is being written. */
  private replays = 0;

  constructor(
    private readonly ws: WebSocket,
    /** Writes this connection's frames (with batches when the upgrade asked for them). */
    private readonly writer: FrameWriter,
    private readonly deps: MuxDeps,
    /** The connection's own token (`?token=` or Authorization), used by subscribes that carry none. */
    private readonly connToken: string | undefined,
    private readonly log: () => Logger,
  ) {
    this.rate = new RateLimiter({ burst: deps.config.WS_MESSAGE_BURST, refillPerS: deps.config.WS_MESSAGES_PER_S, maxKeys: 1 });
    ws.on('message', (data, isBinary) => {
      if (this.stopped || ws.readyState !== ws.OPEN) return;
      if (isBinary) return this.refuse('messages must be JSON text frames');
      this.onMessage(String(data));
    });
  }

  get subscriptions(): number {
    return this.subs.size;
  }

  /** Ends every subscription's watch; the socket is closing or closed. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const sub of this.subs.values()) this.deactivate(sub);
    this.subs.clear();
  }

  private onMessage(text: string): void {
    const message = parseClientMessage(text);
    if ('error' in message) return this.refuse(message.error);
    const subject: MuxSubject = 'feed' in message ? { feed: message.feed } : { task: parseTaskId(message.task) ?? message.task };
    const key = subjectKey(subject);
    // Unsubscribes only free resources: always honoured, whatever the rate.
    if (message.type === 'unsubscribe') return this.unsubscribe(subject, key);
    try {
      this.rate.take('');
    } catch {
      this.end(subject, SubscriptionCode.TRY_AGAIN, 'message rate exceeded, subscribe again after a backoff');
      this.strike();
      return;
    }
    if (this.subs.has(key)) return this.refuse(`already subscribed to ${key}; unsubscribe first`);
    if (this.subs.size >= this.deps.config.WS_MAX_SUBSCRIPTIONS) {
      return this.end(subject, SubscriptionCode.TOO_MANY_SUBSCRIPTIONS, `at most ${this.deps.config.WS_MAX_SUBSCRIPTIONS} subscriptions per connection`);
    }
    const token = message.token ?? this.connToken;
    const { lastEventId } = message;
    let tag: string | undefined;
    try {
      if ('task' in subject) {
        checkTaskId(subject.task);
        this.deps.auth.requireWatch(subject.task, token);
      } else {
        const feed = feedNameTag(subject.feed);
        if (feed === null) throw new AppError('BAD_REQUEST', `feed must be "all" or "tag:<tag>" (a tag: ${TAG_RULE})`);
        tag = feed.tag;
        this.deps.auth.requireFeed(tag, token);
      }
    } catch (err) {
      const appErr = toAppError(err);
      return this.end(subject, appErr.closeCode, appErr.message);
    }
    const sub: Sub = { subject, key, active: true, acked: false, replaying: true, watch: undefined };
    this.replays += 1;
    this.subs.set(key, sub);
    const sink = this.sink(sub);
    const opened = 'task' in subject
      ? openWatch(this.deps, { taskId: subject.task, lastEventId }, sink)
      : openFeed(this.deps, { tag, lastEventId }, { ...sink, start: (cursor) => sub.active && this.ack(sub, cursor) });
    this.track(sub, opened);
  }

  /**
   * The sink of one subscription. A feed's entries go out with the feed's name added; a feed gap
   * ends it with 4410 and the id to continue from.
   */
  private sink(sub: Sub): WatchSink {
    const limit = this.deps.config.WS_MAX_BUFFERED_BYTES;
    const prefix = 'feed' in sub.subject ? `{"feed":${JSON.stringify(sub.subject.feed)},` : undefined;
    return {
      event: (event: WireEvent, replayed) => {
        if (!sub.active) return;
        this.ack(sub);
        this.writer.send(prefix === undefined ? event.json : prefix + event.json.slice(1));
        this.deps.metrics.eventSent('ws', event, replayed);
        if (sub.replaying) return;
        // A replay keeps up to the limit waiting (room below); live events get as much again beside it.
        if (overLimit(this.writer, this.replays > 0 ? 2 * limit : limit, () => this.writer.flush())) this.slow(false);
      },
      end: () => {
        if (!sub.active) return;
        this.ack(sub);
        this.finish(sub, SubscriptionCode.DONE, 'task finished');
      },
      room: () => (sub.active ? waitForRoom(this.writer, limit, this.deps.config.WS_REPLAY_STALL_MS, () => this.slow(true)) : Promise.resolve(false)),
      error: (err) => {
        if (!sub.active) return;
        this.log().warn({ ...sub.subject, err: err.message }, 'live feed of a subscription broke');
        const appErr = toAppError(err);
        if (FINAL_WATCH_ERRORS.has(appErr.code)) this.finish(sub, appErr.closeCode, appErr.message);
        else this.finish(sub, SubscriptionCode.TRY_AGAIN, 'feed interrupted, subscribe again with lastEventId');
      },
    };
  }

  /** Keeps the opened watch, or ends the subscription with the reason it could not open. */
  private track(sub: Sub, opened: Promise<Watch>): void {
    opened.then(
      (watch) => {
        this.replayed(sub);
        if (!sub.active) return watch.close();
        sub.watch = watch;
        this.ack(sub);
      },
      (err: unknown) => {
        this.replayed(sub);
        if (!sub.active) return;
        const appErr = toAppError(err);
        if (!appErr.exposed) this.log().error({ err, ...sub.subject }, 'subscription failed');
        this.finish(sub, appErr.closeCode, appErr.publicMessage);
      },
    );
  }

  /** `sub`'s replay is over: written, or failed. */
  private replayed(sub: Sub): void {
    sub.replaying = false;
    this.replays -= 1;
  }

  private unsubscribe(subject: MuxSubject, key: string): void {
    const sub = this.subs.get(key);
    if (sub) {
      // Unsubscribed before it opened: its subscribe is still answered, before the unsubscribe.
      this.ack(sub);
      this.deactivate(sub);
      this.subs.delete(key);
    }
    this.control({ type: 'unsubscribed', ...subject });
  }

  /** Sends `subscribed` once; `cursor`: where a feed opened without lastEventId goes on from. */
  private ack(sub: Sub, cursor?: string): void {
    if (sub.acked) return;
    sub.acked = true;
    this.control({ type: 'subscribed', ...sub.subject, ...(cursor === undefined ? {} : { id: cursor }) });
  }

  /** Ends an open subscription with `ended`. */
  private finish(sub: Sub, code: number, reason: string): void {
    this.deactivate(sub);
    if (this.subs.get(sub.key) === sub) this.subs.delete(sub.key);
    this.end(sub.subject, code, reason);
  }

  private deactivate(sub: Sub): void {
    sub.active = false;
    sub.watch?.close();
    sub.watch = undefined;
  }

  private end(subject: MuxSubject, code: number, reason: string): void {
    this.control({ type: 'ended', ...subject, code, reason });
  }

  /** A message that could not be acted on: an `error`, and a strike. */
  private refuse(reason: string): void {
    this.control({ type: 'error', code: CloseCode.BAD_REQUEST, reason });
    this.strike();
  }

  /** MUX_MAX_STRIKES within MUX_STRIKE_WINDOW_MS close the connection with 4400. */
  private strike(): void {
    const now = Date.now();
    this.strikes.push(now);
    if (this.strikes.length > MUX_MAX_STRIKES) this.strikes.shift();
    if (this.strikes.length === MUX_MAX_STRIKES && now - this.strikes[0]! <= MUX_STRIKE_WINDOW_MS) {
      this.log().info({ strikes: MUX_MAX_STRIKES }, 'repeated invalid or over-rate messages; closing with 4400');
      this.close(CloseCode.BAD_REQUEST, 'too many invalid or over-rate messages');
    }
  }

  private control(message: MuxControlMessage): void {
    this.writer.send(JSON.stringify(message));
  }

  private slow(replaying: boolean): void {
    this.log().info({ buffered: this.ws.bufferedAmount, replaying, subscriptions: this.subs.size }, 'slow consumer; closing with 4008');
    this.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
  }

  private close(code: number, reason: string): void {
    this.stop();
    this.writer.close(code, closeReason(reason));
  }
}
