import { BATCH_PARAM, parseFrame } from '../wire/frames.js';
import { socketUrl } from './socket-url.js';
import { FEED_WS_PATH } from '../wire/ws-paths.js';
import { CLIENT_DONE_CLOSE, CloseCode } from '../wire/close-codes.js';
import { feedCursorCovers, parseFeedCursor } from '../wire/feed-cursor.js';
import { continueFromReason, parseFeedEntry, type FeedEntry } from '../wire/feed.js';
import { DEFAULT_BACKOFF, backoffDelay, closeOutcome, type BackoffOptions } from './reconnect-policy.js';
import type { WebSocketFactory, WebSocketLike } from './task-watcher.js';

/** Where a feed stands. `failed` and `closed` are final. */
export type FeedState =
  | { state: 'connecting'; attempt: number }
  | { state: 'live' }
  | { state: 'reconnecting'; attempt: number; delayMs: number; code: number; reason: string }
  | { state: 'failed'; code: number; reason: string }
  | { state: 'closed' };

export interface FeedWatcherOptions {
  /** The gateway's base URL, http(s) or ws(s). */
  baseUrl: string;
  /** Follow this tag's feed; undefined: every task's. */
  tag?: string | undefined;
  /**
   * With auth on: a feed token for this feed (POST /feed-tokens), sent as `?token=`. An API token
   * works too, but it would sit in the URL: browsers use a feed token.
   */
  token?: string | undefined;
  /**
   * Asked before every connection instead of `token`, so a renewed token is used (e.g. one bought
   * with POST /feed-tokens); undefined: none. A rejection counts as a lost connection (retried).
   */
  urlToken?: (() => Promise<string | undefined>) | undefined;
  /** Resume after this entry id; undefined: live from now (the gateway names the start). */
  lastEventId?: string | undefined;
  createSocket?: WebSocketFactory | undefined;
  backoff?: BackoffOptions | undefined;
  random?: (() => number) | undefined;
  onEntry?: ((entry: FeedEntry) => void) | undefined;
  /**
   * The feed no longer held every entry after the cursor (close 4410): entries were missed.
   * Reload the task list; the watcher goes on from `continueFrom` at once, or, when the gateway
   * could not name it (undefined: a cluster's cursor does not fit a close reason), from the feed's
   * end, opening it again without a cursor.
   */
  onReset?: ((continueFrom: string | undefined) => void) | undefined;
  onState?: ((state: FeedState) => void) | undefined;
}

/** The feed URL: `/ws/feed?tag=&lastEventId=&token=` on the gateway's host, ws for http, wss for https. */
export function feedUrl(baseUrl: string, query: { tag?: string | undefined; lastEventId?: string | undefined; token?: string | undefined }): string {
  return socketUrl(baseUrl, FEED_WS_PATH, { ...query, [BATCH_PARAM]: '1' });
}

/**
 * Follows a feed of task changes over WebSocket and resumes exactly: it keeps the cursor (the last
 * entry id, or the gateway's cursor mark), reconnects with it after an abnormal close (backing
 * off, see reconnect-policy.ts), drops entries it has already delivered, and on 4410 reports the
 * reset (onReset) and goes on from the id the gateway gave. It stops for good on a terminal close
 * code (4400, 4401, 4403) or close().
 */
export class FeedWatcher {
  private socket: WebSocketLike | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private current: FeedState = { state: 'connecting', attempt: 0 };
  private cursor: string | undefined;
  private started = false;
  private readonly createSocket: WebSocketFactory;

  constructor(private readonly options: FeedWatcherOptions) {
    this.createSocket = options.createSocket ?? ((url) => new WebSocket(url));
    if (options.lastEventId) {
      const id = parseFeedCursor(options.lastEventId);
      if (id === null) throw new Error(`invalid lastEventId ${JSON.stringify(options.lastEventId)}`);
      this.cursor = id;
    }
  }

  /** The cursor: the last entry delivered, or where the feed was opened. */
  get lastEventId(): string | undefined {
    return this.cursor;
  }

  get state(): FeedState {
    return this.current;
  }

  /** Connects; calling it again has no effect. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  /** Stops for good. */
  close(): void {
    this.finish({ state: 'closed' });
  }

  private get isFinal(): boolean {
    return this.current.state === 'failed' || this.current.state === 'closed';
  }

  private connect(): void {
    this.timer = undefined;
    this.setState({ state: 'connecting', attempt: this.attempt });
    const { urlToken, token } = this.options;
    if (!urlToken) return this.open(token);
    urlToken().then(
      (fresh) => {
        if (!this.isFinal) this.open(fresh);
      },
      (err: unknown) => {
        if (!this.isFinal) this.onClose(CloseCode.TRY_AGAIN, `no feed token: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  private open(token: string | undefined): void {
    const { baseUrl, tag } = this.options;
    let socket: WebSocketLike;
    try {
      socket = this.createSocket(feedUrl(baseUrl, { tag, token, lastEventId: this.cursor }));
    } catch (err) {
      this.finish({ state: 'failed', code: 0, reason: err instanceof Error ? err.message : String(err) });
      return;
    }
    this.socket = socket;
    const mine = () => this.socket === socket && !this.isFinal;
    socket.onopen = () => {
      if (!mine()) return;
      this.attempt = 0;
      this.setState({ state: 'live' });
    };
    socket.onmessage = (message) => {
      if (mine()) this.onFrame(message.data);
    };
    socket.onerror = () => undefined;
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (!this.isFinal) this.onClose(event.code, event.reason);
    };
  }

  /** A frame of feed messages (a batch of them, see src/wire/frames.ts). */
  private onFrame(data: unknown): void {
    const messages = parseFrame(data, parseMessage);
    if (!messages) {
      this.finish({ state: 'failed', code: CloseCode.PROTOCOL_ERROR, reason: 'the gateway sent a malformed feed message' });
      return;
    }
    for (const message of messages) if (!this.isFinal) this.onMessage(message);
  }

  private onMessage(message: FeedEntry | { id: string }): void {
    if (this.cursor !== undefined && feedCursorCovers(this.cursor, message.id)) return;
    this.cursor = message.id;
    if ('task_id' in message) this.options.onEntry?.(message);
  }

  private onClose(code: number, reason: string): void {
    if (code === CloseCode.FEED_CURSOR_EXPIRED) {
      const continueFrom = continueFromReason(reason) ?? undefined;
      this.cursor = continueFrom;
      this.options.onReset?.(continueFrom);
      if (!this.isFinal) this.connect();
      return;
    }
    if (closeOutcome(code) === 'failed') return this.finish({ state: 'failed', code, reason });
    const delayMs = backoffDelay(this.attempt, this.options.random ?? Math.random, this.options.backoff ?? DEFAULT_BACKOFF);
    this.attempt++;
    this.setState({ state: 'reconnecting', attempt: this.attempt, delayMs, code, reason });
    this.timer = setTimeout(() => this.connect(), delayMs);
  }

  private finish(state: Extract<FeedState, { state: 'failed' | 'closed' }>): void {
    if (this.isFinal) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(CLIENT_DONE_CLOSE, 'client done');
    this.setState(state);
  }

  private setState(state: FeedState): void {
    this.current = state;
    this.options.onState?.(state);
  }
}

/** A feed entry or a cursor mark (`{ id }`), or null when the message is neither. */
function parseMessage(message: Record<string, unknown>): FeedEntry | { id: string } | null {
  const { id } = message;
  if (message.task_id === undefined) return typeof id === 'string' && parseFeedCursor(id) === id ? { id } : null;
  return parseFeedEntry(message);
}
