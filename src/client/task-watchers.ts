import { compareEventIds, parseEventId } from '../wire/event-id.js';
import { isTerminal, type Json, type TaskEvent } from '../wire/events.js';
import { MUX_PATH, encodeClientMessage, parseServerMessage, type MuxClientMessage, type MuxControlMessage } from '../wire/mux.js';
import { TaskOutput, type OutputChange } from '../wire/output.js';
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

/** One task's watch: TaskWatcher's options without the connection's. */
export interface WatchOptions {
  /** Resume after this event id (it and everything before it are never delivered). */
  lastEventId?: string | undefined;
  /** A watch token of this task (or an API token); overrides the connection's `token`. */
  token?: string | undefined;
  onEvent?: ((event: TaskEvent) => void) | undefined;
  /** As TaskWatcher's onOutput: the output rule's changes, after onEvent for the same event. */
  onOutput?: ((change: OutputChange) => void) | undefined;
  onState?: ((state: WatchState) => void) | undefined;
}

/** The multiplexed endpoint's URL on the gateway's host, ws for http, wss for https. */
export function muxUrl(baseUrl: string): string {
  const url = new URL(MUX_PATH, baseUrl);
  url.protocol = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss:' : 'ws:';
  return url.toString();
}

/** A running or ended watch of one task over the shared connection. */
export class TaskWatch {
  readonly output = new TaskOutput();
  /** Resolves with the final state. */
  readonly done: Promise<FinalState>;
  /** @internal The subscription as the server holds it on the current connection. */
  sub: 'none' | 'subscribing' | 'active' = 'none';
  /** @internal Subscription retries since it was last live. */
  attempt = 0;
  /** @internal A resubscribe scheduled after a retryable `ended`. */
  timer: ReturnType<typeof setTimeout> | undefined;
  private current: WatchState = { state: 'connecting', attempt: 0 };
  private lastId: string | undefined;
  private finalResult: Json | undefined;
  private resolveDone!: (state: FinalState) => void;

  /** @internal Created by TaskWatchers.watch. */
  constructor(
    readonly taskId: string,
    /** @internal */ readonly options: WatchOptions,
    private readonly owner: TaskWatchers,
  ) {
    if (options.lastEventId !== undefined && options.lastEventId !== '') {
      const id = parseEventId(options.lastEventId);
      if (id === null) throw new Error(`invalid lastEventId ${JSON.stringify(options.lastEventId)}`);
      this.lastId = id;
    }
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get state(): WatchState {
    return this.current;
  }

  /** The id of the last event delivered (or the one given to resume after). */
  get lastEventId(): string | undefined {
    return this.lastId;
  }

  /** The COMPLETED event's result, once it has arrived. */
  get result(): Json | undefined {
    return this.finalResult;
  }

  get isFinal(): boolean {
    const s = this.current.state;
    return s === 'finished' || s === 'failed' || s === 'closed';
  }

  /** Stops this watch (unsubscribes); the connection stays for the others. */
  close(): Promise<FinalState> {
    this.owner.unwatch(this.taskId);
    return this.done;
  }

  /** @internal Delivers an event unless it is not after the last one; true when it was terminal. */
  deliver(event: TaskEvent): boolean {
    if (this.lastId !== undefined && compareEventIds(event.id, this.lastId) <= 0) return false;
    this.lastId = event.id;
    if (event.result !== undefined) this.finalResult = event.result;
    this.options.onEvent?.(event);
    const change = this.output.apply(event);
    if (change) this.options.onOutput?.(change);
    return isTerminal(event);
  }

  /** @internal */
  setState(state: WatchState): void {
    if (this.isFinal) return;
    this.current = state;
    this.options.onState?.(state);
    if (this.isFinal) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.resolveDone(state as FinalState);
    }
  }
}

