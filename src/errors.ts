import { redisTrouble, refusalReason } from './store/unavailable.js';
import { KeyCorrupted, TaskCorrupted, TaskGone } from './store/corrupted.js';
import { FeedGap } from './store/feed-store.js';
import { StartUnconfirmed } from './store/task-starts.js';
import { feedResetMessage } from './wire/feed.js';
import { CloseCode as C } from './wire/close-codes.js';

/**
 * Every error a client can see carries a stable string code. This table is the one place that
 * maps a code to an HTTP status and a WebSocket close code (see README "Close codes").
 */
export const errorTable = {
  BAD_REQUEST: { status: 400, close: C.BAD_REQUEST },
  INVALID_TASK_ID: { status: 400, close: C.BAD_REQUEST },
  INVALID_EVENT_ID: { status: 400, close: C.BAD_REQUEST },
  EVENT_ID_OUT_OF_RANGE: { status: 400, close: C.BAD_REQUEST },
  INVALID_BODY: { status: 400, close: C.BAD_REQUEST },
  INVALID_PARAMS: { status: 400, close: C.BAD_REQUEST },
  INVALID_QUERY: { status: 400, close: C.BAD_REQUEST },
  UNKNOWN_TASK_TYPE: { status: 400, close: C.BAD_REQUEST },
  /** An Idempotency-Key header that is empty, longer than 255, not printable ASCII, or repeated. */
  INVALID_IDEMPOTENCY_KEY: { status: 400, close: C.BAD_REQUEST },
  TASK_NOT_FOUND: { status: 404, close: C.NOT_FOUND },
  NOT_FOUND: { status: 404, close: C.NOT_FOUND },
  METHOD_NOT_ALLOWED: { status: 405, close: C.BAD_REQUEST },
  /** A plain GET of a WebSocket endpoint (no `Upgrade: websocket`); never sent over WebSocket. */
  UPGRADE_REQUIRED: { status: 426, close: C.BAD_REQUEST },
  /** Cancel of a task that already ended (COMPLETED, FAILED, CANCELLED); never sent over WebSocket. */
  TASK_ALREADY_FINISHED: { status: 409, close: C.BAD_REQUEST },
  /**
   * The task's keys in Redis hold the wrong type (bad data, e.g. overwritten by hand): it can be
   * neither read nor run, and retrying cannot help. Its worker dead-letters its command.
   */
  TASK_CORRUPTED: { status: 409, close: C.TASK_CORRUPTED },
  /** A key of no one task (a tag's index, a feed) holds the wrong type. */
  DATA_CORRUPTED: { status: 409, close: C.TASK_CORRUPTED },
  /** A start whose Idempotency-Key was used, within IDEMPOTENCY_TTL_S, for a different request. */
  IDEMPOTENCY_KEY_REUSED: { status: 422, close: C.BAD_REQUEST },
  /**
   * A feed cursor older than the feed holds (or beyond its end): details.continue_from is the id
   * to continue from after reloading the list. SSE sends it as a `reset` message instead.
   */
  FEED_CURSOR_EXPIRED: { status: 410, close: C.FEED_CURSOR_EXPIRED },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, close: C.BAD_REQUEST },
  REQUEST_TIMEOUT: { status: 408, close: C.BAD_REQUEST },
  HEADERS_TOO_LARGE: { status: 431, close: C.BAD_REQUEST },
  UNAUTHORIZED: { status: 401, close: C.UNAUTHORIZED },
  FORBIDDEN_ORIGIN: { status: 403, close: C.FORBIDDEN },
  RATE_LIMITED: { status: 429, close: C.TRY_AGAIN },
  TOO_MANY_CONNECTIONS: { status: 503, close: C.TRY_AGAIN },
  PAYLOAD_TOO_LARGE: { status: 413, close: C.TOO_BIG },
  REDIS_UNAVAILABLE: { status: 503, close: C.TRY_AGAIN },
  /** Redis answered but refused the command for now (OOM, READONLY, LOADING, MISCONF, BUSY, ...). */
  REDIS_WRITE_REFUSED: { status: 503, close: C.TRY_AGAIN },
  /**
   * A start that Redis made (the task exists and runs: details.task_id) but that no replica
   * confirmed in time (cluster mode, REDIS_CLUSTER_WAIT_REPLICAS): it is lost only if its master
   * fails first. A retry without the same Idempotency-Key starts another task.
   */
  START_UNCONFIRMED: { status: 503, close: C.TRY_AGAIN },
  SHUTTING_DOWN: { status: 503, close: C.GOING_AWAY },
  INTERNAL: { status: 500, close: C.INTERNAL },
} as const satisfies Record<string, { status: number; close: number }>;

