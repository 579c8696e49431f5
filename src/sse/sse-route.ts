import type { ServerResponse } from 'node:http';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { AppError } from '../errors.js';
import type { GuardDeps } from '../http/guards.js';
import { queryParam } from '../http/query.js';
import { AccessRouter } from '../http/route-access.js';
import type { RouterContext } from '@koa/router';
import { openFeed } from '../hub/feed.js';
import { overLimit, waitForRoom, type Outbox } from '../hub/room.js';
import { openWatch, type Watch, type WatchRequest } from '../hub/watch.js';
import type { Hub } from '../hub/hub.js';
import type { WireEvent } from '../store/events.js';
import { FeedGap } from '../store/feed-store.js';
import type { FeedStore } from '../store/feed-store.js';
import type { TaskStore } from '../store/task-store.js';
import { FEED_RESET_EVENT, feedResetMessage, type FeedReset } from '../wire/feed.js';

export interface SseDeps {
  hub: Hub;
  store: TaskStore;
  feeds: FeedStore;
  logger: Logger;
  metrics: Metrics;
  config: Pick<Config, 'WS_PING_MS' | 'WS_MAX_BUFFERED_BYTES' | 'WS_REPLAY_STALL_MS'>;
  /** The open streams, which the gateway ends when it shuts down. */
  streams: SseStreams;
}

/** How long a stream ended by shutdown may take to reach its client before it is cut, ms. */
const SHUTDOWN_CUT_MS = 2000;

/** A gateway's open SSE responses: shutdown ends them all, as it closes WebSockets with 1001. */
export class SseStreams {
  private readonly open = new Set<SseStream>();
  private closed = false;

  /** Throws SHUTTING_DOWN (503) once closing: the request never becomes a stream. */
  add(stream: SseStream): void {
    // Connection: close, so that the kept-alive connection does not hold the exit.
    if (this.closed) throw new AppError('SHUTTING_DOWN', 'server shutting down', undefined, { Connection: 'close' });
    this.open.add(stream);
  }

  delete(stream: SseStream): void {
    this.open.delete(stream);
  }

  /** Ends every stream (clients resume from their last id elsewhere); resolves once all are closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.open].map((stream) => stream.shutdown()));
  }
}

/**
 * One SSE message: the event id, then the same JSON a WebSocket watcher gets. Events other than
 * stages are named after their type (`event: output`), so a browser listens to them with
 * addEventListener; stage events stay unnamed, for `onmessage`.
 */
export function sseFrame(event: WireEvent): string {
  return event.type === 'stage'
    ? `id: ${event.id}\ndata: ${event.json}\n\n`
    : `id: ${event.id}\nevent: ${event.type}\ndata: ${event.json}\n\n`;
}

/**
 * `GET /sse/task/<id>`: the SSE twin of the WebSocket watch, over the same hub. The resume point
 * is the `Last-Event-ID` header (what EventSource sends when it reconnects) or else
 * `?lastEventId`. Errors found before the stream starts are ordinary JSON error responses
 * (400, 404, 503), and a task that had ended at the resume point answers 204 (EventSource's
 * signal to stop). Afterwards the stream just ends, and the client resumes from its last id:
 * after the terminal event, when the feed breaks, and when the client reads too slowly (over
 * WS_MAX_BUFFERED_BYTES unsent, the WebSocket's 4008). The response starts with the first event,
 * so a replay is written as it is read, never held whole.
 */
export function sseRouter(deps: SseDeps, guards: GuardDeps): AccessRouter {
  const router = new AccessRouter(guards);
  router.get('/sse/task/:id', 'watch-stream', async (ctx) => {
    const taskId = ctx.params.id!;
    ctx.state.taskId = taskId;
    await serve(ctx, deps, { taskId }, (stream) => openWatch(deps, { taskId, ...resumePoint(ctx) }, stream));
  });
  // The feed twin: a FeedGap, even before the first entry, is a `reset` message (see SseStream.error).
  router.get('/sse/feed', 'feed-stream', async (ctx) => {
    const tag = queryParam(ctx.query, 'tag');
    await serve(ctx, deps, { feed: tag ?? '*' }, (stream) => openFeed(deps, { tag, ...resumePoint(ctx) }, stream));
  });
  return router;
}

/** The resume point: the `Last-Event-ID` header (EventSource's reconnect), else `?lastEventId`. */
function resumePoint(ctx: RouterContext): Omit<WatchRequest, 'taskId'> {
  const header = ctx.get('last-event-id');
  return header !== '' ? { lastEventId: header, lastEventIdName: 'Last-Event-ID' } : { lastEventId: queryParam(ctx.query, 'lastEventId') };
}

/** Streams what `open` starts to the response; `about` names it in the log lines. */
async function serve(ctx: RouterContext, deps: SseDeps, about: Record<string, string>, open: (stream: SseStream) => Promise<Watch>): Promise<void> {
  const stream = new SseStream(ctx.res, deps, deps.logger.child({ ...about, connId: uuidv4().slice(0, 8) }));
  let watch: Watch;
  try {
    watch = await open(stream);
  } catch (err) {
    // Before the first event this is an ordinary JSON error; after it, the stream just ends.
    if (!stream.started && !(err instanceof FeedGap)) throw err;
    stream.error(err instanceof Error ? err : new Error(String(err)));
    ctx.respond = false;
    return;
  }
  stream.attach(watch);
  ctx.status = stream.status;
  ctx.respond = false;
}

/** Writes a watch to the response: headers with the first event (or 204 when there is none to come). */
export class SseStream {
  started = false;
  status = 200;
  private ended = false;
  private watch: Watch | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private gone = false;
  /** The live feed broke: the client must come back, so never answer 204. */
  private broken = false;
  /** Replayed events wait for room (room()) instead of being judged by the backlog. */
  private replaying = true;
  /** Counted in the open-connections gauge (a 200 stream). */
  private counted = false;
  private readonly outbox: Outbox;

