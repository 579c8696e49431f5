import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { v4 as uuidv4 } from 'uuid';
import { WebSocketServer, type WebSocket } from 'ws';
import { bearerToken } from '../auth/auth.js';
import type { Config } from '../config.js';
import { AppError, FINAL_WATCH_ERRORS, toAppError } from '../errors.js';
import { endWithError } from '../http/raw-response.js';
import { lazyChild } from '../logger.js';
import { overLimit, waitForRoom } from '../hub/room.js';
import { openFeed } from '../hub/feed.js';
import { openWatch, type Watch, type WatchSink } from '../hub/watch.js';
import { CloseCode } from '../wire/close-codes.js';
import { BATCH_PARAM, parseBatchParam } from '../wire/frames.js';
import { MUX_MAX_MESSAGE_BYTES } from '../wire/mux.js';
import { FEED_WS_PATH, MUX_PATH, taskIdOfWsPath } from '../wire/ws-paths.js';
import { closeReason, fitsCloseReason } from './close-reason.js';
import { FEED_RESET_SHORT_REASON } from '../wire/feed.js';
import { FrameWriter } from './frame-writer.js';
import { MuxConnection, type MuxDeps } from './mux-connection.js';
import { UpgradeGuard, type UpgradeGuardDeps } from './upgrade-guard.js';

export interface WsDeps extends Omit<MuxDeps, 'config'> {
  server: Server;
  config: Pick<Config, 'WS_PING_MS' | 'WS_MAX_BUFFERED_BYTES' | 'WS_REPLAY_STALL_MS'> & MuxDeps['config'] & UpgradeGuardDeps['config'];
}

/** Clients of /ws/task have nothing to send; any message larger than this (either endpoint) is refused with 1009. */
const MAX_PAYLOAD_BYTES = MUX_MAX_MESSAGE_BYTES;

interface Conn {
  alive: boolean;
  /** The task's watch, or (on /ws) every subscription of the connection. */
  watch: Watch | undefined;
  writer: FrameWriter;
}

/**
 * A handshake `ws` refuses (not GET, no or bad Sec-WebSocket-Key or -Version, ...), answered as
 * every other refusal: a JSON error, 405 with Allow for a method, else 400 with `ws`'s reason and
 * the versions it speaks.
 */
function onHandshakeError(err: Error, socket: Duplex, req: IncomingMessage): void {
  if (req.method !== 'GET') endWithError(socket, new AppError('METHOD_NOT_ALLOWED', `${req.method} cannot open a WebSocket; use GET`, undefined, { Allow: 'GET' }), req.method);
  else endWithError(socket, new AppError('BAD_REQUEST', err.message, undefined, { 'Sec-WebSocket-Version': '13, 8' }), req.method);
}

/**
 * The close reason of an error: its public message; a feed reset whose cursor does not fit a
 * close reason (a cluster's) says to open the feed again without one.
 */
function closeReasonOf(appErr: AppError): string {
  if (appErr.code === 'FEED_CURSOR_EXPIRED' && !fitsCloseReason(appErr.message)) return FEED_RESET_SHORT_REASON;
  return appErr.publicMessage;
}

/** What a connection streams: a task watch or a feed, opened on the sink the connection builds. */
type Opener = (sink: WatchSink & { start(cursor: string): void }) => Promise<Watch>;

/**
 * Serves `/ws/task/<id>?lastEventId=<id>`: one JSON text frame per event, closed with 1000 after
 * the terminal event; and `/ws/feed?tag=<tag>&lastEventId=<id>`: one JSON text frame per feed
 * entry (after a `{ "id" }` cursor mark when opened without lastEventId), until the client leaves.
 * Errors close with the code of `errorTable` and the error message as reason.
 * Also serves the multiplexed `/ws` (src/ws/mux-connection.ts).
 */
