import { z } from 'zod';
import { errorTable, type ErrorCode } from '../errors.js';
import { EVENT_ID_RE } from '../wire/event-id.js';
import { FEED_CURSOR_RE } from '../wire/feed-cursor.js';
import { BATCH_MAX_BYTES, BATCH_PARAM } from '../wire/frames.js';
import type { ProbeReply } from '../health/probes.js';
import { EVENT_TYPES, PRIORITIES, type Json, type TaskEvent } from '../wire/events.js';
import { TAG_RE, TAG_RULE, type FeedEntry, type FeedGrant, type FeedReset } from '../wire/feed.js';
import type { TaskState } from '../wire/task-state.js';

/**
 * The shapes the HTTP API answers with, as zod schemas. /openapi.json is generated from these and
 * from the request schemas the routes validate with; tests parse real responses with them, and
 * the type checks below fail the build when the store's types drift from them.
 */

export const taskIdSchema = z.uuid().describe('Task id (a UUID, as returned by POST /tasks).');

export const eventIdSchema = z
  .string()
  .regex(EVENT_ID_RE)
  .describe('Event id: the Redis stream entry id `<ms>-<seq>` (or `<ms>`, meaning `<ms>-0`), both unsigned 64-bit.');

/** A feed cursor (src/wire/feed-cursor.ts): an entry id, or on a cluster one per partition joined by `_`. */
export const feedCursorSchema = z
  .string()
  .regex(FEED_CURSOR_RE)
  .describe('Feed cursor: the entry id `<ms>-<seq>` on a single Redis; on a Redis Cluster one such id per partition, joined by `_`. Opaque: send it back as it came.');

/** Tags of a start: at most MAX_TAGS, distinct, each TAG_RE. */
export const MAX_TAGS = 10;
export const tagSchema = z
  .string()
  .regex(TAG_RE, `a tag is ${TAG_RULE}`)
  .describe(`A tag: ${TAG_RULE}, case-sensitive.`);
export const tagsSchema = z
  .array(tagSchema)
  .max(MAX_TAGS)
  .refine((tags) => new Set(tags).size === tags.length, 'tags must be distinct')
  .describe(`Up to ${MAX_TAGS} distinct tags; list them with GET /tasks?tag=.`);

/**
 * A point in time as epoch milliseconds (digits) or an RFC 3339 date-time with an offset (`Z` or
 * `+hh:mm`), read as epoch milliseconds.
 */
export const instantSchema = z
  .union([z.string().regex(/^\d{1,15}$/), z.iso.datetime({ offset: true })])
  .transform((text) => (/^\d+$/.test(text) ? Number(text) : Date.parse(text)))
  .describe('Epoch milliseconds (e.g. `1767225600000`) or an RFC 3339 date-time (e.g. `2026-01-01T00:00:00Z`).');

/** Any JSON value (documented as such; the server only ever writes JSON here). */
const jsonValue = z.unknown() as unknown as z.ZodType<Json>;

/** GET /tasks/<id>/events page sizes. */
export const EVENTS_PAGE_DEFAULT = 1000;
export const EVENTS_PAGE_MAX = 10_000;

export const taskEventSchema = z
  .object({
    id: eventIdSchema,
    task_id: taskIdSchema,
    type: z.enum(EVENT_TYPES).describe(
      '`stage`: a status change (SCHEDULED, PENDING, each recorded stage, RETRYING, COMPLETED, FAILED, CANCELLED). ' +
        '`progress`: a progress update inside the current stage, with an optional `message`. ' +
        '`output`: a chunk of the task\'s output in `chunk`. ' +
        '`restart`: a new run took the task over from one that stopped; the output since the last stage event is void. ' +
        'Output chunks are tentative until the next stage event: RETRYING and `restart` discard them, any other stage event commits them.',
    ),
    status: z.string().describe('The task\'s status as of this event: SCHEDULED (a scheduled start, until due), PENDING, a stage status (e.g. STARTED, PROCESSING, CONCLUDING), RETRYING, or a terminal status: COMPLETED, FAILED, CANCELLED.'),
    progress: z.number().min(0).max(100).describe('The task\'s progress as of this event, percent.'),
    ts: z.number().int().describe('Append time, epoch milliseconds.'),
    attempt: z.number().int().optional().describe('RETRYING: the attempt that comes next; FAILED: the last one.'),
    error: z.string().optional().describe('Why the task failed (FAILED) or an attempt is retried (RETRYING).'),
    message: z.string().optional().describe('`progress` events: the handler\'s message (at most 1 KiB).'),
    chunk: jsonValue.optional().describe('`output` events: a string is text, any other JSON value is a record.'),
    result: jsonValue.optional().describe('The COMPLETED event: what the handler returned (absent when it returned nothing).'),
    run_at: z.number().int().optional().describe('The SCHEDULED event: when the task is due, epoch milliseconds.'),
  })
  .meta({ id: 'TaskEvent', description: 'One event of a task. Over WebSocket and SSE each message is one of these as JSON.' });

