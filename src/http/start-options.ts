import { z } from 'zod';
import { AppError } from '../errors.js';
import type { StartOptions } from '../store/task-store.js';
import { PRIORITIES } from '../wire/events.js';

/** A schedule may be this far in the past (clock skew, a slow retry): the task is due at once. */
export const SCHEDULE_PAST_SLACK_MS = 60_000;

/** The start body's fields about when and how a task starts (merged into POST /tasks's body schema). */
export const startOptionFields = {
  priority: z
    .enum(PRIORITIES)
    .optional()
    .describe('Workers take every waiting high-priority command before a normal one, and normal before low. Default normal.'),
  run_at: z
    .union([z.iso.datetime({ offset: true }), z.number().int().min(0)])
    .optional()
    .describe(
      'Start the task at this time (RFC 3339, or epoch ms): it is SCHEDULED until then. At most SCHEDULE_MAX_AHEAD_S ahead, ' +
        'at most a minute in the past. Not with `delay_ms`.',
    ),
  delay_ms: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('Start the task this many milliseconds from now: it is SCHEDULED until then. Not with `run_at`.'),
  concurrency_key: z
    .string()
    .min(1)
    .max(200)
    // A lone surrogate would reach Redis as U+FFFD, so that distinct keys shared one limit.
    .refine((key) => key.isWellFormed(), 'must be well-formed Unicode (no lone surrogate)')
    .optional()
    .describe(
      'E.g. a customer id: tasks of this type with the same key run at most `concurrencyPerKey` (default 1) at once; ' +
        'the others wait in PENDING (`waiting_for_slot`), oldest first.',
    ),
};

type Fields = {
  priority?: StartOptions['priority'];
  run_at?: string | number | undefined;
  delay_ms?: number | undefined;
  concurrency_key?: string | undefined;
};

/**
 * The StartOptions of a parsed start body; throws INVALID_BODY for both `run_at` and `delay_ms`,
 * or a due time more than `maxAheadS` ahead or SCHEDULE_PAST_SLACK_MS behind `now`.
 */
export function startOptions(body: Fields, now: number, maxAheadS: number): StartOptions {
  if (body.run_at !== undefined && body.delay_ms !== undefined) {
    throw new AppError('INVALID_BODY', 'give either run_at or delay_ms, not both');
  }
  let runAt: number | undefined;
  if (body.delay_ms !== undefined) runAt = now + body.delay_ms;
  else if (typeof body.run_at === 'string') runAt = Date.parse(body.run_at);
  else runAt = body.run_at;
  if (runAt !== undefined) {
    const field = body.delay_ms === undefined ? 'run_at' : 'delay_ms';
    if (runAt > now + maxAheadS * 1000) {
      throw new AppError('INVALID_BODY', `${field} is more than SCHEDULE_MAX_AHEAD_S (${maxAheadS} s) ahead`, { run_at: runAt, now });
    }
    if (runAt < now - SCHEDULE_PAST_SLACK_MS) {
      throw new AppError('INVALID_BODY', `${field} is more than a minute in the past`, { run_at: runAt, now });
    }
  }
  return { priority: body.priority, runAt, concurrencyKey: body.concurrency_key };
}
