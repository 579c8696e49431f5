/**
 * Every WebSocket close code the gateway sends, each described in CLOSE_CODE_MEANINGS (the README's
 * close-code table mirrors them). 4xxx codes follow HTTP statuses where one fits (4400 ~ 400, 4404 ~ 404).
 */
export const CloseCode = {
  DONE: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  INVALID_PAYLOAD: 1007,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  TRY_AGAIN: 1013,
  BAD_REQUEST: 4400,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
  FEED_CURSOR_EXPIRED: 4410,
  TASK_CORRUPTED: 4409,
  SLOW_CONSUMER: 4008,
} as const;

/**
 * What each close code means to a client, as the OpenAPI document and the README's close-code
 * table say it; a code added to CloseCode must be described here.
 */
export const CLOSE_CODE_MEANINGS = {
  DONE: 'The terminal event (COMPLETED, FAILED, CANCELLED) was sent; nothing more will come.',
  GOING_AWAY: 'The gateway is shutting down; resume with lastEventId (on another gateway).',
  TOO_BIG: 'The client sent a message larger than the gateway accepts (4 KiB); sent by the ws library, without a reason.',
  INTERNAL: 'An unexpected server error; resume with lastEventId.',
  TRY_AGAIN: 'Temporarily unable to serve (e.g. Redis is down); resume with lastEventId after a backoff.',
  BAD_REQUEST: 'Malformed task id, malformed or out-of-range lastEventId, or the client sent a message.',
  NOT_FOUND: 'Unknown task (never created, or expired after TASK_TTL_S).',
  TASK_CORRUPTED:
    "The task's keys in Redis hold the wrong type (TASK_CORRUPTED, HTTP 409), or a feed's key does (DATA_CORRUPTED), " +
    'at the start of the watch or later; retrying cannot help.',
  SLOW_CONSUMER:
    'The client read too slowly: its send buffer grew over WS_MAX_BUFFERED_BYTES with live events, or its replay ' +
    'could send nothing for WS_REPLAY_STALL_MS; resume with lastEventId.',
  PROTOCOL_ERROR: 'The client sent a malformed frame (e.g. unmasked); sent without a reason.',
  INVALID_PAYLOAD: 'The client sent a text frame that is not UTF-8; sent without a reason.',
  FEED_CURSOR_EXPIRED:
    'A feed cursor older than the feed holds (or beyond its end): reload the task list, then reconnect with ' +
    'lastEventId = the id that ends the reason (`... continue from <id>`).',
  UNAUTHORIZED: 'Missing, invalid or expired token (API_TOKENS set); the upgrade answers 401 first, so clients normally see that.',
  FORBIDDEN: 'Origin not allowed (ALLOWED_ORIGINS); the upgrade answers 403 first, so clients normally see that.',
} satisfies Record<keyof typeof CloseCode, string>;

/** The close a client sends when it stops watching: RFC 6455's normal closure. */
export const CLIENT_DONE_CLOSE = 1000;
