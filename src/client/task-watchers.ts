import { socketUrl } from './socket-url.js';
import { CLIENT_DONE_CLOSE, CloseCode } from '../wire/close-codes.js';
import { continueFromReason } from '../wire/feed.js';
import { BATCH_PARAM } from '../wire/frames.js';
import { MUX_PATH, feedName, feedNameTag, subjectKey, type MuxClientMessage, type MuxControlMessage } from '../wire/mux.js';
import { encodeClientMessage, parseServerFrame, type ServerMessage } from '../wire/mux-messages.js';
import { FeedFollow, type FollowOptions } from './feed-follow.js';
import { TaskWatch, type WatchOptions } from './task-watch.js';
import type { MuxSubscription } from './mux-subscription.js';
import { DEFAULT_BACKOFF, TERMINAL_CLOSE_CODES, backoffDelay, closeOutcome, type BackoffOptions } from './reconnect-policy.js';
import type { FinalState, WatchState, WebSocketLike } from './task-watcher.js';

/** TaskWatcher's socket, which also sends: the browser's WebSocket, Node's global one and `ws` all fit. */
export interface MuxSocketLike extends WebSocketLike {
  send(data: string): void;
}

export type MuxSocketFactory = (url: string) => MuxSocketLike;

export interface TaskWatchersOptions {
  /** The gateway's base URL, http(s) or ws(s); the page passes `location.origin`. */
  baseUrl: string;
  /** With auth on: sent in every subscribe that has no token of its own (never in the URL). */
  token?: string | undefined;
  /** Defaults to the global WebSocket (browsers, Node 22+). */
  createSocket?: MuxSocketFactory | undefined;
  backoff?: BackoffOptions | undefined;
  /** Jitter source, [0, 1); tests make it deterministic. */
  random?: (() => number) | undefined;
  /**
   * How long the socket stays open once no watch runs, ms (default 0: closed at once, so a Node
   * process is not held). The page keeps it, so cards opened one after another share it.
   */
  lingerMs?: number | undefined;
  /** The gateway refused a message of this client (an `error`: a bug in the client, or a misuse). */
  onError?: ((reason: string) => void) | undefined;
}

/** The multiplexed endpoint's URL on the gateway's host, ws for http, wss for https, asking for batches. */
function muxUrl(baseUrl: string): string {
  return socketUrl(baseUrl, MUX_PATH, { [BATCH_PARAM]: '1' });
}

/**
 * Watches many tasks, and follows feeds, over one WebSocket (`/ws`, protocol in src/wire/mux.ts)
 * with TaskWatcher's guarantees per task (each event once, in stream order, resumed exactly after
 * disconnects) and FeedWatcher's per feed. On a reconnect (same backoff and stop rules as
 * TaskWatcher) it subscribes every running watch and follow again with its own cursor; a
 * subscription the gateway ends with a code that means "resume" is subscribed again after its own
 * backoff, a feed ended with 4410 at once from the id the gateway gave. The socket is open while at
 * least one watch or follow runs (and `lingerMs` after the last one ends).
 */
export class TaskWatchers {
  private socket: MuxSocketLike | undefined;
  private open = false;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Running watches and follows by key (subjectKey). */
  private readonly subs = new Map<string, MuxSubscription>();
  /**
   * Subscriptions of this connection nothing owns any more, by key: the message that will end
   * them (`ended` after a terminal event, `unsubscribed` after an unsubscribe). Until it comes,
   * everything about that task or feed belongs to them, and a new one of it waits to subscribe.
   */
  private readonly closing = new Map<string, 'ended' | 'unsubscribed'>();
  private readonly createSocket: MuxSocketFactory;

  constructor(private readonly options: TaskWatchersOptions) {
    this.createSocket = options.createSocket ?? ((url) => new WebSocket(url));
  }

  /** Running watches and follows. */
  get size(): number {
    return this.subs.size;
  }

  /** Starts watching `taskId`; throws if it is already watched by this client, or after close(). */
  watch(taskId: string, options: WatchOptions = {}): TaskWatch {
    const id = taskId.toLowerCase();
    return this.add(new TaskWatch(id, options, this), `task ${id} is already watched`);
  }

