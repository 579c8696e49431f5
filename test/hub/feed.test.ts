import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { FEED_STREAM, feedKey, taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { TERMINAL_STATUSES } from '../../src/wire/events.js';
import { continueFromReason, type FeedEntry, type FeedReset } from '../../src/wire/feed.js';
import { feedUrl, followFeed } from '../helpers/feed-client.js';
import { startRestartableGateway } from '../helpers/gateway-restart.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { startGatewayProc } from '../helpers/processes.js';
import { redisFor, redisWithFeedBound, testRedisUrl } from '../helpers/redis.js';
import { testScope } from '../helpers/scope.js';
import { watchSse } from '../helpers/sse-client.js';
import { taskEvents } from '../helpers/task-log.js';
import { oneShot, waitFor, withTimeout } from '../helpers/wait.js';

/** Progress never reaches the feed (one per hour per task): its entries are exactly the status changes. */
const STATUS_ONLY = { FEED_PROGRESS_MS: '3600000' };

async function feedIds(redis: Redis, key = FEED_STREAM): Promise<string[]> {
  return (await redis.xrange(key, '-', '+')).map(([id]) => id);
}

/** Every status change of each task, as its own log has it (stage events), against what a feed gave. */
async function assertStatusChanges(redis: Redis, taskIds: string[], got: FeedEntry[]): Promise<void> {
  for (const taskId of taskIds) {
    const stages = (await taskEvents(redis, taskId)).filter((e) => e.type === 'stage');
    assert.ok(stages.length >= 5, `task ${taskId} ran to its end`);
    assert.deepEqual(
      got.filter((e) => e.task_id === taskId).map((e) => [e.status, e.ts]),
      stages.map((e) => [e.status, e.ts]),
      `the status changes of ${taskId}, each once and in order`,
    );
  }
}

const allEnded = async (redis: Redis, taskIds: string[]) => {
  const statuses = await Promise.all(taskIds.map((id) => redis.hget(taskKey(id), 'status')));
  return statuses.every((s) => s !== null && TERMINAL_STATUSES.has(s));
};

test('every status change of 200 tasks reaches a feed follower exactly once and in order, across reconnects and a gateway restart', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startRestartableGateway(testScope(t), url, STATUS_ONLY);
  await startWorkerInProcess(t, url, { ...STATUS_ONLY, WORKER_CONCURRENCY: '50' });
  const store = new TaskStore(redis);
  const taskIds = (
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.start('reference', { stage_ms: 300 }, Date.now(), { tags: i % 2 ? ['odd'] : [] })))
  ).map((s) => s.state.task_id);

  const got: FeedEntry[] = [];
  const reached = oneShot();
  let lastId: string | undefined;
  const check = () => {
    if (lastId !== undefined && got.at(-1)?.id === lastId) reached.fire();
  };
  void waitFor(() => allEnded(redis, taskIds), 'every task ended', 120_000).then(async () => {
    lastId = (await feedIds(redis)).at(-1);
    check();
  });

  let restart: Promise<void> | undefined;
  let connections = 0;
  let done = false;
  void reached.fired.then(() => (done = true));
  while (!done) {
    const cursor = got.at(-1)?.id ?? '0';
    connections += 1;
    try {
      await followFeed(feedUrl(gateway.url, { lastEventId: cursor }), {
        take: 20 + (connections % 7) * 5,
        stop: reached.fired,
        timeoutMs: 120_000,
        onEntry: (e) => {
          got.push(e);
          check();
          // Mid-connection, mid-run: the gateway dies (no close handshake) and comes back.
          if (got.length === 300) restart = gateway.kill().then(() => gateway.restart());
        },
      });
    } catch {
      // The gateway is down: reconnect after a client backoff.
      await delay(50);
    }
  }
  await withTimeout(restart!, 'the gateway restart', 60_000);

  assert.ok(connections > 20, `${connections} connections`);
  assert.deepEqual(got.map((e) => e.id), await feedIds(redis), 'the whole feed, each entry once, in order');
  await assertStatusChanges(redis, taskIds, got);
  for (const e of got) assert.deepEqual(e.tags, taskIds.indexOf(e.task_id) % 2 ? ['odd'] : []);
});

