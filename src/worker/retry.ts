import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { reconnectDelayMs } from '../store/redis.js';
import { FailureStreak } from '../store/failure-streak.js';
import { redisTrouble } from '../store/unavailable.js';

/**
 * Wait before attempt `attempt` (2 for the first retry): RETRY_BASE_MS doubling per retry,
 * capped at RETRY_MAX_MS; the upper half is random so retries of many tasks spread out.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 2));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * Retries an idempotent Redis call while Redis is down or refuses writes for now (see
 * redisTrouble), so a Redis restart or a full memory does not fail the task: warned at its first
 * failure, the retries logged at debug. Stops when `stop` is aborted.
 */
export async function retryWhileDown<T>(call: () => Promise<T>, stop: AbortSignal, log: () => Logger): Promise<T> {
  const streak = new FailureStreak(log, 'redis unavailable; retrying');
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (redisTrouble(err) === null || stop.aborted) throw err;
      streak.failed(err, { attempt });
      await delay(reconnectDelayMs(attempt + 1), undefined, { signal: stop });
    }
  }
}
