import Router from '@koa/router';
import type { ServerResponse } from 'node:http';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { openWatch, type Watch } from '../hub/watch.js';
import type { Hub } from '../hub/hub.js';
import type { WireEvent } from '../store/events.js';
import type { TaskStore } from '../store/task-store.js';

export interface SseDeps {
  hub: Hub;
  store: TaskStore;
  logger: Logger;
  metrics: Metrics;
  config: Pick<Config, 'WS_PING_MS' | 'WS_MAX_BUFFERED_BYTES'>;
}

/** One SSE message: the event id, then the same JSON a WebSocket watcher gets. */
export function sseFrame(event: WireEvent): string {
  return `id: ${event.id}\ndata: ${event.json}\n\n`;
}

/**
 * `GET /sse/task/<id>`: the SSE twin of the WebSocket watch, over the same hub. The resume point
 * is the `Last-Event-ID` header (what EventSource sends when it reconnects) or else
 * `?lastEventId`. Errors found before the stream starts are ordinary JSON error responses
 * (400, 404, 503), and a task that had ended at the resume point answers 204 (EventSource's
 * signal to stop). Afterwards the stream just ends, and the client resumes from its last id:
 * after the terminal event, when the feed breaks, and when the client reads too slowly
 * (over WS_MAX_BUFFERED_BYTES unsent, the WebSocket's 4008).
 */
export function sseRouter(deps: SseDeps): Router {
  const router = new Router();
  router.get('/sse/task/:id', async (ctx) => {
    const header = ctx.get('last-event-id');
    const query = typeof ctx.query.lastEventId === 'string' ? ctx.query.lastEventId : undefined;
    const lastEventId = header !== '' ? header : query;
    const taskId = ctx.params.id!;
    ctx.state.taskId = taskId;
    const stream = new SseStream(ctx.res, deps, deps.logger.child({ taskId, connId: uuidv4().slice(0, 8) }));
    const watch = await openWatch(deps, { taskId, lastEventId }, stream);
    ctx.status = 200;
    ctx.respond = false;
    stream.start(watch);
  });
  return router;
}

/** Holds events given before the watch is confirmed, then writes straight to the response. */
class SseStream {
  private pending: { event: WireEvent; replayed: boolean }[] | null = [];
  private counted = false;
  private ended = false;
  private watch: Watch | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private gone = false;
  /** The live feed broke: the client must come back, so never answer 204. */
  private broken = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly deps: SseDeps,
    private readonly log: Logger,
  ) {
    // Registered at once: the client may leave while the watch is still being opened.
    res.once('close', () => {
      this.gone = true;
      this.stop();
    });
  }

  start(watch: Watch): void {
    this.watch = watch;
    if (this.gone) {
      watch.close();
      return;
    }
    const { res } = this;
    if (this.ended && !this.broken && this.pending?.length === 0) {
      // Nothing after the resume point and nothing to come: 204 is the one answer on which
      // EventSource stops reconnecting (after a 200 that ends, it would come back forever).
      this.pending = null;
      res.writeHead(204);
      res.end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    this.counted = true;
    this.deps.metrics.connectionOpened('sse');
    const queued = this.pending ?? [];
    this.pending = null;
    if (queued.length > 0) res.write(queued.map((q) => sseFrame(q.event)).join(''));
    for (const q of queued) this.deps.metrics.eventSent('sse', q.event, q.replayed);
    if (this.ended) {
      this.finish();
      return;
    }
    // A comment line keeps idle proxies from timing out and surfaces a dead peer as a write error.
    this.pinger = setInterval(() => res.write(': ping\n\n'), this.deps.config.WS_PING_MS);
  }

  event(event: WireEvent, replayed: boolean): void {
    if (this.pending) {
      this.pending.push({ event, replayed });
      return;
    }
    if (this.ended || this.gone) return;
    this.res.write(sseFrame(event));
    this.deps.metrics.eventSent('sse', event, replayed);
    if (this.res.writableLength > this.deps.config.WS_MAX_BUFFERED_BYTES) {
      this.log.info({ buffered: this.res.writableLength }, 'slow SSE consumer; ending the stream');
      this.finish();
    }
  }

  end(): void {
    this.ended = true;
    if (!this.pending) this.finish();
  }

  error(err: Error): void {
    this.log.warn({ err: err.message }, 'live feed broke');
    this.broken = true;
    this.end();
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
