import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { batchQuery, eventIdSchema, watchQuerySchema } from './api-schemas.js';
import { closeCodeTable, errors, idParams, register, upgradeRefusals } from './openapi-parts.js';

/** A task's watch routes in the OpenAPI document: GET /sse/task/{id} and the /ws/task/{id} upgrade. */
export function registerTaskWatches(api: OpenAPIRegistry): void {
  register(api, {
    method: 'get',
    path: '/sse/task/{id}',
    tags: ['watch'],
    summary: 'Watch a task over Server-Sent Events',
    description:
      'A `text/event-stream`: each message is `id: <event id>` and `data: <TaskEvent as JSON>` (the same JSON as ' +
      'over WebSocket); events other than stages are named after their type (`event: progress`, `event: output`, ' +
      '`event: restart`), so stage events reach `onmessage` and the others `addEventListener(type)`. Every event ' +
      'after the resume point, then live ones; the stream ends after the terminal ' +
      'event. The resume point is the `Last-Event-ID` header (what EventSource sends on reconnect), else ' +
      '`?lastEventId`. A stream that ends before the terminal event (shutdown, broken feed, slow reader) is ' +
      'resumed by reconnecting. Errors found before the stream starts are JSON error answers.',
    request: {
      params: idParams,
      query: watchQuerySchema,
      headers: z.object({ 'Last-Event-ID': eventIdSchema.optional().describe('Resume after this event id.') }),
    },
    responses: {
      200: {
        description: 'The event stream.',
        content: { 'text/event-stream': { schema: { type: 'string', description: 'SSE messages; data is a TaskEvent.' } } },
      },
      204: {
        description:
          'The task had ended at the resume point: nothing more will come. EventSource stops reconnecting on a 204.',
      },
      ...errors(400, 401, 404, 409, 500, 503),
    },
    'x-sse': { message: { $ref: '#/components/schemas/TaskEvent' } },
  });

  register(api, {
    method: 'get',
    path: '/ws/task/{id}',
    tags: ['watch'],
    summary: 'Watch a task over WebSocket',
    description:
      'Upgrade to a WebSocket. The server sends one text frame per event (a TaskEvent as JSON; with `?batch=1` a ' +
      'JSON array of them): every event ' +
      'after `lastEventId`, then live ones, and closes with 1000 after the terminal event. Clients send ' +
      'nothing. On any other close, reconnect with the id of the last event received to resume with no gap ' +
      'and no duplicate. Close codes:\n\n' +
      closeCodeTable()
        .map((c) => `- ${c.code} ${c.name}: ${c.meaning}${c.errors.length ? ` (${c.errors.join(', ')})` : ''}`)
        .join('\n'),
    request: { params: idParams, query: watchQuerySchema.extend(batchQuery) },
    responses: {
      101: { description: 'Switching Protocols: the watch is open.' },
      ...upgradeRefusals,
      401: { description: 'Auth on: missing, invalid or expired token (UNAUTHORIZED, JSON error body).' },
      404: { description: 'Not a watch path.' },
    },
    'x-websocket': {
      message: { $ref: '#/components/schemas/TaskEvent' },
      closeCodes: closeCodeTable(),
    },
  }, false);
}