test("a tag feed over SSE holds its tag's tasks only, each status change once and in order", async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayInProcess(t, url, STATUS_ONLY);
  await startWorkerInProcess(t, url, STATUS_ONLY);
  const store = new TaskStore(redis);
  const tags = [['red'], ['blue'], ['red', 'blue'], []];
  // Opened before the tasks start, from the beginning of a feed that does not exist yet.
  const red = watchSse(`${gateway.url}/sse/feed?tag=red&lastEventId=0`, { take: 20 * 5, timeoutMs: 60_000 });
  const started = await Promise.all(Array.from({ length: 40 }, (_, i) => store.start('reference', { stage_ms: 10 }, Date.now(), { tags: tags[i % 4]! })));
  const redIds = started.filter((_, i) => tags[i % 4]!.includes('red')).map((s) => s.state.task_id);
  const result = await red;
  assert.equal(result.status, 200);
  const entries = result.events as unknown as FeedEntry[];
  assert.deepEqual(result.ids, await feedIds(redis, feedKey('red')));
  assert.deepEqual(new Set(entries.map((e) => e.task_id)), new Set(redIds), 'the red tasks, and no other');
  for (const e of entries) assert.ok(e.tags.includes('red'));
  await assertStatusChanges(redis, redIds, entries);
});

test('a cursor older than the feed holds gets 4410 (WebSocket) or a reset message (SSE) with the id to continue from', async (t) => {
  const url = await testRedisUrl();
  const gateway = await startGatewayInProcess(t, url, { FEED_MAXLEN: '100' });
  // Starts from this client trim the feed with the gateway's bound.
  const redis = await redisWithFeedBound(t, url, 100);
  const store = new TaskStore(redis);
  const first = (await store.start('reference', {})).state;
  for (let i = 0; i < 300; i++) await store.start('reference', {});
  const ids = await feedIds(redis);
  const last = ids.at(-1)!;
  assert.ok(ids.length <= 200 && !ids.includes(first.last_event_id), 'the oldest entries are trimmed');

  const ws = await followFeed(feedUrl(gateway.url, { lastEventId: first.last_event_id }));
  assert.equal(ws.code, 4410);
  assert.equal(continueFromReason(ws.reason), last);
  assert.deepEqual(ws.entries, []);

  const sse = await watchSse(`${gateway.url}/sse/feed`, { lastEventId: '1-0' });
  assert.equal(sse.status, 200);
  assert.deepEqual(sse.names, ['reset']);
  assert.deepEqual(sse.ids, [last], 'EventSource reconnects from the id to continue from');
  assert.deepEqual(sse.events[0] as unknown as FeedReset, {
    code: 'FEED_CURSOR_EXPIRED',
    message: `entries after the cursor are gone: reload the list, then continue from ${last}`,
    continue_from: last,
  });

  // From the id given, the feed goes on with nothing missed; without a cursor it starts at its end,
  // which its first message names.
  const marked = oneShot();
  const fromGiven = followFeed(feedUrl(gateway.url, { lastEventId: last }), { take: 1 });
  const fromNow = followFeed(feedUrl(gateway.url), { take: 1, onMark: () => marked.fire() });
  await withTimeout(marked.fired, 'the cursor mark');
  const next = await store.start('reference', {});
  const [a, b] = await Promise.all([fromGiven, fromNow]);
  assert.deepEqual(a.entries.map((e) => [e.task_id, e.status]), [[next.state.task_id, 'PENDING']]);
  assert.deepEqual(b.marks, [last]);
  assert.deepEqual(b.entries.map((e) => e.id), [(await feedIds(redis)).at(-1)]);
});

test('a hub that falls behind the trimming ends its feed followers with 4410, never with a gap', async (t) => {
  const url = await testRedisUrl();
  const scope = testScope(t);
  const gateway = await startGatewayProc(scope, url, { FEED_MAXLEN: '100' });
  const redis = await redisWithFeedBound(t, url, 100);
  const store = new TaskStore(redis);
  const follower = followFeed(feedUrl(gateway.url, { lastEventId: '0' }), { timeoutMs: 60_000 });
  await waitFor(async () => ((await redis.client('LIST')) as string).includes('cmd=xread'), 'the hub to park its XREAD');
  // The gateway stops reading while the feed is appended and trimmed past what its hub has read.
  const history: string[] = [];
  gateway.kill('SIGSTOP');
  try {
    for (let i = 0; i < 400; i++) {
      await store.start('reference', {});
      history.push((await feedIds(redis)).at(-1)!);
    }
  } finally {
    gateway.kill('SIGCONT');
  }
  const result = await follower;
  assert.equal(result.code, 4410);
  assert.equal(continueFromReason(result.reason), history.at(-1));
  // What it got before is a prefix of the feed's whole history: nothing skipped.
  const got = result.entries.map((e) => e.id);
  assert.deepEqual(got, history.slice(0, got.length));
  assert.ok(got.length < 100, `${got.length} delivered before the gap`);
});