export type ErrorCode = keyof typeof errorTable;

/**
 * The errors that end a live watch (or subscription) with their own close code: resuming cannot
 * help (a corrupted or vanished task, a corrupted key), or the error says where to go on (a feed
 * gap). Any other break asks the client to resume.
 */
export const FINAL_WATCH_ERRORS: ReadonlySet<ErrorCode> = new Set(['TASK_CORRUPTED', 'DATA_CORRUPTED', 'TASK_NOT_FOUND', 'FEED_CURSOR_EXPIRED']);

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Response headers that belong to the error (WWW-Authenticate, Retry-After). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }

  get status(): number {
    return errorTable[this.code].status;
  }

  get closeCode(): number {
    return errorTable[this.code].close;
  }

  /** 4xx messages are shown to clients; anything else stays generic (and is logged by the caller). */
  get exposed(): boolean {
    return (
      this.status < 500 ||
      this.code === 'REDIS_UNAVAILABLE' ||
      this.code === 'REDIS_WRITE_REFUSED' ||
      this.code === 'START_UNCONFIRMED' ||
      this.code === 'SHUTTING_DOWN' ||
      this.code === 'TOO_MANY_CONNECTIONS'
    );
  }

  /** What a client is told: the message when exposed, else 'internal error'. */
  get publicMessage(): string {
    return this.exposed ? this.message : INTERNAL_MESSAGE;
  }
}

const INTERNAL_MESSAGE = 'internal error';

/** The client-facing form of any thrown value. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof TaskCorrupted) return new AppError('TASK_CORRUPTED', err.message, { task_id: err.taskId });
  if (err instanceof KeyCorrupted) return new AppError('DATA_CORRUPTED', err.message, { key: err.key });
  if (err instanceof TaskGone) return new AppError('TASK_NOT_FOUND', err.message, { task_id: err.taskId });
  if (err instanceof FeedGap) {
    return new AppError('FEED_CURSOR_EXPIRED', feedResetMessage(err.continueFrom), { continue_from: err.continueFrom });
  }
  if (err instanceof StartUnconfirmed) {
    const reason = redisTrouble(err.cause) === 'refused' ? refusalReason(err.cause as Error) : 'UNAVAILABLE';
    const message =
      `task ${err.taskId} was started and runs, but no replica confirmed it in time (${reason}): it is lost only if its ` +
      `master fails first. GET /tasks/${err.taskId} shows it; retry with the same Idempotency-Key, or a retry starts another task`;
    return new AppError('START_UNCONFIRMED', message, { task_id: err.taskId, reason }, { 'Retry-After': '5' });
  }
  const trouble = redisTrouble(err);
  if (trouble === 'down') return new AppError('REDIS_UNAVAILABLE', 'Redis is unavailable, try again shortly');
  if (trouble === 'refused') {
    const reason = refusalReason(err as Error);
    return new AppError('REDIS_WRITE_REFUSED', `Redis refused the request for now (${reason}), try again shortly`, { reason }, {
      'Retry-After': '5',
    });
  }
  return new AppError('INTERNAL', INTERNAL_MESSAGE);
}

export function errorBody(err: AppError): { error: { code: string; message: string; details?: unknown } } {
  return { error: { code: err.code, message: err.publicMessage, ...(err.details === undefined ? {} : { details: err.details }) } };
}
