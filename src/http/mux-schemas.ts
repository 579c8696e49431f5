import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { CloseCode } from '../wire/close-codes.js';
import {
  FEED_NAME_RE, MUX_MAX_MESSAGE_BYTES, MUX_MAX_STRIKES, MUX_PATH, MUX_STRIKE_WINDOW_MS, SUBSCRIPTION_CODE_MEANINGS, SubscriptionCode,
  type EndedMessage, type ErrorMessage, type SubscribeMessage, type SubscribedMessage, type UnsubscribeMessage, type UnsubscribedMessage,
  type FeedEndedMessage, type FeedSubscribeMessage, type FeedSubscribedMessage, type FeedUnsubscribeMessage, type FeedUnsubscribedMessage,
  type MuxFeedEntry,
} from '../wire/mux.js';
import { batchQuery, eventIdSchema, feedCursorSchema, feedEntrySchema, taskIdSchema } from './api-schemas.js';
import { upgradeRefusals } from './openapi-parts.js';

/** The messages of the multiplexed `/ws` (src/wire/mux.ts) as zod schemas, for /openapi.json. */

const task = taskIdSchema.describe('The task the subscription follows (answers name it in lower case).');

export const subscribeSchema = z
  .object({
    type: z.literal('subscribe'),
    task,
    lastEventId: eventIdSchema.optional().describe('Resume after this event id; none or `0-0`: every event.'),
    token: z.string().optional().describe(
      'Auth on: a watch token of this task or an API token (else the connection\'s `?token=` or Authorization counts). Never logged.',
    ),
  })
  .strict()
  .meta({ id: 'MuxSubscribe', description: 'Client: subscribe to a task\'s events after `lastEventId`, then live ones.' });

export const unsubscribeSchema = z
  .object({ type: z.literal('unsubscribe'), task })
  .strict()
  .meta({ id: 'MuxUnsubscribe', description: 'Client: stop a subscription; always answered with `unsubscribed`.' });

export const subscribedSchema = z
  .object({ type: z.literal('subscribed'), task })
  .meta({ id: 'MuxSubscribed', description: 'Server: the subscription is open; its events (TaskEvent) follow.' });

const feed = z
  .string()
  .regex(FEED_NAME_RE)
  .describe('The feed the subscription follows: `all` (every task) or `tag:<tag>` (the tasks with that tag).');

export const feedSubscribeSchema = z
  .object({
    type: z.literal('subscribe'),
    feed,
    lastEventId: feedCursorSchema.optional().describe('Resume after this feed cursor; absent: live from now (`subscribed` names the cursor in `id`).'),
    token: z.string().optional().describe(
      'Auth on: an API token, or a feed token of this feed (POST /feed-tokens; a tag token for `tag:<tag>`); else the connection\'s counts. Never logged.',
    ),
  })
  .strict()
  .meta({ id: 'MuxFeedSubscribe', description: 'Client: follow a feed of task changes (as /ws/feed) after `lastEventId`, then live.' });

export const feedUnsubscribeSchema = z
  .object({ type: z.literal('unsubscribe'), feed })
  .strict()
  .meta({ id: 'MuxFeedUnsubscribe', description: 'Client: stop a feed subscription; always answered with `unsubscribed`.' });

export const feedSubscribedSchema = z
  .object({
    type: z.literal('subscribed'),
    feed: z.string(),
    id: feedCursorSchema.optional().describe('Only when subscribed without lastEventId: the cursor the feed goes on from (subscribe again with it: nothing missed).'),
  })
  .meta({ id: 'MuxFeedSubscribed', description: 'Server: the feed subscription is open; its entries (MuxFeedEntry) follow.' });

export const muxFeedEntrySchema = feedEntrySchema
  .extend({ feed: z.string().describe('The feed subscription the entry belongs to, as the subscribe named it.') })
  .meta({ id: 'MuxFeedEntry', description: 'Server: an entry of a feed subscription, a FeedEntry with its `feed`; its id is that subscription\'s cursor.' });