export class WsServer {
  /** Without ws's own client Set (clientTracking): `conns` tracks them, and one churned Set fewer holds less garbage through scavenges. */
  private readonly wss = new WebSocketServer({ noServer: true, clientTracking: false, maxPayload: MAX_PAYLOAD_BYTES });
  private readonly conns = new Map<WebSocket, Conn>();
  private readonly pinger: NodeJS.Timeout;
  private readonly guard: UpgradeGuard;
  private closed = false;

  constructor(private readonly deps: WsDeps) {
    this.guard = new UpgradeGuard({ auth: deps.auth, config: deps.config });
    this.wss.on('wsClientError', onHandshakeError);
    deps.server.on('upgrade', this.onUpgrade);
    this.pinger = setInterval(() => this.ping(), deps.config.WS_PING_MS);
  }

  get connections(): number {
    return this.conns.size;
  }

  /** Refusals are answered before the upgrade with a status and JSON body (see UpgradeGuard). */
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://gateway');
    } catch {
      endWithError(socket, new AppError('BAD_REQUEST', 'malformed request target'), req.method);
      return;
    }
    const taskId = taskIdOfWsPath(url.pathname);
    const feed = url.pathname === FEED_WS_PATH;
    const mux = url.pathname === MUX_PATH;
    if (taskId === undefined && !feed && !mux) return endWithError(socket, new AppError('NOT_FOUND', `no route for ${url.pathname}`), req.method);
    if (this.closed) return endWithError(socket, new AppError('SHUTTING_DOWN', 'server shutting down'), req.method);
    const batched = parseBatchParam(url.searchParams.get(BATCH_PARAM));
    if (batched === null) return endWithError(socket, new AppError('INVALID_QUERY', `${BATCH_PARAM} must be 1, true, 0 or false`), req.method);
    if (mux) return this.onMuxUpgrade(req, socket, head, url, batched);
    const lastEventId = url.searchParams.get('lastEventId') ?? undefined;
    const tag = url.searchParams.get('tag') ?? undefined;
    if (!this.admit(req, socket, taskId !== undefined ? { taskId } : { tag }, url)) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const writer = new FrameWriter(ws, socket, batched);
      if (taskId !== undefined) {
        this.onConnection(ws, writer, { taskId }, lastEventId, (sink) => openWatch(this.deps, { taskId, lastEventId }, sink));
      } else {
        this.onConnection(ws, writer, { feed: tag ?? '*' }, lastEventId, (sink) => openFeed(this.deps, { tag, lastEventId }, sink));
      }
    });
  };

  /** Admits an upgrade (UpgradeGuard; its slot is freed when the socket closes), or answers the refusal and returns false. */
  private admit(req: IncomingMessage, socket: Duplex, target: Parameters<UpgradeGuard['admit']>[1], url: URL): boolean {
    try {
      const admission = this.guard.admit(req, target, url.searchParams);
      socket.once('close', admission.release);
      return true;
    } catch (err) {
      const appErr = toAppError(err);
      this.deps.logger.debug({ code: appErr.code, path: url.pathname }, 'upgrade refused');
      endWithError(socket, appErr, req.method);
      return false;
    }
  }

  /**
   * `/ws`: admitted as any socket (Origin, WS_MAX_PER_IP, WS_MAX_TOTAL) but with no token check:
   * each subscription is checked on its own, with its token or the connection's.
   */
  private onMuxUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, batched: boolean): void {
    if (!this.admit(req, socket, undefined, url)) return;
    const token = bearerToken(req.headers.authorization) ?? (url.searchParams.get('token') || undefined);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const log = lazyChild(this.deps.logger, () => ({ connId: uuidv4().slice(0, 8), mux: true }));
      const writer = new FrameWriter(ws, socket, batched);
      const mux = new MuxConnection(ws, writer, this.deps, token, log);
      const conn: Conn = { alive: true, watch: { close: () => mux.stop() }, writer };
      this.conns.set(ws, conn);
      this.deps.metrics.connectionOpened('ws');
      ws.on('pong', () => (conn.alive = true));
      ws.on('error', () => undefined);
      ws.on('close', () => {
        mux.stop();
        this.conns.delete(ws);
        this.deps.metrics.connectionClosed('ws');
      });
    });
  }

  /** `about`: what the connection's log lines name (its task, or its feed). */
  private onConnection(ws: WebSocket, writer: FrameWriter, about: Record<string, string>, lastEventId: string | undefined, open: Opener): void {
    // Most watches log nothing at LOG_LEVEL info or above.
    const log = lazyChild(this.deps.logger, () => ({ ...about, connId: uuidv4().slice(0, 8) }));
    const debug = this.deps.logger.isLevelEnabled('debug');
    const conn: Conn = { alive: true, watch: undefined, writer };
    this.conns.set(ws, conn);
    this.deps.metrics.connectionOpened('ws');
    if (debug) log().debug({ lastEventId }, 'watch connected');

    const close = (code: number, reason: string) => {
      conn.watch?.close();
      writer.close(code, closeReason(reason));
    };
    ws.on('pong', () => (conn.alive = true));
    ws.on('message', () => close(CloseCode.BAD_REQUEST, 'clients must not send messages'));
    ws.on('error', (err) => {
      if (debug) log().debug({ err: err.message }, 'socket error');
    });
    ws.on('close', (code) => {
      conn.watch?.close();
      this.conns.delete(ws);
      this.deps.metrics.connectionClosed('ws');
      if (debug) log().debug({ code }, 'watch closed');
    });

    // Live events are judged as they are written (overLimit); a replay is not judged by its
    // backlog: it waits for room instead (see room below).
    const limit = this.deps.config.WS_MAX_BUFFERED_BYTES;
    let replaying = true;
    const slow = () => {
      log().info({ buffered: writer.buffered(), replaying }, 'slow consumer; closing with 4008');
      close(CloseCode.SLOW_CONSUMER, 'slow consumer');
    };
    open({
      start: (cursor) => writer.send(JSON.stringify({ id: cursor })),
      event: (event, replayed) => {
        if (writer.gone()) return;
        writer.send(event.json);
        this.deps.metrics.eventSent('ws', event, replayed);
        if (!replaying && overLimit(writer, limit, () => writer.flush())) slow();
      },
      end: () => close(CloseCode.DONE, 'task finished'),
      room: () => waitForRoom(writer, limit, this.deps.config.WS_REPLAY_STALL_MS, slow),
      error: (err) => {
        log().warn({ err: err.message }, 'live feed broke');
        const appErr = toAppError(err);
        if (FINAL_WATCH_ERRORS.has(appErr.code)) close(appErr.closeCode, closeReasonOf(appErr));
        else close(this.closed ? CloseCode.GOING_AWAY : CloseCode.TRY_AGAIN, 'feed interrupted, resume with lastEventId');
      },
    }).then(
      (watch) => {
        replaying = false;
        if (ws.readyState === ws.OPEN) conn.watch = watch;
        else watch.close();
      },
      (err: unknown) => {
        replaying = false;
        const appErr = toAppError(err);
        if (!appErr.exposed) log().error({ err }, 'watch failed');
        close(appErr.closeCode, closeReasonOf(appErr));
      },
    );
  }

  /** Terminates sockets that missed the previous ping's pong. */
  private ping(): void {
    for (const [ws, conn] of this.conns) {
      if (!conn.alive) {
        ws.terminate();
        continue;
      }
      conn.alive = false;
      ws.ping();
    }
  }

  /** Refuses new upgrades and closes every socket with 1001 so clients resume elsewhere. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    const closing = [...this.conns.keys()].map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.once('close', () => resolve());
          const conn = this.conns.get(ws)!;
          conn.watch?.close();
          conn.writer.close(CloseCode.GOING_AWAY, 'server shutting down');
          setTimeout(() => ws.terminate(), 2000).unref();
        }),
    );
    await Promise.all(closing);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
