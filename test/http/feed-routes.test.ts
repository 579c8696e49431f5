import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signFeedToken, signWatchToken } from '../../src/auth/tokens.js';
import { feedKey } from '../../src/store/keys.js';
import { TaskStore } from '../../src/store/task-store.js';
import { feedEntrySchema, feedGrantSchema } from '../../src/http/api-schemas.js';
import { buildOpenApiDocument } from '../../src/http/openapi.js';
import { CloseCode } from '../../src/wire/close-codes.js';
import { createRegistry } from '../../src/tasks/builtin/index.js';
import { feedUrl, followFeed } from '../helpers/feed-client.js';
import { request } from '../helpers/http.js';
import { startGatewayInProcess } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { watchSse } from '../helpers/sse-client.js';

const API = 'feed-suite-api-token';
const SECRET = 'feed-suite-secret-0123456789abcdef';
const AUTH_ON = { API_TOKENS: API, TOKEN_SECRET: SECRET, WATCH_TOKEN_TTL_S: '600' };

/** The status of a refused upgrade (followFeed rejects with it). */
async function upgradeStatus(url: string): Promise<number> {
  try {
    const c = await followFeed(url, { take: 0 });
    return c.code;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

test('auth on: a tag token opens its tag feed only, an all-tasks feed token the all-tasks feed only; expired tokens are refused', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayInProcess(t, url, AUTH_ON);
  const store = new TaskStore(redis);
  const red = [(await store.start('reference', {}, Date.now(), { tags: ['red'] })).state.task_id];
  await store.start('reference', {}, Date.now(), { tags: ['blue'] });
  red.push((await store.start('reference', {}, Date.now(), { tags: ['blue', 'red'] })).state.task_id);
  await store.start('reference', {});

  assert.equal((await request(`${gateway.url}/feed-tokens`, { body: { tag: 'red' } })).status, 401);
  const bad = await request(`${gateway.url}/feed-tokens`, { body: { tag: 'no spaces' }, headers: { authorization: `Bearer ${API}` } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'INVALID_BODY');
  const before = Math.floor(Date.now() / 1000);
  const grant = await request(`${gateway.url}/feed-tokens`, { body: { tag: 'red' }, headers: { authorization: `Bearer ${API}` } });
  assert.equal(grant.status, 200);
  const { tag, token, expires_at } = feedGrantSchema.parse(grant.body);
  assert.equal(tag, 'red');
  assert.ok(expires_at! >= (before + 600) * 1000 && expires_at! <= (Math.ceil(Date.now() / 1000) + 600) * 1000, 'WATCH_TOKEN_TTL_S by default, in epoch ms');

  // The tag token: its tag's feed, over WebSocket and SSE, and only the red tasks.
  const ws = await followFeed(feedUrl(gateway.url, { tag: 'red', lastEventId: '0', token: token! }), { take: 2 });
  assert.deepEqual(ws.entries.map((e) => e.task_id), red);
  assert.deepEqual(ws.entries.map((e) => e.id), (await redis.xrange(feedKey('red'), '-', '+')).map(([id]) => id));
  const sse = await watchSse(`${gateway.url}/sse/feed?tag=red&lastEventId=0&token=${encodeURIComponent(token!)}`, { take: 2 });
  assert.deepEqual(sse.ids, ws.entries.map((e) => e.id));

  // The all-tasks feed token (no tag in the body, or no body): the all-tasks feed, and no tag's.
  const allGrant = feedGrantSchema.parse((await request(`${gateway.url}/feed-tokens`, { method: 'POST', headers: { authorization: `Bearer ${API}` } })).body);
  assert.equal(allGrant.tag, null);
  const everyTask = await followFeed(feedUrl(gateway.url, { lastEventId: '0', token: allGrant.token! }), { take: 4 });
  assert.equal(new Set(everyTask.entries.map((e) => e.task_id)).size, 4);

  // Refused: another tag, the all-tasks feed, no token, an expired one, a watch token, another secret's.
  const now = Math.floor(Date.now() / 1000);
  const refused = {
    'another tag': { tag: 'blue', token: token! },
    'the all-tasks feed': { token: token! },
    'a tag, with the all-tasks feed token': { tag: 'red', token: allGrant.token! },
    'no token': { tag: 'red' },
    'an expired tag token': { tag: 'red', token: signFeedToken(SECRET, 'red', now - 1) },
    'an expired all-tasks feed token': { token: signFeedToken(SECRET, undefined, now - 1) },
    'a watch token': { tag: 'red', token: signWatchToken(SECRET, red[0]!, now + 60) },
    'a tag token of another secret': { tag: 'red', token: signFeedToken('x'.repeat(32), 'red', now + 60) },
  };
  for (const [what, query] of Object.entries(refused)) {
    assert.equal(await upgradeStatus(feedUrl(gateway.url, { ...query, lastEventId: '0' })), 401, `WebSocket with ${what}`);
    const qs = new URLSearchParams({ ...query, lastEventId: '0' }).toString();
    const res = await request(`${gateway.url}/sse/feed?${qs}`);
    assert.equal(res.status, 401, `SSE with ${what}`);
    assert.equal(res.body.error.code, 'UNAUTHORIZED');
  }

  // An API token opens every feed.
  const all = await followFeed(feedUrl(gateway.url, { lastEventId: '0', token: API }), { take: 4 });
  assert.equal(all.entries.length, 4);
  const blue = await watchSse(`${gateway.url}/sse/feed?tag=blue&lastEventId=0&token=${API}`, { take: 2 });
  assert.equal(blue.status, 200);
});

test('auth off: every feed is open, and a feed token is null (none is needed)', async (t) => {
  const url = await testRedisUrl();
  const gateway = await startGatewayInProcess(t, url);
  const grant = await request(`${gateway.url}/feed-tokens`, { body: { tag: 'red', ttl_s: 60 } });
  assert.equal(grant.status, 200);
  assert.deepEqual(grant.body, { tag: 'red', token: null, expires_at: null });
  const feed = await followFeed(feedUrl(gateway.url), { take: 0 });
  assert.equal(feed.code, 1006, 'opened (then dropped by the client)');
});

test('OpenAPI: the feed routes, their entry and reset schemas, 4410, and POST /feed-tokens', () => {
  const doc = buildOpenApiDocument(createRegistry({ STAGE_MS: 5000 })) as any;
  const ws = doc.paths['/ws/feed'].get;
  assert.equal(ws['x-websocket'].message.$ref, '#/components/schemas/FeedEntry');
  assert.ok(ws['x-websocket'].closeCodes.some((c: { code: number; errors: string[] }) => c.code === CloseCode.FEED_CURSOR_EXPIRED && c.errors.includes('FEED_CURSOR_EXPIRED')));
  assert.deepEqual(ws.parameters.map((p: any) => [p.in, p.name]), [['query', 'tag'], ['query', 'lastEventId'], ['query', 'token'], ['query', 'batch']]);
  const sse = doc.paths['/sse/feed'].get;
  assert.deepEqual(sse.parameters.map((p: any) => [p.in, p.name]), [['query', 'tag'], ['query', 'lastEventId'], ['query', 'token'], ['header', 'Last-Event-ID']]);
  assert.equal(sse['x-sse'].reset.$ref, '#/components/schemas/FeedReset');
  assert.deepEqual(Object.keys(doc.components.schemas.FeedEntry.properties), Object.keys(feedEntrySchema.shape));
  assert.equal(doc.paths['/feed-tokens'].post.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/FeedGrant');
  assert.match(doc.paths['/feed-tokens'].post.responses['401'].description, /UNAUTHORIZED/);
});
