import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signFeedToken } from '../../src/auth/tokens.js';
import { FEED_STREAM, feedKey, taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { TERMINAL_STATUSES } from '../../src/wire/events.js';
import { continueFromReason } from '../../src/wire/feed.js';
import type { MuxFeedEntry } from '../../src/wire/mux.js';
import { request } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { MuxClient } from '../helpers/mux-client.js';
import { redisFor, redisWithFeedBound, testRedisUrl } from '../helpers/redis.js';
import { testScope } from '../helpers/scope.js';
import { eventIds, taskEvents } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

/** Progress never reaches the feed (one per hour per task): its entries are exactly the status changes. */
const STATUS_ONLY = { FEED_PROGRESS_MS: '3600000' };

const xrangeIds = async (redis: Redis, key: string) => (await redis.xrange(key, '-', '+')).map(([id]) => id);

test('a feed subscription beside task subscriptions on one connection: every status change once and in order, equal to XRANGE, across a reconnect with its cursor; a tag feed holds its tag only', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayInProcess(t, url, STATUS_ONLY);
  await startWorkerInProcess(t, url, { ...STATUS_ONLY, WORKER_CONCURRENCY: '20' });
  const store = new TaskStore(redis);
  // Something in the feed already: the subscription without a cursor starts after it.
  await store.start('reference', { stage_ms: 0 }, Date.now(), { tags: ['odd'] });
  await waitFor(async () => (await xrangeIds(redis, FEED_STREAM)).length >= 5, 'the first task ran');
  const before = (await xrangeIds(redis, FEED_STREAM)).at(-1)!;

  const first = await MuxClient.open(testScope(t), gateway.url);
  first.send({ type: 'subscribe', feed: 'all' });
  first.send({ type: 'subscribe', feed: 'tag:odd', lastEventId: '0' });
  const mark = await first.waitFor(() => first.feedControls('all')[0], 'the subscribed of the feed');
  assert.equal(mark.type === 'subscribed' && mark.id, before, 'the cursor it goes on from');

  const taskIds = (
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.start('reference', { stage_ms: 100 }, Date.now(), { tags: i % 2 ? ['odd'] : [] })))
  ).map((s) => s.state.task_id);
  const watched = taskIds.slice(0, 3);
  for (const task of watched) first.send({ type: 'subscribe', task });

  // The client drops mid-run; a new connection resumes every subscription from its own cursor.
  await first.waitFor(() => first.entries('all').length >= 60, '60 entries');
  first.ws.terminate();
  const all1 = first.entries('all');
  const odd1 = first.entries('tag:odd');
  const events1 = new Map(watched.map((task) => [task, first.events(task)]));
  const second = await MuxClient.open(testScope(t), gateway.url);
  second.send({ type: 'subscribe', feed: 'all', lastEventId: all1.at(-1)!.id });
  second.send({ type: 'subscribe', feed: 'tag:odd', lastEventId: odd1.at(-1)?.id ?? '0' });
  for (const task of watched) {
    const seen = events1.get(task)!;
    second.send({ type: 'subscribe', task, ...(seen.length > 0 ? { lastEventId: seen.at(-1)!.id } : {}) });
  }

  const ended = async () => (await Promise.all(taskIds.map((id) => redis.hget(taskKey(id), 'status')))).every((s) => s !== null && TERMINAL_STATUSES.has(s));
  await waitFor(ended, 'every task ended', 60_000);
  const feedAll = await xrangeIds(redis, FEED_STREAM);
  const feedOdd = await xrangeIds(redis, feedKey('odd'));
  await second.waitFor(() => second.entries('all').at(-1)?.id === feedAll.at(-1), 'the whole feed', 30_000);
  await second.waitFor(() => second.entries('tag:odd').at(-1)?.id === feedOdd.at(-1), 'the whole tag feed', 30_000);

  assert.ok(second.entries('all').length > 0, 'the drop came mid-run');
  const got = [...all1, ...second.entries('all')];
  assert.deepEqual(got.map((e) => e.id), feedAll.slice(feedAll.indexOf(before) + 1), 'each entry after the cursor once, in order');
  for (const task of taskIds) {
    const stages = (await taskEvents(redis, task)).filter((e) => e.type === 'stage');
    assert.deepEqual(got.filter((e) => e.task_id === task).map((e) => [e.status, e.ts]), stages.map((e) => [e.status, e.ts]), task);
  }
  const odd: MuxFeedEntry[] = [...odd1, ...second.entries('tag:odd')];
  assert.deepEqual(odd.map((e) => e.id), feedOdd, 'the tag feed from its start');
  assert.ok(odd.every((e) => e.tags.includes('odd') && e.feed === 'tag:odd'));
  assert.deepEqual(new Set(odd.map((e) => e.task_id)).size, taskIds.length / 2 + 1);
  for (const task of watched) {
    await second.ended(task, 30_000);
    assert.deepEqual([...events1.get(task)!, ...second.events(task)].map((e) => e.id), await eventIds(redis, task), task);
  }
  assert.deepEqual(second.feedControls('all').map((c) => c.type), ['subscribed'], 'subscribed with a cursor: no id');
  assert.equal('id' in second.feedControls('all')[0]!, false);
  assert.deepEqual([...first.errors(), ...second.errors()], []);
});

