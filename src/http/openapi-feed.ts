import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { batchQuery, feedCursorSchema, feedGrantSchema, feedQuerySchema } from './api-schemas.js';
import { feedTokenBody } from './feed-routes.js';
import { closeCodeTable, errors, json, register, upgradeRefusals } from './openapi-parts.js';

/** The feed routes in the OpenAPI document: POST /feed-tokens, GET /sse/feed, the /ws/feed upgrade. */
export function registerFeeds(api: OpenAPIRegistry): void {
  register(api, {
    method: 'post',
    path: '/feed-tokens',
    tags: ['watch'],
    summary: "A feed token: lets its holder follow one tag's feed (a tag token), or the all-tasks feed",
    description:
      'Needs an API token (with auth on). A backend hands the token to a browser, which follows ' +
      '`/ws/feed?tag=<tag>` or `/sse/feed?tag=<tag>` (without `tag` in the body: `/ws/feed`, `/sse/feed`) with it ' +
      '(`?token=`) until it expires; it opens nothing else. Browsers cannot send headers on a WebSocket: this keeps ' +
      'API tokens out of URLs.',
    request: { body: { required: false, content: { 'application/json': { schema: feedTokenBody } } } },
    responses: { 200: json(feedGrantSchema, 'The token.'), ...errors(400, 401, 413, 415, 500) },
  });
  const feedDescription =
    'The feed of task changes: one entry per status change of a task (and per progress change, at most one per ' +
    'FEED_PROGRESS_MS per task), for all tasks or for the tasks of `tag`, from the `tasks:feed` / ' +
    '`tasks:feed:tag:<tag>` streams (each bounded by FEED_MAXLEN). Every entry after `lastEventId`, then live ones, ' +
    'with no gap and no duplicate; `lastEventId=0` replays the whole retained feed. Without it the feed starts at ' +
    'its end, and its first message is `{ "id": <cursor> }` (no task_id), the id to resume from. With auth on, ' +
    'a feed takes an API token or a feed token for it (POST /feed-tokens: a tag token for a tag\'s feed).';
  register(api, {
    method: 'get',
    path: '/sse/feed',
    tags: ['watch'],
    summary: 'Follow the feed of task changes over Server-Sent Events',
    description:
      `${feedDescription} Each message is \`id: <entry id>\` and \`data: <FeedEntry>\` (unnamed, for onmessage); ` +
      'the resume point is `Last-Event-ID`, else `?lastEventId`. A cursor older than the feed holds gets a ' +
      '`reset` message (`event: reset`, data a FeedReset, `id:` the id to continue from) and the stream ends: ' +
      'reload the list; EventSource reconnects from that id by itself.',
    request: {
      query: feedQuerySchema,
      headers: z.object({ 'Last-Event-ID': feedCursorSchema.optional().describe('Resume after this feed cursor.') }),
    },
    responses: {
      200: {
        description: 'The feed.',
        content: { 'text/event-stream': { schema: { type: 'string', description: 'SSE messages; data is a FeedEntry, or a FeedReset.' } } },
      },
      ...errors(400, 401, 500, 503),
    },
    'x-sse': { message: { $ref: '#/components/schemas/FeedEntry' }, reset: { $ref: '#/components/schemas/FeedReset' } },
  });
  register(api, {
    method: 'get',
    path: '/ws/feed',
    tags: ['watch'],
    summary: 'Follow the feed of task changes over WebSocket',
    description:
      `${feedDescription} One text frame per entry (a FeedEntry as JSON; with \`?batch=1\` a JSON array of them); the feed never ends by itself. ` +
      'A cursor older than the feed holds closes with 4410 FEED_CURSOR_EXPIRED, the reason ending ' +
      '`continue from <cursor>` (a cluster\'s cursor does not fit a close reason: the reason then says to open ' +
      'the feed again without a cursor). Other close codes as for /ws/task/{id}.',
    request: { query: feedQuerySchema.extend(batchQuery) },
    responses: {
      101: { description: 'Switching Protocols: the feed is open (a malformed tag or lastEventId then closes with 4400).' },
      ...upgradeRefusals,
      401: { description: 'Auth on: missing, invalid or expired token, or a feed token of another feed (UNAUTHORIZED).' },
    },
    'x-websocket': {
      message: { $ref: '#/components/schemas/FeedEntry' },
      closeCodes: closeCodeTable(),
    },
  }, false);
}
