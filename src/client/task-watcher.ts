import { BATCH_PARAM, parseFrame } from '../wire/frames.js';
import { socketUrl } from './socket-url.js';
import { taskWsPath } from '../wire/ws-paths.js';
import { CLIENT_DONE_CLOSE, CloseCode } from '../wire/close-codes.js';
import { compareEventIds, parseEventId } from '../wire/event-id.js';
import { isTerminal, parseTaskEvent, type Json, type TaskEvent } from '../wire/events.js';
import { TaskOutput, type OutputChange } from '../wire/output.js';
import { DEFAULT_BACKOFF, backoffDelay, closeOutcome, type BackoffOptions } from './reconnect-policy.js';
import { checkWatchAccess, refusalOf, type WatchCredentials } from './watch-tokens.js';

/** Method-style, so handler parameters compare bivariantly and both DOM and `ws` handler types fit. */
type Handler<E> = { handle(event: E): void }['handle'];

/** The part of the WHATWG WebSocket API the watcher uses; the browser's and `ws`'s both fit. */
export interface WebSocketLike {
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  close(code?: number, reason?: string): void;
}

/**
 * Opens a socket to `url`, with `headers` when the watch has a header token; a function rather
 * than a class so callers can add options (agents). A browser's WebSocket cannot send headers.
 */
export type WebSocketFactory = (url: string, headers?: Record<string, string>) => WebSocketLike;

/** The global WebSocket; Node's (undici) takes `{ headers }` as its second argument, a browser's does not. */
const globalSocket: WebSocketFactory = (url, headers) =>
  headers ? new WebSocket(url, { headers } as unknown as string[]) : new WebSocket(url);

/** Where a watch stands. `finished`, `failed` and `closed` are final: nothing follows them. */
export type WatchState =
  | { state: 'connecting'; attempt: number }
  | { state: 'live' }
  | { state: 'reconnecting'; attempt: number; delayMs: number; nextAttemptAt: number; code: number; reason: string }
  /** `status` is the terminal status, or null when the gateway ended the watch (1000) before this client saw it. */
  | { state: 'finished'; status: string | null }
  | { state: 'failed'; code: number; reason: string }
  /** Stopped by `close()`. */
  | { state: 'closed' };

export type FinalState = Extract<WatchState, { state: 'finished' | 'failed' | 'closed' }>;

/**
 * `token` and `urlToken` (WatchCredentials): with auth on, Node passes `token` (sent as a header);
 * a browser passes `urlToken` for the socket URL, and `token` too (an API token or the task's watch
 * token) so that a refused connection is told apart from a lost one.
 */
export interface TaskWatcherOptions extends WatchCredentials {
  /** The gateway's base URL, http(s) or ws(s); the page passes `location.origin`. */
  baseUrl: string;
  taskId: string;
  /** Resume after this event id (it and everything before it are never delivered). */
  lastEventId?: string | undefined;
  /** Defaults to the global WebSocket (browsers, Node 22+); a factory adds what it lacks (agents), e.g. with `ws`. */
  createSocket?: WebSocketFactory | undefined;
  backoff?: BackoffOptions | undefined;
  /** Jitter source, [0, 1); tests make it deterministic. */
  random?: (() => number) | undefined;
  onEvent?: ((event: TaskEvent) => void) | undefined;
  /**
   * The output changed (after onEvent for the same event): a chunk arrived (tentative), the
   * tentative chunks were committed, or they were discarded because their stage restarted.
   * `watcher.output` holds the result of the rule (src/wire/output.ts). Output recorded before
   * `lastEventId` is not replayed, so a watcher that resumes there sees only what follows.
   */
  onOutput?: ((change: OutputChange) => void) | undefined;
  onState?: ((state: WatchState) => void) | undefined;
}

/** The watch URL: `/ws/task/<id>?lastEventId=<id>` on the gateway's host, ws for http, wss for https. */
function watchUrl(baseUrl: string, taskId: string, lastEventId?: string, watchToken?: string): string {
  return socketUrl(baseUrl, taskWsPath(taskId), { lastEventId, token: watchToken, [BATCH_PARAM]: '1' });
}

/**
 * Watches one task over WebSocket and resumes exactly: it remembers the last event id, reconnects
 * with `?lastEventId=` after an abnormal close (backing off, see reconnect-policy.ts), drops any
 * event it has already delivered, and stops for good after the terminal event or a terminal close
 * code. Every event is delivered once, in stream order.
 */
export class TaskWatcher {
  private socket: WebSocketLike | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private current: WatchState = { state: 'connecting', attempt: 0 };
  private lastId: string | undefined;
  private started = false;
  private finalResult: Json | undefined;
  private resolveDone!: (state: FinalState) => void;
  /** The task's output as it grows, with the exactly-once rule applied. */
  readonly output = new TaskOutput();
  private readonly createSocket: WebSocketFactory;
  /** Resolves with the final state. */
  readonly done: Promise<FinalState>;

