import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { TaskRegistry } from '../tasks/registry.js';
import {
  feedEntrySchema,
  feedResetSchema,
  eventListSchema,
  eventsQuerySchema,
  startedTaskSchema,
  taskPageSchema,
  taskStateSchema,
  watchTokenSchema,
} from './api-schemas.js';
import { registerMux } from './mux-schemas.js';
import { registerFeeds } from './openapi-feed.js';
import { registerMeta } from './openapi-meta.js';
import { registerTaskWatches } from './openapi-watch.js';
import { errors, idParams, json, register } from './openapi-parts.js';
import { listTasksQuery, startTaskBody } from './tasks-routes.js';
import { LIST_SCAN_MAX } from '../store/task-store.js';

/**
 * The OpenAPI 3.1 document of the gateway, generated from the zod schemas the routes validate
 * with and answer with. WebSocket upgrades have no OpenAPI form: they are documented as GET
 * operations with the `x-websocket` extension (message schema and close codes).
 */
export function buildOpenApiDocument(registry: TaskRegistry): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const api = new OpenAPIRegistry();
  // Named schemas carry a zod `.meta({ id })` and become components, each task type's params too.
  const names = registry.names() as [string, ...string[]];
  const params = names.map((name) =>
    registry.get(name)!.params.meta({ id: `Params_${name}`, description: `params of task type "${name}"` }),
  );
  const startBody = startTaskBody
    .extend({
      type: z.enum(names).optional().describe(`Task type; default ${registry.defaultType}.`),
      params: (params.length === 1 ? params[0]! : z.union(params)).optional(),
      stage_ms: startTaskBody.shape.stage_ms.describe('Shorthand for `params.stage_ms`.'),
    })
    .describe('The start request. Every field is optional.');
  const location = { Location: { description: '/tasks/{id}', schema: { type: 'string' as const } } };
  for (const path of ['/tasks', '/start-task']) {
    register(api, {
      method: 'post',
      path,
      tags: ['tasks'],
      summary: path === '/tasks' ? 'Start a task' : 'Start a task (the reference demo route)',
      description:
        'With an `Idempotency-Key` header, a retry cannot start the task twice: the same key with the same ' +
        'request (type, params after validation, tags and every other start option) within IDEMPOTENCY_TTL_S ' +
        '(capped at TASK_TTL_S) answers 200 with the task the key started, as it is now, and ' +
        '`Idempotent-Replayed: true`; the same key with another request answers 422 IDEMPOTENCY_KEY_REUSED. ' +
        'Concurrent requests with one key start one task. Keys are scoped to the API token with auth on ' +
        '(one global scope without). A replay counts against the start rate limit like a start.',
      request: {
        headers: z.object({
          'Idempotency-Key': z
            .string()
            .min(1)
            .max(255)
            .regex(/^[\x20-\x7e]+$/)
            .optional()
            .describe('1 to 255 printable ASCII characters, e.g. a UUID the client made for this start; sent once.'),
        }),
        body: { required: false, content: { 'application/json': { schema: startBody } } },
      },
      responses: {
        200: {
          ...json(startedTaskSchema, 'Replayed: the Idempotency-Key already started this task; its state now.'),
          headers: { ...location, 'Idempotent-Replayed': { description: 'Always `true`.', schema: { type: 'string' } } },
        },
        202: {
          ...json(
            startedTaskSchema,
            'Accepted: the task is PENDING and its start command is queued on its priority\'s stream, or, with `run_at` or ' +
              '`delay_ms`, SCHEDULED until its due time (`run_at`), when a worker queues it (within about SCHEDULE_POLL_MS). ' +
              '400 INVALID_BODY also for an unknown `priority`, both `run_at` and `delay_ms`, or a due time more than ' +
              'SCHEDULE_MAX_AHEAD_S ahead or more than a minute in the past.',
          ),
          headers: location,
        },
        ...errors(400, 401, 404, 409, 413, 415, 422, 429, 500, 503),
      },
    });
  }
  register(api, {
    method: 'get',
    path: '/tasks',
    tags: ['tasks'],
    summary: 'Recent tasks, newest first, with cursor pagination and filters',
    description:
      'From the `tasks:index` sorted set (`tasks:tag:<tag>` with `tag`); entries older than TASK_TTL_S are ' +
      'pruned, as the tasks expire. Filters combine (every one must match); send the same filters with each ' +
      '`cursor`. One request examines at most ' + LIST_SCAN_MAX + ' index entries: when `status` or `type` drop many, a page ' +
      'may hold fewer than `limit` tasks, even none, and still have a `next_cursor`; the list ends only when ' +
      '`next_cursor` is null.',
    request: { query: listTasksQuery },
    responses: { 200: json(taskPageSchema, 'A page of tasks.'), ...errors(400, 500, 503) },
  });
  register(api, {
    method: 'get',
    path: '/tasks/{id}',
    tags: ['tasks'],
    summary: "A task's latest state",
    request: { params: idParams },
    responses: { 200: json(taskStateSchema, 'The state.'), ...errors(400, 401, 404, 409, 500, 503) },
  });
  register(api, {
    method: 'get',
    path: '/tasks/{id}/events',
    tags: ['tasks'],
    summary: "A page of a task's events, oldest first",
    description: 'At most `limit` events after `after`; pass `next_cursor` as `after` for the next page.',
    request: { params: idParams, query: eventsQuerySchema },
    responses: { 200: json(eventListSchema, 'The page of events.'), ...errors(400, 401, 404, 409, 500, 503) },
  });
  register(api, {
    method: 'get',
    path: '/tasks/{id}/output',
    tags: ['tasks'],
    summary: "A task's output so far",
    description:
      'The output rebuilt from the events with the exactly-once rule (output chunks count once their stage is ' +
      'recorded; RETRYING and `restart` events void the chunks of the stage in progress): text chunks as they ' +
      'are, each record as one line of JSON. While the task runs, the chunks of the stage in progress come last ' +
      'and may still be voided. Covers the events up to `Taskcast-Last-Event-Id`; watch from there to follow on.',
    request: { params: idParams },
    responses: {
      200: {
        description: 'The output text.',
        headers: {
          'Taskcast-Last-Event-Id': { schema: { type: 'string' }, description: 'The last event the output covers.' },
          'Taskcast-Task-Status': { schema: { type: 'string' }, description: 'The task status as of that event.' },
        },
        content: { 'text/plain': { schema: { type: 'string' } } },
      },
      ...errors(400, 401, 404, 409, 500, 503),
    },
  });

  register(api, {
    method: 'post',
    path: '/tasks/{id}/cancel',
    tags: ['tasks'],
    summary: 'Cancel a task',
    description:
      'A SCHEDULED or PENDING task (also one waiting for a concurrency slot) ends CANCELLED at once; a running one is told to stop, and its worker records a terminal ' +
      'CANCELLED (`cancel_requested_at` is set meanwhile).',
    request: { params: idParams },
    responses: {
      202: json(taskStateSchema, 'Cancelled, or cancel requested.'),
      ...errors(400, 401, 404, 409, 500, 503),
    },
  });

  register(api, {
    method: 'post',
    path: '/tasks/{id}/watch-token',
    tags: ['tasks'],
    summary: 'A watch token for a task',
    description:
      'Trades an API token (Authorization header) for a fresh watch token of one task, valid for ' +
      'WATCH_TOKEN_TTL_S. Browsers cannot set headers on a WebSocket or EventSource, and an API token must ' +
      'never go in a URL: a page holding an API token asks for a watch token here and puts that in `?token=`. ' +
      'The task need not exist (nothing is read); a watch of an unknown task still ends with 4404 / 404. With ' +
      'auth off, `watch_token` and `expires_at` are null.',
    request: { params: idParams },
    responses: {
      200: json(watchTokenSchema, 'The watch token.'),
      ...errors(400, 401, 500),
    },
  });

  registerTaskWatches(api);
  registerFeeds(api);
  registerMux(api);
  registerMeta(api);

  // Referenced from the SSE and WebSocket extensions only: components through their meta ids.
  const extensionSchemas = [feedEntrySchema, feedResetSchema].map((schema) => ({ type: 'schema' as const, schema }));
  return new OpenApiGeneratorV31([...api.definitions, ...extensionSchemas]).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'taskcast',
      version: '0.1.0',
      description:
        'Real-time task processing on Redis Streams. Start tasks over HTTP; watch their events over WebSocket ' +
        'with exact resume (`lastEventId`).',
    },
    tags: [
      { name: 'tasks', description: 'Start and read tasks.' },
      { name: 'watch', description: 'Live event feeds with exact resume.' },
      { name: 'meta', description: 'Documentation and operations.' },
    ],
  });
}