/**
 * Watches many tasks over one WebSocket (`/ws`, protocol in src/wire/mux.ts) with TaskWatcher's
 * guarantees per task: each event once, in stream order, resumed exactly after disconnects. On a
 * reconnect (same backoff and stop rules as TaskWatcher) it subscribes every running watch again
 * with its own cursor; a subscription the gateway ends with a code that means "resume" is
 * subscribed again after its own backoff. The socket is open while at least one watch runs (and
 * `lingerMs` after the last one ends).
 */
export class TaskWatchers {
  private socket: MuxSocketLike | undefined;
  private open = false;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Running watches by task id. */
  private readonly watches = new Map<string, TaskWatch>();
  /**
   * Subscriptions of this connection no watch owns any more, by task: the message that will end
   * them (`ended` after a terminal event, `unsubscribed` after an unsubscribe). Until it comes,
   * everything about that task belongs to them, and a new watch of it waits to subscribe.
   */
  private readonly closing = new Map<string, 'ended' | 'unsubscribed'>();
  private readonly createSocket: MuxSocketFactory;

  constructor(private readonly options: TaskWatchersOptions) {
    this.createSocket = options.createSocket ?? ((url) => new WebSocket(url));
  }

  /** Running watches. */
  get size(): number {
    return this.watches.size;
  }

  /** Starts watching `taskId`; throws if it is already watched by this client, or after close(). */
  watch(taskId: string, options: WatchOptions = {}): TaskWatch {
    if (this.closed) throw new Error('TaskWatchers is closed');
    const id = taskId.toLowerCase();
    if (this.watches.has(id)) throw new Error(`task ${id} is already watched`);
    const watch = new TaskWatch(id, options, this);
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.watches.set(id, watch);
    watch.setState({ state: 'connecting', attempt: this.attempt });
    if (this.open) this.subscribe(watch);
    else if (!this.socket && this.timer === undefined) this.connect();
    return watch;
  }

  /** Stops watching `taskId` (its watch ends `closed`); nothing happens when it is not watched. */
  unwatch(taskId: string): void {
    const watch = this.watches.get(taskId.toLowerCase());
    if (!watch) return;
    if (watch.sub !== 'none' && this.open) {
      this.send({ type: 'unsubscribe', task: watch.taskId });
      this.closing.set(watch.taskId, 'unsubscribed');
    }
    watch.sub = 'none';
    this.finish(watch, { state: 'closed' });
  }

