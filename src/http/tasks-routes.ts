import type { RouterMiddleware } from '@koa/router';
import { z } from 'zod';
import { ConcurrencyLimits } from '../tasks/concurrency.js';
import { AppError } from '../errors.js';
import { checkEventId, checkTaskId } from '../checked-ids.js';
import type { Metrics } from '../metrics/metrics.js';
import { decodeCursor, encodeCursor } from '../store/task-index.js';
import { IdempotencyConflict, type TaskStore } from '../store/task-store.js';
import type { TaskRegistry } from '../tasks/registry.js';
import { eventsQuerySchema, instantSchema, tagSchema, tagsSchema } from './api-schemas.js';
import { readJsonBody } from './body.js';
import type { GuardDeps } from './guards.js';
import { idempotencyKeyOf, requestFingerprint } from './idempotency.js';
import { outputText } from './output-text.js';
import { firstValues } from './query.js';
import { AccessRouter } from './route-access.js';
import { STATUS_RE, STATUS_RULE } from '../wire/events.js';
import { startOptionFields, startOptions } from './start-options.js';

/** POST /tasks body. `stage_ms` at the top level is the reference route's shorthand for params.stage_ms. */
export const startTaskBody = z.strictObject({
  type: z.string().min(1).max(100).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  stage_ms: z.unknown().optional(),
  tags: tagsSchema.optional(),
  ...startOptionFields,
});

/** GET /tasks query: a page of recent tasks, newest first. */
export const listTasksQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20).describe('Tasks per page.'),
  cursor: z.string().max(100).optional().describe('The `next_cursor` of the previous page (send the same filters with it).'),
  status: z.string().regex(STATUS_RE, `a status is ${STATUS_RULE}`).optional().describe('Only tasks whose status is this one, e.g. `FAILED`.'),
  type: z.string().min(1).max(100).optional().describe('Only tasks of this type.'),
  tag: tagSchema.optional().describe('Only tasks started with this tag.'),
  created_after: instantSchema.optional().describe('Only tasks created at or after this time (inclusive).'),
  created_before: instantSchema.optional().describe('Only tasks created before this time (exclusive).'),
});

export interface TasksRouteDeps {
  store: TaskStore;
  registry: TaskRegistry;
  metrics: Metrics;
  guards: GuardDeps;
  /** SCHEDULE_MAX_AHEAD_S: how far ahead a start may be scheduled (default 30 days). */
  scheduleMaxAheadS?: number | undefined;
  /** The types' concurrency limits: a limited start is pinned to its type's partition (cluster mode). */
  limits?: ConcurrencyLimits | undefined;
}

/** Starting, listing and cancelling need an API token; reading one task, its watch token too. */
/** GET /tasks/<id>/events's query but `after`, which gets its own error (INVALID_EVENT_ID); unknown names refused. */
const eventsPageQuery = eventsQuerySchema.omit({ after: true });