test('a cursor older than the feed holds ends that subscription with 4410 and the id to continue from; the connection goes on; feed subscriptions count against WS_MAX_SUBSCRIPTIONS; unsubscribe; bad names', async (t) => {
  const url = await testRedisUrl();
  const gateway = await startGatewayInProcess(t, url, { FEED_MAXLEN: '100', WS_MAX_SUBSCRIPTIONS: '2' });
  // Starts from this client trim the feed with the gateway's bound.
  const redis = await redisWithFeedBound(t, url, 100);
  const store = new TaskStore(redis);
  const oldest = (await store.start('reference', {})).state;
  for (let i = 0; i < 300; i++) await store.start('reference', {});
  const last = (await xrangeIds(redis, FEED_STREAM)).at(-1)!;

  const client = await MuxClient.open(testScope(t), gateway.url);
  client.send({ type: 'subscribe', feed: 'all', lastEventId: oldest.last_event_id });
  const expired = await client.feedEnded('all');
  assert.equal(expired.code, 4410);
  assert.equal(continueFromReason(expired.reason), last);
  assert.deepEqual(client.feedControls('all').map((c) => c.type), ['ended'], 'refused: no subscribed, no entry');
  assert.deepEqual(client.entries('all'), []);

  // From the id given, the feed goes on with nothing missed, beside a task subscription.
  client.send({ type: 'subscribe', feed: 'all', lastEventId: last });
  await client.waitFor(() => client.feedControls('all')[1]?.type === 'subscribed', 'subscribed again');
  const next = (await store.start('reference', {}, Date.now(), { tags: ['red'] })).state.task_id;
  client.send({ type: 'subscribe', task: next });
  await client.waitFor(() => client.entries('all').length === 1 && client.events(next).length === 1, 'the new task in both');
  assert.deepEqual(client.entries('all').map((e) => [e.id, e.task_id, e.status]), [[(await xrangeIds(redis, FEED_STREAM)).at(-1), next, 'PENDING']]);

  // Two subscriptions held: a third, a feed, is refused with 4429; unsubscribing the first feed makes room.
  client.send({ type: 'subscribe', feed: 'tag:red', lastEventId: '0' });
  assert.deepEqual((await client.feedEnded('tag:red')).code, 4429);
  client.send({ type: 'unsubscribe', feed: 'all' });
  await client.waitFor(() => client.feedControls('all').at(-1)?.type === 'unsubscribed', 'unsubscribed');
  const entriesBefore = client.entries('all').length;
  client.send({ type: 'subscribe', feed: 'tag:red', lastEventId: '0' });
  await client.waitFor(() => client.entries('tag:red').length === 1, 'the red feed');
  assert.deepEqual(client.entries('tag:red').map((e) => e.id), await xrangeIds(redis, feedKey('red')));
  // A red task's entries reach both feeds in the same script: the red one comes, the unsubscribed one does not.
  await store.start('reference', {}, Date.now(), { tags: ['red'] });
  await client.waitFor(() => client.entries('tag:red').length === 2, 'the second red entry');
  assert.equal(client.entries('all').length, entriesBefore, 'nothing of the unsubscribed feed');

  client.send({ type: 'unsubscribe', feed: 'tag:red' });
  client.send({ type: 'subscribe', feed: 'tag:' });
  client.send({ type: 'subscribe', feed: 'everything' });
  for (const name of ['tag:', 'everything']) {
    const bad = await client.feedEnded(name);
    assert.equal(bad.code, 4400, name);
    assert.match(bad.reason, /feed must be "all" or "tag:<tag>"/);
  }
  client.send({ type: 'subscribe', feed: 'all', task: next });
  await client.waitFor(() => client.errors().length === 1, 'an error');
  assert.match(client.errors()[0]!, /either "task" or "feed"/);
  assert.equal(client.ws.readyState, client.ws.OPEN);
});

test('auth on: a tag token opens its tag feed only, refused (4401) for the all-tasks feed and other tags; an API token opens any; tokens never logged', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const secret = 's'.repeat(32);
  const gateway = await startGatewayInProcess(t, url, { API_TOKENS: 'api-secret-1', TOKEN_SECRET: secret, LOG_LEVEL: 'debug' });
  const grant = await request(`${gateway.url}/feed-tokens`, { method: 'POST', body: { tag: 'red' }, headers: { authorization: 'Bearer api-secret-1' } });
  assert.equal(grant.status, 200);
  const redToken = grant.body.token as string;
  const store = new TaskStore(redis);
  await store.start('reference', {}, Date.now(), { tags: ['red'] });
  await store.start('reference', {}, Date.now(), { tags: ['blue'] });

  const client = await MuxClient.open(testScope(t), gateway.url, { query: `?token=${redToken}` });
  client.send({ type: 'subscribe', feed: 'all' });
  client.send({ type: 'subscribe', feed: 'tag:blue', token: redToken });
  client.send({ type: 'subscribe', feed: 'tag:red', lastEventId: '0' });
  const all = await client.feedEnded('all');
  assert.deepEqual([all.code, all.reason], [4401, 'invalid or expired token for the all-tasks feed']);
  assert.deepEqual([(await client.feedEnded('tag:blue')).code, client.entries('tag:blue')], [4401, []]);
  await client.waitFor(() => client.entries('tag:red').length === 1, 'the red entry');
  assert.deepEqual(client.entries('tag:red').map((e) => e.id), await xrangeIds(redis, feedKey('red')));
  // An expired tag token is refused; the API token in the message opens the all-tasks feed.
  const expiredToken = signFeedToken(secret, 'blue', Math.floor(Date.now() / 1000) - 1);
  client.send({ type: 'subscribe', feed: 'tag:blue', token: expiredToken });
  assert.equal((await client.feedEnded('tag:blue', 2)).code, 4401);
  client.send({ type: 'subscribe', feed: 'all', lastEventId: '0', token: 'api-secret-1' });
  await client.waitFor(() => client.entries('all').length === 2, 'both entries');
  assert.deepEqual(client.entries('all').map((e) => e.id), await xrangeIds(redis, FEED_STREAM));
  const logs = JSON.stringify(gateway.logs);
  for (const token of [redToken, expiredToken, 'api-secret-1']) assert.ok(!logs.includes(token), 'a token was logged');
});
