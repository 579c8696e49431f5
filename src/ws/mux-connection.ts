import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Auth } from '../auth/auth.js';
import type { Config } from '../config.js';
import { toAppError } from '../errors.js';
import { RateLimiter } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { overLimit, waitForRoom, type Outbox } from '../hub/room.js';
import { checkTaskId } from '../checked-ids.js';
import { openWatch, type Watch } from '../hub/watch.js';
import type { Hub } from '../hub/hub.js';
import type { TaskStore } from '../store/task-store.js';
import { CloseCode } from '../wire/close-codes.js';
import { parseTaskId } from '../wire/task-id.js';
import {
  MUX_MAX_STRIKES, MUX_STRIKE_WINDOW_MS, SubscriptionCode, parseClientMessage,
  type MuxControlMessage, type SubscribeMessage,
} from '../wire/mux.js';
import { closeReason } from './close-reason.js';

export interface MuxDeps {
  hub: Hub;
  store: TaskStore;
  logger: Logger;
  metrics: Metrics;
  auth: Auth;
  config: Pick<
    Config,
    'WS_MAX_BUFFERED_BYTES' | 'WS_REPLAY_STALL_MS' | 'WS_MAX_SUBSCRIPTIONS' | 'WS_MESSAGE_BURST' | 'WS_MESSAGES_PER_S'
  >;
}

interface Sub {
  task: string;
  /** Until its `ended` or `unsubscribed`: nothing of it is sent afterwards. */
  active: boolean;
  /** `subscribed` was sent (before its first event or its end). */
  acked: boolean;
  /** Its replay is being read: its events are flow-controlled by room(), not judged by overLimit. */
  replaying: boolean;
  watch: Watch | undefined;
}

/**
 * One connection of the multiplexed `/ws` (protocol: src/wire/mux.ts). Every subscription is an
 * openWatch over the shared hub, so its guarantees are those of `/ws/task/<id>`, and Redis
 * connections do not grow with subscriptions. Slow-consumer rules apply to the whole connection:
 * its send buffer is shared by every subscription.
 */
export class MuxConnection {
  private readonly subs = new Map<string, Sub>();
  private readonly rate: RateLimiter;
  private readonly strikes: number[] = [];
  private readonly outbox: Outbox;
  private corked = false;
  private stopped = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly deps: MuxDeps,
    /** The connection's own token (`?token=` or Authorization), used by subscribes that carry none. */
    private readonly connToken: string | undefined,
    private readonly log: () => Logger,
  ) {
    this.rate = new RateLimiter({ burst: deps.config.WS_MESSAGE_BURST, refillPerS: deps.config.WS_MESSAGES_PER_S, maxKeys: 1 });
    this.outbox = { buffered: () => ws.bufferedAmount, gone: () => ws.readyState !== ws.OPEN, drains: socket, closes: ws };
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
    const task = parseTaskId(message.task) ?? message.task;
    // Unsubscribes only free resources: always honoured, whatever the rate.
    if (message.type === 'unsubscribe') return this.unsubscribe(task);
    try {
      this.rate.take('');
    } catch {
      this.end(task, SubscriptionCode.TRY_AGAIN, 'message rate exceeded, subscribe again after a backoff');
      this.strike();
      return;
    }
    if (this.subs.has(task)) return this.refuse(`already subscribed to ${task}; unsubscribe first`);
    if (this.subs.size >= this.deps.config.WS_MAX_SUBSCRIPTIONS) {
      return this.end(task, SubscriptionCode.TOO_MANY_SUBSCRIPTIONS, `at most ${this.deps.config.WS_MAX_SUBSCRIPTIONS} subscriptions per connection`);
    }
    try {
      checkTaskId(task);
      this.deps.auth.requireWatch(task, message.token ?? this.connToken);
    } catch (err) {
      const appErr = toAppError(err);
      return this.end(task, appErr.closeCode, appErr.message);
    }
    this.subscribe(task, message);
  }

  private subscribe(task: string, message: SubscribeMessage): void {
    const sub: Sub = { task, active: true, acked: false, replaying: true, watch: undefined };
    this.subs.set(task, sub);
    const limit = this.deps.config.WS_MAX_BUFFERED_BYTES;
    openWatch(this.deps, { taskId: task, lastEventId: message.lastEventId }, {
      event: (event, replayed) => {
        if (!sub.active) return;
        this.ack(sub);
        this.send(event.json);
        this.deps.metrics.eventSent('ws', event, replayed);
        if (!sub.replaying && overLimit(this.outbox, limit, () => this.recork())) this.slow(sub.replaying);
      },
      end: () => {
        if (!sub.active) return;
        this.ack(sub);
        this.finish(sub, SubscriptionCode.DONE, 'task finished');
      },
      room: () => (sub.active ? waitForRoom(this.outbox, limit, this.deps.config.WS_REPLAY_STALL_MS, () => this.slow(true)) : Promise.resolve(false)),
      error: (err) => {
        if (!sub.active) return;
        this.log().warn({ taskId: task, err: err.message }, 'live feed of a subscription broke');
        const appErr = toAppError(err);
        if (appErr.code === 'TASK_CORRUPTED') this.finish(sub, SubscriptionCode.TASK_CORRUPTED, appErr.message);
        else this.finish(sub, SubscriptionCode.TRY_AGAIN, 'feed interrupted, subscribe again with lastEventId');
      },
    }).then(
      (watch) => {
        sub.replaying = false;
        if (!sub.active) return watch.close();
        sub.watch = watch;
        this.ack(sub);
      },
      (err: unknown) => {
        sub.replaying = false;
        if (!sub.active) return;
        const appErr = toAppError(err);
        if (!appErr.exposed) this.log().error({ err, taskId: task }, 'subscription failed');
        this.finish(sub, appErr.closeCode, appErr.exposed ? appErr.message : 'internal error');
      },
    );
  }

  private unsubscribe(task: string): void {
    const sub = this.subs.get(task);
    if (sub) {
      this.deactivate(sub);
      this.subs.delete(task);
    }
    this.control({ type: 'unsubscribed', task });
  }

  private ack(sub: Sub): void {
    if (sub.acked) return;
    sub.acked = true;
    this.control({ type: 'subscribed', task: sub.task });
  }

  /** Ends an open subscription with `ended`. */
  private finish(sub: Sub, code: number, reason: string): void {
    this.deactivate(sub);
    if (this.subs.get(sub.task) === sub) this.subs.delete(sub.task);
    this.end(sub.task, code, reason);
  }

  private deactivate(sub: Sub): void {
    sub.active = false;
    sub.watch?.close();
    sub.watch = undefined;
  }

  private end(task: string, code: number, reason: string): void {
    this.control({ type: 'ended', task, code, reason });
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
    this.send(JSON.stringify(message));
  }

  /** The frames of one event-loop turn are corked into one write (as on /ws/task). */
  private send(text: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.ws.send(text);
  }

  /** Hands the turn's frames to the kernel and corks again for the rest of the turn. */
  private recork(): void {
    this.socket.uncork();
    this.socket.cork();
  }

  private slow(replaying: boolean): void {
    this.log().info({ buffered: this.ws.bufferedAmount, replaying, subscriptions: this.subs.size }, 'slow consumer; closing with 4008');
    this.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
  }

  private close(code: number, reason: string): void {
    this.stop();
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, closeReason(reason));
  }
}