export const taskStateSchema = z
  .object({
    task_id: taskIdSchema,
    type: z.string(),
    status: z.string().describe('The status of the last event.'),
    progress: z.number().min(0).max(100),
    last_event_id: eventIdSchema,
    created_at: z.number().int().describe('Epoch milliseconds.'),
    updated_at: z.number().int().describe('Epoch milliseconds.'),
    params: z.unknown().describe('The validated task parameters.'),
    error: z.string().optional().describe('Why the task failed (FAILED only).'),
    attempt: z.number().int().optional().describe('Attempt of the current or last run; absent before any retry.'),
    message: z.string().optional().describe('The message of the latest progress event of the current stage, if it had one.'),
    result: jsonValue.optional().describe('What the handler returned (COMPLETED only; absent when it returned nothing).'),
    tags: z.array(z.string()).optional().describe('The tags the start carried; absent when it had none.'),
    cancel_requested_at: z
      .number()
      .int()
      .optional()
      .describe('When a cancel of a running task was accepted (epoch ms); its worker records CANCELLED next.'),
    priority: z.enum(PRIORITIES).optional().describe('Its start priority (absent on tasks started before priorities existed: normal).'),
    run_at: z.number().int().optional().describe('A scheduled start\'s due time, epoch ms: SCHEDULED until then, then PENDING.'),
    concurrency_key: z.string().optional().describe('The start\'s concurrency key: tasks of its type with the same key share a per-key limit.'),
    waiting_for_slot: z
      .enum(['concurrency', 'concurrency_key'])
      .optional()
      .describe('PENDING over its type\'s concurrency limit (`concurrency`) or its key\'s (`concurrency_key`): it starts when a slot frees, oldest first.'),
  })
  .meta({ id: 'TaskState', description: 'The latest state of a task, mirrored from its last event.' });

export const eventListSchema = z
  .object({
    events: z.array(taskEventSchema).describe('Oldest first.'),
    next_cursor: eventIdSchema
      .nullable()
      .describe('Pass as `after` for the next page; null when this page holds every event after `after` (so far).'),
  })
  .meta({ id: 'EventPage', description: 'A page of a task\'s events.' });

export const taskPageSchema = z
  .object({
    tasks: z.array(taskStateSchema).describe('Newest first; tasks that expired since they were indexed are left out.'),
    next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
  })
  .meta({ id: 'TaskPage', description: 'A page of recent tasks.' });

const errorCodes = Object.keys(errorTable) as [ErrorCode, ...ErrorCode[]];

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(errorCodes).describe('Stable machine-readable code.'),
      message: z.string(),
      details: z.unknown().optional().describe('E.g. the validation issues of INVALID_BODY and INVALID_PARAMS.'),
    }),
  })
  .meta({ id: 'ErrorBody', description: 'Every error answer has this body.' });

export const probeReplySchema = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    checks: z
      .object({
        redis: z.enum(['ok', 'down']),
        group: z.enum(['ok', 'missing', 'unknown']).describe('The `workers` group on `tasks:commands`.'),
        draining: z.boolean().describe('The process is shutting down.'),
        writes: z.enum(['ok', 'refused', 'unknown']).describe('Whether Redis takes writes now.'),
        refused: z.string().optional().describe('Why Redis refuses writes: OOM, READONLY, LOADING or MISCONF.'),
      })
      .optional(),
  })
  .meta({ id: 'ProbeReply', description: 'The answer of a health probe.' });

export const eventsQuerySchema = z.strictObject({
  after: eventIdSchema.optional().describe('Only events after this id (exclusive).'),
  limit: z.coerce.number().int().min(1).max(EVENTS_PAGE_MAX).default(EVENTS_PAGE_DEFAULT).describe('Events per page.'),
});

