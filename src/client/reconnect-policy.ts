import { CloseCode } from '../wire/close-codes.js';

/**
 * When a watcher reconnects, and how long it waits first. Pure functions, shared by the browser
 * page and the CLI, so the schedule and the stop rules are tested once.
 */

export interface BackoffOptions {
  /** Upper bound of the first delay; the first retry happens within this. */
  initialMs: number;
  /** No delay exceeds this. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30_000 };

/**
 * The delay before retry number `attempt` (0 for the first retry after a connection was lost):
 * an exponential ceiling min(maxMs, initialMs * 2^attempt) with "equal jitter", uniformly in
 * [ceiling / 2, ceiling], so a crowd of clients spreads out yet never retries in a tight loop.
 * `random` returns a number in [0, 1).
 */
export function backoffDelay(attempt: number, random: () => number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Close codes after which retrying cannot help: the request itself is wrong, the task is unknown
 * or expired or corrupted, or the client may not see it.
 */
export const TERMINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.BAD_REQUEST, CloseCode.UNAUTHORIZED, CloseCode.FORBIDDEN, CloseCode.NOT_FOUND, CloseCode.TASK_CORRUPTED,
]);

export type CloseOutcome = 'finished' | 'failed' | 'retry';

/**
 * What a closed socket means. 1000: the task is over. A terminal code: give up. Anything else
 * (1001 shutdown, 1006 dropped, 1011, 1013, 4008 slow consumer, ...): resume with lastEventId.
 */
export function closeOutcome(code: number): CloseOutcome {
  // The gateway closes with DONE only once the task's terminal event has been sent.
  if (code === CloseCode.DONE) return 'finished';
  if (TERMINAL_CLOSE_CODES.has(code)) return 'failed';
  return 'retry';
}