const codes = Object.values(SubscriptionCode) as [number, ...number[]];
export const endedSchema = z
  .object({
    type: z.literal('ended'),
    task: z.string().describe('The task as named by the subscribe (lower case when it is a UUID).'),
    code: z.union(codes.map((c) => z.literal(c)) as [z.ZodLiteral<number>, ...z.ZodLiteral<number>[]]).describe('A subscription code (see x-websocket.subscriptionCodes).'),
    reason: z.string(),
  })
  .meta({ id: 'MuxEnded', description: 'Server: the subscription ended (after its terminal event: 1000) or was refused; the connection stays open.' });

export const feedEndedSchema = endedSchema
  .omit({ task: true })
  .extend({ feed: z.string() })
  .meta({
    id: 'MuxFeedEnded',
    description: 'Server: the feed subscription was refused or ended; with 4410 the reason ends `continue from <id>` (reload, then subscribe from it).',
  });

export const unsubscribedSchema = z
  .object({ type: z.literal('unsubscribed'), task: z.string() })
  .meta({ id: 'MuxUnsubscribed', description: 'Server: the answer to an unsubscribe; nothing more of that subscription follows.' });

export const feedUnsubscribedSchema = z
  .object({ type: z.literal('unsubscribed'), feed: z.string() })
  .meta({ id: 'MuxFeedUnsubscribed', description: 'Server: the answer to a feed unsubscribe.' });

export const muxErrorSchema = z
  .object({ type: z.literal('error'), code: z.literal(CloseCode.BAD_REQUEST), reason: z.string() })
  .meta({ id: 'MuxError', description: 'Server: a client message that could not be acted on (malformed, or a duplicate subscribe); nothing changed.' });

/** The codes that close a whole `/ws` connection. */
const connectionCloseCodes = [
  { code: CloseCode.GOING_AWAY, meaning: 'The gateway is shutting down: reconnect and subscribe again, each with its cursor.' },
  { code: CloseCode.SLOW_CONSUMER, meaning: 'The connection\'s send buffer (all subscriptions together) grew past WS_MAX_BUFFERED_BYTES, or a replay stalled: reconnect and resume.' },
  { code: CloseCode.BAD_REQUEST, meaning: `${MUX_MAX_STRIKES} errors or over-rate subscribes within ${MUX_STRIKE_WINDOW_MS / 1000} s.` },
  { code: CloseCode.TOO_BIG, meaning: `A message over ${MUX_MAX_MESSAGE_BYTES} bytes (no reason).` },
  { code: CloseCode.PROTOCOL_ERROR, meaning: 'A malformed frame (no reason).' },
  { code: CloseCode.INVALID_PAYLOAD, meaning: 'A text frame that is not UTF-8 (no reason).' },
];