/** A start's answer: the state, plus the watch token when auth is on. */
export const startedTaskSchema = taskStateSchema
  .extend({
    watch_token: z
      .string()
      .optional()
      .describe('With auth on (API_TOKENS): lets its holder watch this task (header or ?token=) until it expires.'),
  })
  .meta({ id: 'StartedTask' });

/** POST /tasks/<id>/watch-token's answer. */
export const watchTokenSchema = z
  .object({
    task_id: taskIdSchema,
    watch_token: z
      .string()
      .nullable()
      .describe('Lets its holder watch this task (Authorization header, or `?token=` on WebSocket and SSE) until `expires_at`; null when auth is off (watching needs no token).'),
    expires_at: z.number().int().nullable().describe('When the token expires, epoch milliseconds (WATCH_TOKEN_TTL_S from now); null when auth is off.'),
  })
  .meta({ id: 'WatchToken', description: 'A fresh watch token for one task.' });

export const watchQuerySchema = z.object({
  lastEventId: eventIdSchema.optional().describe('Resume after this event id; absent: from the first event.'),
  token: z.string().optional().describe('With auth on: a watch token or API token (browsers cannot set headers here).'),
});

/** The WebSocket endpoints' `?batch=` (src/wire/frames.ts). */
export const batchQuery = {
  [BATCH_PARAM]: z.enum(['1', 'true', '0', 'false']).optional().describe(
    `\`1\` or \`true\`: every frame the server sends is a JSON array of one or more messages, in order (those of one turn of the ` +
    `gateway, at most ${BATCH_MAX_BYTES} bytes of messages per frame, a larger message alone): a browser takes a long replay many times faster. Absent, \`0\` or \`false\`: one ` +
    'message per frame. Any other value is refused with 400 INVALID_QUERY.',
  ),
};


export const feedEntrySchema = z
  .object({
    id: feedCursorSchema.describe('The feed entry id: the cursor to resume after (lastEventId).'),
    task_id: taskIdSchema,
    type: z.string().describe("The task's type."),
    status: z.string().describe("The task's status after the change."),
    progress: z.number().min(0).max(100).describe("The task's progress after the change, percent."),
    tags: z.array(z.string()).describe("The task's tags ([] when none)."),
    ts: z.number().int().describe('Time of the change, epoch milliseconds.'),
  })
  .meta({
    id: 'FeedEntry',
    description:
      "A change of a task's status (every one) or progress (at most one per FEED_PROGRESS_MS per task). A feed " +
      'opened without lastEventId first sends `{ "id": <cursor> }` (no task_id): the id it goes on from.',
  });

export const feedResetSchema = z
  .object({
    code: z.literal('FEED_CURSOR_EXPIRED'),
    message: z.string(),
    continue_from: feedCursorSchema.describe('Reload the task list, then continue the feed from this cursor.'),
  })
  .meta({ id: 'FeedReset', description: 'The data of the SSE `reset` message: the cursor is older than the feed holds.' });

export const feedQuerySchema = z.object({
  tag: tagSchema.optional().describe("Follow this tag's feed; absent: the feed of all tasks."),
  lastEventId: feedCursorSchema.optional().describe('Resume after this feed cursor; `0`: the whole retained feed; absent: live from now.'),
  token: z.string().optional().describe("With auth on: an API token, or a feed token for this feed (POST /feed-tokens)."),
});

export const feedGrantSchema = z
  .object({
    tag: tagSchema.nullable().describe('The tag whose feed the token opens; null: the all-tasks feed.'),
    token: z.string().nullable().describe('A feed token for that feed (header or ?token=); null with auth off (none needed).'),
    expires_at: z.number().int().nullable().describe('Its expiry, epoch milliseconds; null with auth off.'),
  })
  .meta({ id: 'FeedGrant' });

/** Fails to compile when the store's types and these schemas disagree. */
type Same<A, B> = [A, keyof A] extends [B, keyof B] ? ([B, keyof B] extends [A, keyof A] ? true : false) : false;
true satisfies Same<z.infer<typeof taskStateSchema>, TaskState>;
true satisfies Same<z.infer<typeof taskEventSchema>, TaskEvent>;
true satisfies Same<z.infer<typeof probeReplySchema>, ProbeReply['body']>;
true satisfies Same<z.infer<typeof feedEntrySchema>, FeedEntry>;
true satisfies Same<z.infer<typeof feedResetSchema>, FeedReset>;
true satisfies Same<z.infer<typeof feedGrantSchema>, FeedGrant>;