  constructor(private readonly options: TaskWatcherOptions) {
    this.createSocket = options.createSocket ?? globalSocket;
    if (options.lastEventId !== undefined && options.lastEventId !== '') {
      const id = parseEventId(options.lastEventId);
      if (id === null) throw new Error(`invalid lastEventId ${JSON.stringify(options.lastEventId)}`);
      this.lastId = id;
    }
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get taskId(): string {
    return this.options.taskId;
  }

  /** The id of the last event delivered (or the one given to resume after). */
  get lastEventId(): string | undefined {
    return this.lastId;
  }

  get state(): WatchState {
    return this.current;
  }

  /** The COMPLETED event's result, once it has arrived (undefined before, or when there is none). */
  get result(): Json | undefined {
    return this.finalResult;
  }

  /** Connects; returns `done`. Calling it again has no effect. */
  start(): Promise<FinalState> {
    if (!this.started) {
      this.started = true;
      this.connect();
    }
    return this.done;
  }

  /** Stops for good: no further events or states, except `closed` when it was still running. */
  close(): Promise<FinalState> {
    this.finish({ state: 'closed' });
    return this.done;
  }

  private get isFinal(): boolean {
    const s = this.current.state;
    return s === 'finished' || s === 'failed' || s === 'closed';
  }

  private connect(): void {
    this.timer = undefined;
    this.setState({ state: 'connecting', attempt: this.attempt });
    const { urlToken, taskId } = this.options;
    if (!urlToken) return this.open(undefined);
    urlToken(taskId).then(
      (token) => {
        if (!this.isFinal) this.open(token);
      },
      (err: unknown) => {
        if (this.isFinal) return;
        const refused = refusalOf(err);
        if (refused) this.finish({ state: 'failed', ...refused });
        else this.retry(CloseCode.TRY_AGAIN, `no watch token: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  /** Opens the socket, with `watchToken` in its URL, else with the header token if there is one. */
  private open(watchToken: string | undefined): void {
    const { token, urlToken } = this.options;
    let socket: WebSocketLike;
    let opened = false;
    try {
      const url = watchUrl(this.options.baseUrl, this.options.taskId, this.lastId, watchToken);
      socket = token && !urlToken ? this.createSocket(url, { authorization: `Bearer ${token}` }) : this.createSocket(url);
    } catch (err) {
      this.finish({ state: 'failed', code: 0, reason: err instanceof Error ? err.message : String(err) });
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket || this.isFinal) return;
      opened = true;
      this.attempt = 0;
      this.setState({ state: 'live' });
    };
    socket.onmessage = (message) => {
      if (this.socket === socket && !this.isFinal) this.onFrame(message.data);
    };
    socket.onerror = () => undefined;
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (!this.isFinal) this.onClose(event.code, event.reason, opened);
    };
  }

  /** A frame of events (a batch of them, see src/wire/frames.ts); after the terminal one nothing counts. */
  private onFrame(data: unknown): void {
    const events = parseFrame(data, parseTaskEvent);
    if (!events) {
      this.finish({ state: 'failed', code: CloseCode.PROTOCOL_ERROR, reason: 'the gateway sent a malformed event' });
      return;
    }
    for (const event of events) if (!this.isFinal) this.onEvent(event);
  }

  private onEvent(event: TaskEvent): void {
    if (this.lastId !== undefined && compareEventIds(event.id, this.lastId) <= 0) return;
    this.lastId = event.id;
    if (event.result !== undefined) this.finalResult = event.result;
    this.options.onEvent?.(event);
    const change = this.output.apply(event);
    if (change) this.options.onOutput?.(change);
    if (isTerminal(event)) this.finish({ state: 'finished', status: event.status });
  }

  /**
   * A refused upgrade reaches a WebSocket client as a 1006 close, like a lost connection; so after
   * a connection that never opened, the watch is checked (checkWatchAccess) and stops on a
   * refusal (4401, 4404, ...) instead of retrying forever.
   */
  private onClose(code: number, reason: string, opened: boolean): void {
    const outcome = closeOutcome(code);
    if (outcome === 'finished') return this.finish({ state: 'finished', status: null });
    if (outcome === 'failed') return this.finish({ state: 'failed', code, reason });
    if (opened) return this.retry(code, reason);
    const { token, baseUrl, taskId } = this.options;
    void checkWatchAccess(baseUrl, taskId, token).then((refused) => {
      if (this.isFinal) return;
      if (refused) this.finish({ state: 'failed', ...refused });
      else this.retry(code, reason);
    });
  }

  private retry(code: number, reason: string): void {
    const delayMs = backoffDelay(this.attempt, this.options.random ?? Math.random, this.options.backoff ?? DEFAULT_BACKOFF);
    this.attempt++;
    this.setState({ state: 'reconnecting', attempt: this.attempt, delayMs, nextAttemptAt: Date.now() + delayMs, code, reason });
    this.timer = setTimeout(() => this.connect(), delayMs);
  }

  private finish(state: FinalState): void {
    if (this.isFinal) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(CLIENT_DONE_CLOSE, 'client done');
    this.setState(state);
    this.resolveDone(state);
  }

  private setState(state: WatchState): void {
    this.current = state;
    this.options.onState?.(state);
  }
}
