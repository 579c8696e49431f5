/**
 * Every WebSocket close code the gateway sends. The README's close-code table mirrors this one.
 * 4xxx codes follow HTTP statuses where one fits (4400 ~ 400, 4404 ~ 404).
 */
export const CloseCode = {
  /** The terminal event (COMPLETED, FAILED, CANCELLED) was sent; nothing more will come. */
  DONE: 1000,
  /** The gateway is shutting down; resume with lastEventId (on another gateway). */
  GOING_AWAY: 1001,
  /** A malformed frame (e.g. unmasked); sent by the ws library, without a reason. */
  PROTOCOL_ERROR: 1002,
  /** A text frame that is not UTF-8; sent by the ws library, without a reason. */
  INVALID_PAYLOAD: 1007,
  /** A message larger than the gateway accepts (4 KiB); sent by the ws library, without a reason. */
  TOO_BIG: 1009,
  /** An unexpected server error; resume with lastEventId. */
  INTERNAL: 1011,
  /** Temporarily unable to serve (e.g. Redis is down); resume with lastEventId after a backoff. */
  TRY_AGAIN: 1013,
  /** Bad request: malformed task id, malformed or out-of-range lastEventId, or a client message. */
  BAD_REQUEST: 4400,
  /** Missing, invalid or expired token (when API_TOKENS is set); the HTTP upgrade normally answers 401 first. */
  UNAUTHORIZED: 4401,
  /** Origin not allowed (ALLOWED_ORIGINS); the HTTP upgrade normally answers 403 first. */
  FORBIDDEN: 4403,
  /** Unknown task (never created, or expired after TASK_TTL_S). */
  NOT_FOUND: 4404,
  /**
   * A feed's cursor (lastEventId) is older than what the feed still holds (FEED_MAXLEN), or beyond
   * its end: reload the task list, then reconnect with lastEventId = the id at the end of the
   * reason (`... continue from <id>`, see src/wire/feed.ts). Never a silent gap.
   */
  FEED_CURSOR_EXPIRED: 4410,
  /**
   * The task's keys in Redis hold the wrong type (TASK_CORRUPTED, HTTP 409), or a feed's key does
   * (DATA_CORRUPTED): at the start of the watch, or later when found corrupted while watched.
   * Retrying cannot help.
   */
  TASK_CORRUPTED: 4409,
  /**
   * The client read too slowly: its send buffer grew over WS_MAX_BUFFERED_BYTES with live events,
   * or its replay could send nothing for WS_REPLAY_STALL_MS. Resume with lastEventId.
   */
  SLOW_CONSUMER: 4008,
} as const;

/** The close a client sends when it stops watching: RFC 6455's normal closure. */
export const CLIENT_DONE_CLOSE = 1000;
