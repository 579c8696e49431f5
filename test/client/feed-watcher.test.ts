import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeedWatcher, type FeedState } from '../../src/client/feed-watcher.js';
import { FEED_STREAM, taskKey } from '../../src/store/keys.js';
import { TaskStore } from '../../src/store/task-store.js';
import type { FeedEntry } from '../../src/wire/feed.js';
import { startRestartableGateway } from '../helpers/gateway-restart.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { redisFor, redisWithFeedBound, testRedisUrl } from '../helpers/redis.js';
import { testScope } from '../helpers/scope.js';
import { oneShot, waitFor, withTimeout } from '../helpers/wait.js';
import { request } from '../helpers/http.js';

const FAST = { initialMs: 50, maxMs: 400 };

test('FeedWatcher: live from now, then exactly the feed across a gateway restart', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startRestartableGateway(testScope(t), url);
  await startWorkerInProcess(t, url);
  const entries: FeedEntry[] = [];
  const states: FeedState[] = [];
  const watcher = new FeedWatcher({ baseUrl: gateway.url, backoff: FAST, onEntry: (e) => entries.push(e), onState: (s) => states.push(s) });
  t.after(() => watcher.close());
  watcher.start();
  await waitFor(() => watcher.lastEventId !== undefined, 'the cursor mark');
  assert.equal(watcher.lastEventId, '0-0', 'an empty feed: its end is 0-0');

  const store = new TaskStore(redis);
  const first = await store.start('reference', { stage_ms: 200 });
  await waitFor(() => entries.some((e) => e.task_id === first.state.task_id && e.status === 'STARTED'), 'the first task started');
  await gateway.kill();
  const second = await store.start('reference', { stage_ms: 200 });
  await gateway.restart();
  for (const { state } of [first, second]) {
    await waitFor(async () => (await redis.hget(taskKey(state.task_id), 'status')) === 'COMPLETED', 'the tasks to complete', 30_000);
  }
  const ids = (await redis.xrange(FEED_STREAM, '-', '+')).map(([id]) => id);
  await waitFor(() => entries.length >= ids.length, 'every entry', 30_000);
  assert.deepEqual(entries.map((e) => e.id), ids, 'each entry once, in order, the restart included');
  assert.ok(states.some((s) => s.state === 'reconnecting'));
  assert.equal(watcher.state.state, 'live');
});

test('FeedWatcher: a cursor older than the feed holds is reported, and the feed goes on from the id given', async (t) => {
  const url = await testRedisUrl();
  const gateway = await startGatewayInProcess(t, url, { FEED_MAXLEN: '100' });
  const redis = await redisWithFeedBound(t, url, 100);
  const store = new TaskStore(redis);
  const oldest = (await store.start('reference', {})).state.last_event_id;
  for (let i = 0; i < 300; i++) await store.start('reference', {});
  const last = (await redis.xrange(FEED_STREAM, '-', '+')).at(-1)![0];

  const reset = oneShot();
  const resets: (string | undefined)[] = [];
  const entries: FeedEntry[] = [];
  const watcher = new FeedWatcher({
    baseUrl: gateway.url,
    lastEventId: oldest,
    backoff: FAST,
    onEntry: (e) => entries.push(e),
    onReset: (id) => {
      resets.push(id);
      reset.fire();
    },
  });
  t.after(() => watcher.close());
  watcher.start();
  await withTimeout(reset.fired, 'the reset');
  assert.deepEqual(resets, [last]);
  await waitFor(() => watcher.state.state === 'live', 'live again');
  const next = await store.start('reference', {});
  await waitFor(() => entries.length === 1, 'the next entry');
  assert.deepEqual(entries.map((e) => [e.task_id, e.status]), [[next.state.task_id, 'PENDING']]);
  assert.deepEqual(resets, [last], 'one reset');
});

test('FeedWatcher with auth on: a feed token bought before each connection (urlToken), never an API token in the URL', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const API = 'feed-watcher-api-token';
  const gateway = await startGatewayInProcess(t, url, { API_TOKENS: API, TOKEN_SECRET: 'feed-watcher-secret-0123456789abcdef' });
  let bought = 0;
  const entries: FeedEntry[] = [];
  const urls: string[] = [];
  const watcher = new FeedWatcher({
    baseUrl: gateway.url,
    createSocket: (u) => {
      urls.push(u);
      return new WebSocket(u);
    },
    tag: 'mine',
    lastEventId: '0',
    backoff: FAST,
    urlToken: async () => {
      bought += 1;
      const res = await request(`${gateway.url}/feed-tokens`, { body: { tag: 'mine' }, headers: { authorization: `Bearer ${API}` } });
      return res.body.token as string;
    },
    onEntry: (e) => entries.push(e),
  });
  t.after(() => watcher.close());
  watcher.start();
  watcher.start();
  const store = new TaskStore(redis);
  const mine = await store.start('reference', {}, Date.now(), { tags: ['mine'] });
  await store.start('reference', {}, Date.now(), { tags: ['other'] });
  await waitFor(() => entries.length === 1, 'the tagged entry');
  assert.deepEqual(entries.map((e) => e.task_id), [mine.state.task_id]);
  assert.equal(watcher.state.state, 'live');
  assert.equal(bought, 1, 'one token per connection');
  assert.equal(urls.length, 1);
  assert.match(urls[0]!, /[?&]token=\d+\./, 'a feed token in the URL');
  assert.match(urls[0]!, /[?&]batch=1(&|$)/, 'in batches');
  assert.ok(!urls[0]!.includes(API), 'never the API token');
});