  /**
   * Follows the feed of `options.tag` (undefined: all tasks); throws if that feed is already
   * followed by this client, the tag is not one, or after close().
   */
  follow(options: FollowOptions = {}): FeedFollow {
    const feed = feedName(options.tag);
    if (feedNameTag(feed) === null) throw new Error(`invalid tag ${JSON.stringify(options.tag)}`);
    return this.add(new FeedFollow(feed, options, this), `feed ${feed} is already followed`);
  }

  /** Stops watching `taskId` (its watch ends `closed`); nothing happens when it is not watched. */
  unwatch(taskId: string): void {
    this.drop(subjectKey({ task: taskId.toLowerCase() }));
  }

  /** Stops following `feed` (a feed name, FeedFollow.feed); nothing happens when it is not followed. */
  unfollow(feed: string): void {
    this.drop(subjectKey({ feed }));
  }

  /** Stops every watch and follow and the connection, for good. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sub of [...this.subs.values()]) this.finish(sub, { state: 'closed' });
    this.disconnect();
  }

  private add<S extends MuxSubscription>(sub: S, duplicate: string): S {
    if (this.closed) throw new Error('TaskWatchers is closed');
    if (this.subs.has(sub.key)) throw new Error(duplicate);
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.subs.set(sub.key, sub);
    sub.setState({ state: 'connecting', attempt: this.attempt });
    if (this.open) this.sendSubscribe(sub);
    else if (!this.socket && this.timer === undefined) this.connect();
    return sub;
  }

  private drop(key: string): void {
    const sub = this.subs.get(key);
    if (!sub) return;
    if (sub.sub !== 'none' && this.open) {
      this.send({ type: 'unsubscribe', ...sub.subject });
      this.closing.set(key, 'unsubscribed');
    }
    sub.sub = 'none';
    this.finish(sub, { state: 'closed' });
  }

  private connect(): void {
    this.timer = undefined;
    for (const sub of this.subs.values()) {
      const s = sub.state;
      if (sub.timer === undefined && !(s.state === 'connecting' && s.attempt === this.attempt)) {
        sub.setState({ state: 'connecting', attempt: this.attempt });
      }
    }
    let socket: MuxSocketLike;
    try {
      socket = this.createSocket(muxUrl(this.options.baseUrl));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      for (const sub of [...this.subs.values()]) this.finish(sub, { state: 'failed', code: 0, reason });
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.open = true;
      this.attempt = 0;
      for (const sub of this.subs.values()) if (sub.timer === undefined) this.sendSubscribe(sub);
    };
    socket.onmessage = (message) => {
      if (this.socket === socket) this.onFrame(message.data);
    };
    socket.onerror = () => undefined;
    socket.onclose = (event) => {
      if (this.socket === socket) this.onClose(event.code, event.reason);
    };
  }

  /** Sends the subscribe message of `sub` (its cursor and token) on the open socket. */
  private sendSubscribe(sub: MuxSubscription): void {
    if (this.closing.has(sub.key)) return;
    sub.sub = 'subscribing';
    const token = sub.token ?? this.options.token;
    this.send({
      type: 'subscribe',
      ...sub.subject,
      ...(sub.lastEventId === undefined ? {} : { lastEventId: sub.lastEventId }),
      ...(token === undefined ? {} : { token }),
    });
  }

  private send(message: MuxClientMessage): void {
    this.socket?.send(encodeClientMessage(message));
  }

  private onFrame(data: unknown): void {
    const messages = parseServerFrame(data);
    if (!messages) {
      const reason = 'the gateway sent a malformed message';
      for (const sub of [...this.subs.values()]) this.finish(sub, { state: 'failed', code: CloseCode.PROTOCOL_ERROR, reason });
      return;
    }
    for (const message of messages) this.onMessage(message);
  }

  private onMessage(message: ServerMessage): void {
    if ('control' in message) return this.onControl(message.control);
    const key = 'entry' in message ? subjectKey({ feed: message.entry.feed }) : subjectKey({ task: message.event.task_id });
    if (this.closing.has(key)) return;
    const sub = this.subs.get(key);
    if (!sub || sub.sub !== 'active') return;
    if ('entry' in message) {
      if (sub instanceof FeedFollow) sub.deliver(message.entry);
    } else if (sub instanceof TaskWatch && sub.deliver(message.event)) {
      // The gateway follows a terminal event with `ended`; until then the task is still its.
      this.closing.set(key, 'ended');
      sub.sub = 'none';
      this.finish(sub, { state: 'finished', status: message.event.status });
    }
  }