  constructor(
    private readonly res: ServerResponse,
    private readonly deps: SseDeps,
    private readonly log: Logger,
  ) {
    deps.streams.add(this);
    this.outbox = { buffered: () => res.writableLength, gone: () => this.gone || this.ended, drains: res, closes: res };
    // Registered at once: the client may leave while the watch is still being opened.
    res.once('close', () => {
      this.gone = true;
      deps.streams.delete(this);
      this.stop();
    });
  }

  /** The watch is open and replayed: from now on events are live. */
  attach(watch: Watch): void {
    this.watch = watch;
    this.replaying = false;
    if (this.gone || this.ended) {
      watch.close();
      return;
    }
    if (!this.started && !this.ended) this.begin();
  }

  event(event: WireEvent, replayed: boolean): void {
    if (this.ended || this.gone) return;
    if (!this.started) this.begin();
    this.res.write(sseFrame(event));
    this.deps.metrics.eventSent('sse', event, replayed);
    // The response corks its socket until the next tick: uncorking hands this turn's writes to
    // the kernel (see overLimit).
    if (!this.replaying && overLimit(this.outbox, this.deps.config.WS_MAX_BUFFERED_BYTES, () => this.res.socket?.uncork())) {
      this.slow();
    }
  }

  room(): Promise<boolean> | undefined {
    const { WS_MAX_BUFFERED_BYTES, WS_REPLAY_STALL_MS } = this.deps.config;
    return waitForRoom(this.outbox, WS_MAX_BUFFERED_BYTES, WS_REPLAY_STALL_MS, () => this.slow());
  }

  /** A feed opened without a cursor: an `id:` line without data sets EventSource's lastEventId. */
  start(cursor: string): void {
    if (this.ended || this.gone) return;
    if (!this.started) this.begin();
    this.res.write(`id: ${cursor}\n\n`);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.gone) return;
    if (this.started || this.broken) {
      if (!this.started) this.begin();
      this.finish();
      return;
    }
    // Nothing after the resume point and nothing to come: 204 is the one answer on which
    // EventSource stops reconnecting (after a 200 that ends, it would come back forever).
    this.status = 204;
    this.started = true;
    this.res.writeHead(204);
    this.res.end();
  }

  /** The gateway is shutting down: the stream ends, and the client resumes elsewhere. */
  shutdown(): Promise<void> {
    if (this.gone) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.res.once('close', () => resolve()));
    this.broken = true;
    this.end();
    // A client that does not read never takes the end: cut it, as WebSockets are after their 1001.
    const cut = setTimeout(() => this.res.destroy(), SHUTDOWN_CUT_MS);
    return closed.finally(() => clearTimeout(cut));
  }

  /**
   * The stream broke: it ends, and the client resumes. A FeedGap first writes the `reset` message
   * (a FeedReset), whose `id:` is the id to continue from: EventSource reconnects from there.
   */
  error(err: Error): void {
    if (err instanceof FeedGap && !this.ended && !this.gone) {
      if (!this.started) this.begin();
      const reset: FeedReset = { code: 'FEED_CURSOR_EXPIRED', message: feedResetMessage(err.continueFrom), continue_from: err.continueFrom };
      this.res.write(`id: ${err.continueFrom}\nevent: ${FEED_RESET_EVENT}\ndata: ${JSON.stringify(reset)}\n\n`);
    } else {
      this.log.warn({ err: err.message }, 'live feed broke');
    }
    this.broken = true;
    this.end();
  }

  private begin(): void {
    this.started = true;
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    this.deps.metrics.connectionOpened('sse');
    this.counted = true;
    // A comment line keeps idle proxies from timing out and surfaces a dead peer as a write error.
    this.pinger = setInterval(() => this.res.write(': ping\n\n'), this.deps.config.WS_PING_MS);
  }

  private slow(): void {
    this.log.info({ buffered: this.res.writableLength, replaying: this.replaying }, 'slow SSE consumer; ending the stream');
    this.finish();
    // It does not read, so the end would never get through: the connection goes now (what the
    // kernel already holds still reaches the client, which resumes from its last whole event).
    this.res.destroy();
  }

  private finish(): void {
    this.ended = true;
    this.stop();
    if (!this.res.writableEnded) this.res.end();
  }

  private stop(): void {
    if (this.counted) this.deps.metrics.connectionClosed('sse');
    this.counted = false;
    clearInterval(this.pinger);
    this.pinger = undefined;
    this.watch?.close();
  }
}
