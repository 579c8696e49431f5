import WebSocket from 'ws';
import type { TaskEvent } from '../../src/wire/events.js';
import { BATCH_PARAM } from '../../src/wire/frames.js';
import type { MuxClientMessage, MuxControlMessage, MuxFeedEntry } from '../../src/wire/mux.js';
import { parseServerFrame, type ServerMessage } from '../../src/wire/mux-messages.js';
import {
  endedSchema, feedEndedSchema, feedSubscribedSchema, feedUnsubscribedSchema, muxErrorSchema, muxFeedEntrySchema, subscribedSchema,
  unsubscribedSchema,
} from '../../src/http/mux-schemas.js';
import type { Scope } from './processes.js';
import { waitFor, withTimeout } from './wait.js';

const CONTROL_SCHEMAS = { subscribed: subscribedSchema, ended: endedSchema, unsubscribed: unsubscribedSchema, error: muxErrorSchema };
const FEED_CONTROL_SCHEMAS = { subscribed: feedSubscribedSchema, ended: feedEndedSchema, unsubscribed: feedUnsubscribedSchema };

type FeedControl = Extract<MuxControlMessage, { feed: string }>;

/**
 * A raw client of the multiplexed `/ws` over `ws`: it sends what the test says and records
 * everything the gateway sends, in order. Terminated when the scope ends.
 */
export class MuxClient {
  readonly messages: ServerMessage[] = [];
  /** Each frame received, in order: its messages (more than one only with `?batch=1`) and its size in bytes. */
  readonly frames: { messages: number; bytes: number }[] = [];
  /** Resolves with the close code and reason the client saw. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket, batched: boolean) {
    ws.on('message', (data) => {
      const frame = String(data);
      const messages = parseServerFrame(frame);
      if (!messages) throw new Error(`the gateway sent a malformed message: ${frame.slice(0, 200)}`);
      if (batched !== frame.startsWith('[')) throw new Error(`a frame ${batched ? 'without' : 'with'} a batch: ${frame.slice(0, 200)}`);
      this.frames.push({ messages: messages.length, bytes: Buffer.byteLength(frame) });
      for (const message of messages) {
        // Every control message matches its documented schema (/openapi.json).
        if ('control' in message) {
          const c = message.control;
          if ('feed' in c) FEED_CONTROL_SCHEMAS[c.type].strict().parse(c);
          else CONTROL_SCHEMAS[c.type].parse(c);
        }
        if ('entry' in message) muxFeedEntrySchema.strict().parse(message.entry);
        this.messages.push(message);
      }
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(scope: Scope, baseUrl: string, options: { query?: string; headers?: Record<string, string> } = {}): Promise<MuxClient> {
    const query = options.query ?? '';
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws${query}`, { headers: options.headers });
    const client = new MuxClient(ws, new URLSearchParams(query).get(BATCH_PARAM) === '1');
    scope.after(() => ws.terminate());
    await withTimeout(new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }), 'the /ws upgrade');
    return client;
  }

  send(message: MuxClientMessage | Record<string, unknown>): void {
    this.ws.send(JSON.stringify(message));
  }

  /** The events received for `task`, in order. */
  events(task: string): TaskEvent[] {
    return this.messages.flatMap((m) => ('event' in m && m.event.task_id === task ? [m.event] : []));
  }

  /** The control messages received about `task`, in order. */
  controls(task: string): MuxControlMessage[] {
    return this.messages.flatMap((m) => ('control' in m && 'task' in m.control && m.control.task === task ? [m.control] : []));
  }

  /** The entries received on the subscription of `feed` (`all`, `tag:<tag>`), in order. */
  entries(feed: string): MuxFeedEntry[] {
    return this.messages.flatMap((m) => ('entry' in m && m.entry.feed === feed ? [m.entry] : []));
  }

  /** The control messages received about `feed`, in order. */
  feedControls(feed: string): FeedControl[] {
    return this.messages.flatMap((m) => ('control' in m && 'feed' in m.control && m.control.feed === feed ? [m.control] : []));
  }

  /** Waits until the gateway ended or refused `feed`'s subscription for the `nth` time (1-based); returns that message. */
  feedEnded(feed: string, nth = 1, timeoutMs = 20_000): Promise<FeedControl & { type: 'ended' }> {
    return waitFor(
      () => this.feedControls(feed).filter((c): c is FeedControl & { type: 'ended' } => c.type === 'ended')[nth - 1],
      `ended #${nth} for ${feed}`,
      timeoutMs,
    );
  }

  /** What the gateway sent about `task`: events as `event <status>`, control messages as `<type> [code]`. */
  trace(task: string): string[] {
    return this.messages.flatMap((m) => {
      if ('entry' in m) return [];
      if ('event' in m) return m.event.task_id === task ? [`event ${m.event.status}`] : [];
      const c = m.control;
      if (c.type === 'error' || !('task' in c) || c.task !== task) return [];
      return [c.type === 'ended' ? `ended ${c.code}` : c.type];
    });
  }

  errors(): string[] {
    return this.messages.flatMap((m) => ('control' in m && m.control.type === 'error' ? [m.control.reason] : []));
  }

  /** Waits until the gateway ended or refused `task`'s subscription; returns that message. */
  ended(task: string, timeoutMs = 20_000): Promise<MuxControlMessage & { type: 'ended' }> {
    return waitFor(
      () => this.controls(task).find((c): c is MuxControlMessage & { type: 'ended' } => c.type === 'ended'),
      `ended for ${task}`,
      timeoutMs,
    );
  }

  waitFor<T>(check: () => T, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
    return waitFor(check, what, timeoutMs);
  }
}