  private onControl(message: MuxControlMessage): void {
    if (message.type === 'error') {
      this.options.onError?.(message.reason);
      return;
    }
    const key = subjectKey(message);
    const awaited = this.closing.get(key);
    if (awaited !== undefined) {
      if (message.type !== awaited) return;
      this.closing.delete(key);
      const waiting = this.subs.get(key);
      if (waiting && waiting.timer === undefined && this.open) this.sendSubscribe(waiting);
      return;
    }
    const sub = this.subs.get(key);
    if (!sub || sub.sub === 'none') return;
    if (message.type === 'subscribed') {
      if ('id' in message && message.id !== undefined && sub instanceof FeedFollow) sub.mark(message.id);
      sub.sub = 'active';
      sub.attempt = 0;
      sub.setState({ state: 'live' });
    } else if (message.type === 'ended') {
      sub.sub = 'none';
      const continueFrom = message.code === CloseCode.FEED_CURSOR_EXPIRED ? continueFromReason(message.reason) : null;
      const outcome = closeOutcome(message.code);
      if (continueFrom !== null && sub instanceof FeedFollow) {
        sub.reset(continueFrom);
        if (!sub.isFinal && this.open) this.sendSubscribe(sub);
      } else if (outcome === 'finished') this.finish(sub, { state: 'finished', status: null });
      else if (outcome === 'failed' || message.code === CloseCode.FEED_CURSOR_EXPIRED) {
        this.finish(sub, { state: 'failed', code: message.code, reason: message.reason });
      } else this.retry(sub, message.code, message.reason);
    }
  }

  /** Subscribes `sub` again after its own backoff (the connection stays). */
  private retry(sub: MuxSubscription, code: number, reason: string): void {
    const delayMs = backoffDelay(sub.attempt, this.options.random ?? Math.random, this.options.backoff ?? DEFAULT_BACKOFF);
    sub.attempt++;
    sub.setState({ state: 'reconnecting', attempt: sub.attempt, delayMs, nextAttemptAt: Date.now() + delayMs, code, reason });
    sub.timer = setTimeout(() => {
      sub.timer = undefined;
      sub.setState({ state: 'connecting', attempt: sub.attempt });
      if (this.open) this.sendSubscribe(sub);
    }, delayMs);
  }

  private onClose(code: number, reason: string): void {
    this.socket = undefined;
    this.open = false;
    this.closing.clear();
    for (const sub of this.subs.values()) {
      sub.sub = 'none';
      if (sub.timer !== undefined) clearTimeout(sub.timer);
      sub.timer = undefined;
    }
    if (this.subs.size === 0) return;
    if (TERMINAL_CLOSE_CODES.has(code)) {
      for (const sub of [...this.subs.values()]) this.finish(sub, { state: 'failed', code, reason });
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.options.random ?? Math.random, this.options.backoff ?? DEFAULT_BACKOFF);
    this.attempt++;
    const state: WatchState = { state: 'reconnecting', attempt: this.attempt, delayMs, nextAttemptAt: Date.now() + delayMs, code, reason };
    for (const sub of this.subs.values()) sub.setState(state);
    this.timer = setTimeout(() => this.connect(), delayMs);
  }

  private finish(sub: MuxSubscription, state: FinalState): void {
    if (this.subs.get(sub.key) === sub) this.subs.delete(sub.key);
    sub.setState(state);
    if (this.subs.size > 0 || this.idleTimer !== undefined) return;
    const linger = this.options.lingerMs ?? 0;
    if (linger > 0 && this.socket && !this.closed) this.idleTimer = setTimeout(() => this.disconnect(), linger);
    else this.disconnect();
  }

  /** Closes the socket (nothing needs it); the next watch or follow opens a new one. */
  private disconnect(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.timer = undefined;
    this.idleTimer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    this.open = false;
    this.closing.clear();
    this.attempt = 0;
    socket?.close(CLIENT_DONE_CLOSE, 'client done');
  }
}