/** Documents `/ws` as a GET operation with the `x-websocket` extension, as `/ws/task/{id}` is. */
export function registerMux(api: OpenAPIRegistry): void {
  api.registerPath({
    method: 'get',
    path: MUX_PATH,
    tags: ['watch'],
    summary: 'Watch many tasks and feeds over one WebSocket (multiplexed)',
    description:
      'Upgrade to a WebSocket, then send `subscribe` and `unsubscribe` messages (JSON text). Each subscribe is ' +
      'answered by `subscribed` (then the task\'s events, each a TaskEvent exactly as on /ws/task/{id}: every event ' +
      'after its lastEventId, then live ones, and `ended` with 1000 after the terminal event) or by `ended` with a ' +
      'code (refused); each unsubscribe by `unsubscribed`. The connection stays open across subscriptions. After ' +
      'a disconnect, reconnect and subscribe again with each task\'s last event id: no gap, no duplicate. With ' +
      'auth on the upgrade needs no token; each subscription is checked with its own `token` (or the ' +
      'connection\'s). Feeds: `{"type":"subscribe","feed":"all"}` or `"feed":"tag:<tag>"` follows a feed of task ' +
      'changes as /ws/feed does (exact resume from lastEventId; without it `subscribed` carries the cursor `id`); ' +
      'its entries carry `feed`; a cursor older than the feed holds ends it with 4410 and the id to continue from. ' +
      'Limits: WS_MAX_SUBSCRIPTIONS (tasks and feeds) per connection, WS_MESSAGE_BURST / WS_MESSAGES_PER_S ' +
      `subscribes, ${MUX_MAX_MESSAGE_BYTES} bytes per message. With \`?batch=1\` every server frame is a JSON array of ` +
      'server messages.',
    request: {
      query: z.object({
        ...batchQuery,
        token: z.string().optional().describe('With auth on: the token of subscribes that carry none (a watch, feed or API token).'),
      }),
    },
    responses: {
      101: { description: 'Switching Protocols: the connection is open.' },
      ...upgradeRefusals,
    },
    'x-websocket': {
      clientMessages: [subscribeSchema, unsubscribeSchema, feedSubscribeSchema, feedUnsubscribeSchema].map((s) => ({ $ref: `#/components/schemas/${s.meta()!.id}` })),
      serverMessages: [
        { $ref: '#/components/schemas/TaskEvent' },
        ...[
          subscribedSchema, endedSchema, unsubscribedSchema, muxFeedEntrySchema, feedSubscribedSchema, feedEndedSchema, feedUnsubscribedSchema,
          muxErrorSchema,
        ].map((s) => ({ $ref: `#/components/schemas/${s.meta()!.id}` })),
      ],
      subscriptionCodes: (Object.keys(SubscriptionCode) as (keyof typeof SubscriptionCode)[]).map((name) => ({
        code: SubscriptionCode[name],
        name,
        meaning: SUBSCRIPTION_CODE_MEANINGS[name],
      })),
      closeCodes: connectionCloseCodes,
    },
  });
  // No route carries these as a body, so they are added as components by hand (JSON Schema 2020-12, as OpenAPI 3.1 takes).
  for (const schema of [
    subscribeSchema, unsubscribeSchema, subscribedSchema, endedSchema, unsubscribedSchema, muxErrorSchema,
    feedSubscribeSchema, feedUnsubscribeSchema, feedSubscribedSchema, muxFeedEntrySchema, feedEndedSchema, feedUnsubscribedSchema,
  ]) {
    const id = schema.meta()!.id as string;
    // A schema with an id comes out as a $ref to its own $defs entry.
    const out = z.toJSONSchema(schema, { io: 'input' }) as { $defs?: Record<string, Record<string, unknown>> };
    api.registerComponent('schemas', id, out.$defs![id]!);
  }
}

// The schemas describe the wire types; these fail the build when the two drift apart.
type Same<A, B> = [A, keyof A] extends [B, keyof B] ? ([B, keyof B] extends [A, keyof A] ? true : false) : false;
true satisfies Same<z.infer<typeof subscribeSchema>, SubscribeMessage>;
true satisfies Same<z.infer<typeof unsubscribeSchema>, UnsubscribeMessage>;
true satisfies Same<z.infer<typeof subscribedSchema>, SubscribedMessage>;
true satisfies Same<z.infer<typeof unsubscribedSchema>, UnsubscribedMessage>;
true satisfies Same<Omit<z.infer<typeof endedSchema>, 'code'>, Omit<EndedMessage, 'code'>>;
true satisfies Same<Omit<z.infer<typeof muxErrorSchema>, 'code'>, Omit<ErrorMessage, 'code'>>;
true satisfies Same<z.infer<typeof feedSubscribeSchema>, FeedSubscribeMessage>;
true satisfies Same<z.infer<typeof feedUnsubscribeSchema>, FeedUnsubscribeMessage>;
true satisfies Same<z.infer<typeof feedSubscribedSchema>, FeedSubscribedMessage>;
true satisfies Same<z.infer<typeof feedUnsubscribedSchema>, FeedUnsubscribedMessage>;
true satisfies Same<z.infer<typeof muxFeedEntrySchema>, MuxFeedEntry>;
true satisfies Same<Omit<z.infer<typeof feedEndedSchema>, 'code'>, Omit<FeedEndedMessage, 'code'>>;