  /** Stops every watch and the connection, for good. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const watch of [...this.watches.values()]) this.finish(watch, { state: 'closed' });
    this.disconnect();
  }

  private connect(): void {
    this.timer = undefined;
    for (const watch of this.watches.values()) {
      const s = watch.state;
      if (watch.timer === undefined && !(s.state === 'connecting' && s.attempt === this.attempt)) {
        watch.setState({ state: 'connecting', attempt: this.attempt });
      }
    }
    let socket: MuxSocketLike;
    try {
      socket = this.createSocket(muxUrl(this.options.baseUrl));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      for (const watch of [...this.watches.values()]) this.finish(watch, { state: 'failed', code: 0, reason });
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.open = true;
      this.attempt = 0;
      for (const watch of this.watches.values()) if (watch.timer === undefined) this.subscribe(watch);
    };
    socket.onmessage = (message) => {
      if (this.socket === socket) this.onMessage(message.data);
    };
    socket.onerror = () => undefined;
    socket.onclose = (event) => {
      if (this.socket === socket) this.onClose(event.code, event.reason);
    };
  }

  private subscribe(watch: TaskWatch): void {
    if (this.closing.has(watch.taskId)) return;
    watch.sub = 'subscribing';
    const token = watch.options.token ?? this.options.token;
    this.send({
      type: 'subscribe',
      task: watch.taskId,
      ...(watch.lastEventId === undefined ? {} : { lastEventId: watch.lastEventId }),
      ...(token === undefined ? {} : { token }),
    });
  }

  private send(message: MuxClientMessage): void {
    this.socket?.send(encodeClientMessage(message));
  }

  private onMessage(data: unknown): void {
    const message = parseServerMessage(data);
    if (!message) {
      const reason = 'the gateway sent a malformed message';
      for (const watch of [...this.watches.values()]) this.finish(watch, { state: 'failed', code: 1002, reason });
      return;
    }
    if ('control' in message) return this.onControl(message.control);
    const event = message.event;
    if (this.closing.has(event.task_id)) return;
    const watch = this.watches.get(event.task_id);
    if (!watch || watch.sub !== 'active') return;
    if (watch.deliver(event)) {
      // The gateway follows a terminal event with `ended`; until then the task is still its.
      this.closing.set(watch.taskId, 'ended');
      watch.sub = 'none';
      this.finish(watch, { state: 'finished', status: event.status });
    }
  }

  private onControl(message: MuxControlMessage): void {
    if (message.type === 'error') {
      this.options.onError?.(message.reason);
      return;
    }
    const awaited = this.closing.get(message.task);
    if (awaited !== undefined) {
      if (message.type !== awaited) return;
      this.closing.delete(message.task);
      const waiting = this.watches.get(message.task);
      if (waiting && waiting.timer === undefined && this.open) this.subscribe(waiting);
      return;
    }
    const watch = this.watches.get(message.task);
    if (!watch || watch.sub === 'none') return;
    if (message.type === 'subscribed') {
      watch.sub = 'active';
      watch.attempt = 0;
      watch.setState({ state: 'live' });
    } else if (message.type === 'ended') {
      watch.sub = 'none';
      const outcome = closeOutcome(message.code);
      if (outcome === 'finished') this.finish(watch, { state: 'finished', status: null });
      else if (outcome === 'failed') this.finish(watch, { state: 'failed', code: message.code, reason: message.reason });
      else this.retry(watch, message.code, message.reason);
    }
  }

  /** Subscribes `watch` again after its own backoff (the connection stays). */
  private retry(watch: TaskWatch, code: number, reason: string): void {
    const delayMs = backoffDelay(watch.attempt, this.options.random ?? Math.random, this.options.backoff ?? DEFAULT_BACKOFF);
    watch.attempt++;
    watch.setState({ state: 'reconnecting', attempt: watch.attempt, delayMs, nextAttemptAt: Date.now() + delayMs, code, reason });
    watch.timer = setTimeout(() => {
      watch.timer = undefined;
      watch.setState({ state: 'connecting', attempt: watch.attempt });
      if (this.open) this.subscribe(watch);
    }, delayMs);
  }

  private onClose(code: number, reason: string): void {
    this.socket = undefined;
    this.open = false;
    this.closing.clear();
    for (const watch of this.watches.values()) {
      watch.sub = 'none';
      if (watch.timer !== undefined) clearTimeout(watch.timer);
      watch.timer = undefined;
    }
    if (this.watches.size === 0) return;
    if (TERMINAL_CLOSE_CODES.has(code)) {
      for (const watch of [...this.watches.values()]) this.finish(watch, { state: 'failed', code, reason });
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.options.random ?? Math.random, this.options.backoff ?? DEFAULT_BACKOFF);
    this.attempt++;
    const state: WatchState = { state: 'reconnecting', attempt: this.attempt, delayMs, nextAttemptAt: Date.now() + delayMs, code, reason };
    for (const watch of this.watches.values()) watch.setState(state);
    this.timer = setTimeout(() => this.connect(), delayMs);
  }

  private finish(watch: TaskWatch, state: FinalState): void {
    if (this.watches.get(watch.taskId) === watch) this.watches.delete(watch.taskId);
    watch.setState(state);
    if (this.watches.size > 0 || this.idleTimer !== undefined) return;
    const linger = this.options.lingerMs ?? 0;
    if (linger > 0 && this.socket && !this.closed) this.idleTimer = setTimeout(() => this.disconnect(), linger);
    else this.disconnect();
  }

  /** Closes the socket (no watch needs it); the next watch opens a new one. */
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
    socket?.close(1000, 'client done');
  }
}