export function tasksRouter({ store, registry, metrics, guards, scheduleMaxAheadS = 30 * 86400, limits = new ConcurrencyLimits(registry, {}) }: TasksRouteDeps): AccessRouter {
  const { auth } = guards;
  const router = new AccessRouter(guards);

  const start: RouterMiddleware = async (ctx) => {
    const input = await readJsonBody(ctx);
    const parsed = startTaskBody.safeParse(input === undefined ? {} : input);
    if (!parsed.success) throw new AppError('INVALID_BODY', 'invalid request body', parsed.error.issues);
    const body = parsed.data;
    const typeName = body.type ?? registry.defaultType;
    const type = registry.get(typeName);
    if (!type) {
      throw new AppError('UNKNOWN_TASK_TYPE', `unknown task type ${JSON.stringify(typeName)}`, {
        known: registry.names(),
      });
    }
    if (body.stage_ms !== undefined && body.params !== undefined && Object.hasOwn(body.params, 'stage_ms')) {
      throw new AppError('INVALID_BODY', 'stage_ms is given twice: at the top level (the shorthand) and in params; send one');
    }
    const raw = { ...body.params, ...(body.stage_ms === undefined ? {} : { stage_ms: body.stage_ms }) };
    const params = type.params.safeParse(raw);
    if (!params.success) throw new AppError('INVALID_PARAMS', 'invalid task params', params.error.issues);

    const now = Date.now();
    const key = idempotencyKeyOf(ctx.req);
    // Every other body field is a start option, and part of the request's fingerprint.
    const { type: _type, params: _params, stage_ms: _stageMs, ...options } = body;
    const tags = options.tags?.length ? options.tags : undefined;
    const idempotency = key === undefined ? undefined : {
      scope: auth.idempotencyScope(ctx.state.principal),
      key,
      // Defaults filled in, tags as a set and run_at as the instant it names (RFC 3339 in any
      // offset, or epoch ms): a retry that spells the same start otherwise is the same request.
      fingerprint: requestFingerprint({
        ...options,
        priority: options.priority ?? 'normal',
        run_at: typeof options.run_at === 'string' ? Date.parse(options.run_at) : options.run_at,
        type: typeName,
        params: params.data,
        tags: tags && [...tags].sort(),
      }),
    };
    const chosen = startOptions(body, now, scheduleMaxAheadS);
    // The slots of a limited type live in one partition, so its tasks must too (cluster mode).
    const pin = limits.of(typeName, chosen.concurrencyKey) ? `type:${typeName}` : undefined;
    const { state, replayed } = await store
      .start(typeName, params.data, now, { ...chosen, tags, idempotency, pin })
      .catch(idempotencyError);
    ctx.state.taskId = state.task_id;
    if (replayed) {
      ctx.status = 200;
      ctx.set('Idempotent-Replayed', 'true');
    } else {
      metrics.taskStarted(typeName);
      ctx.status = 202;
    }
    ctx.set('Location', `/tasks/${state.task_id}`);
    ctx.body = { ...state, ...auth.grantWatch(state.task_id) };
  };
  router.post('/tasks', 'start', start);
  router.post('/start-task', 'start', start);

  router.get('/tasks', 'api', async (ctx) => {
    const parsed = listTasksQuery.safeParse(firstValues(ctx.query));
    if (!parsed.success) throw new AppError('INVALID_QUERY', 'invalid query', parsed.error.issues);
    const { limit, cursor, status, type, tag, created_after: createdFromMs, created_before: createdBeforeMs } = parsed.data;
    const after = cursor === undefined || cursor === '' ? null : decodeCursor(cursor);
    if (after === null && cursor) throw new AppError('INVALID_QUERY', 'cursor must be a next_cursor from GET /tasks');
    const page = await store.list({ status, type, tag, createdFromMs, createdBeforeMs }, limit, after);
    ctx.body = { tasks: page.tasks, next_cursor: page.next ? encodeCursor(page.next) : null };
  });

  router.get('/tasks/:id', 'watch', async (ctx) => {
    const taskId = checkTaskId(ctx.params.id!);
    ctx.state.taskId = taskId;
    const state = await store.get(taskId);
    if (!state) throw new AppError('TASK_NOT_FOUND', `task ${taskId} not found`);
    ctx.body = state;
  });

  // 202: the task is cancelled (PENDING) or its worker was told to stop and records CANCELLED.
  router.post('/tasks/:id/cancel', 'api', async (ctx) => {
    const taskId = checkTaskId(ctx.params.id!);
    const result = await store.cancel(taskId);
    if (result.outcome === 'not_found') throw new AppError('TASK_NOT_FOUND', `task ${taskId} not found`);
    if (result.outcome === 'finished') {
      throw new AppError('TASK_ALREADY_FINISHED', `task ${taskId} already ended ${result.status}`, { status: result.status });
    }
    const state = await store.get(taskId);
    if (result.outcome === 'cancelled' && state) {
      metrics.taskFinished(registry.get(state.type) ? state.type : '(unknown)', 'CANCELLED', state.created_at);
    }
    ctx.status = 202;
    ctx.body = state ?? { task_id: taskId, status: 'CANCELLED' };
  });

  // Browsers cannot set a WebSocket's or EventSource's headers, and an API token must never go in
  // a URL: a page holding an API token trades it here for a watch token it may put in `?token=`.
  // No Redis read: the token only lets its holder watch, and only if the task exists.
  router.post('/tasks/:id/watch-token', 'api', (ctx) => {
    const taskId = checkTaskId(ctx.params.id!);
    ctx.state.taskId = taskId;
    const grant = auth.issueWatch(taskId);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { task_id: taskId, watch_token: grant?.token ?? null, expires_at: grant ? grant.expS * 1000 : null };
  });

  router.get('/tasks/:id/events', 'watch', async (ctx) => {
    const taskId = checkTaskId(ctx.params.id!);
    ctx.state.taskId = taskId;
    const { after, ...rest } = firstValues(ctx.query);
    const afterId = after ? checkEventId(after, 'after') : undefined;
    const parsed = eventsPageQuery.safeParse(rest);
    if (!parsed.success) throw new AppError('INVALID_QUERY', 'invalid query', parsed.error.issues);
    const { limit } = parsed.data;
    const head = await store.head(taskId);
    if (!head) throw new AppError('TASK_NOT_FOUND', `task ${taskId} not found`);
    // One event more than the page tells whether another page follows.
    const events = await store.events(taskId, { after: afterId, count: limit + 1 });
    const more = events.length > limit;
    if (more) events.pop();
    ctx.body = { events, next_cursor: more ? events.at(-1)!.id : null };
  });

  // The output as the exactly-once rule rebuilds it (src/wire/output.ts), up to the event named
  // in Taskcast-Last-Event-Id: text chunks as they are, each record as a line of JSON.
  router.get('/tasks/:id/output', 'watch', async (ctx) => {
    const taskId = checkTaskId(ctx.params.id!);
    ctx.state.taskId = taskId;
    const head = await store.head(taskId);
    if (!head) throw new AppError('TASK_NOT_FOUND', `task ${taskId} not found`);
    ctx.set('Taskcast-Last-Event-Id', head.lastEventId);
    ctx.set('Taskcast-Task-Status', head.status);
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = await outputText(store, taskId, head.lastEventId);
  });

  return router;
}

function idempotencyError(err: unknown): never {
  if (!(err instanceof IdempotencyConflict)) throw err;
  if (err.reason === 'gone') {
    throw new AppError('TASK_NOT_FOUND', `task ${err.taskId}, started with this Idempotency-Key, no longer exists`, { task_id: err.taskId });
  }
  throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used for a different request', { task_id: err.taskId });
}
