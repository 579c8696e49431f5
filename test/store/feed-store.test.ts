import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { FeedGap, FeedStore } from '../../src/store/feed-store.js';
import { FEED_STREAM, eventsKey, feedKey } from '../../src/store/keys.js';
import { closeRedis, createRedis, ensureConnected, type FeedSettings, type Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { TaskWrites } from '../../src/store/task-writes.js';
import type { FeedEntry } from '../../src/wire/feed.js';
import { appendEvent } from '../helpers/append.js';
import { testRedisUrl } from '../helpers/redis.js';

async function redisWith(t: TestContext, feed: FeedSettings): Promise<Redis> {
  const redis = createRedis(await testRedisUrl(), { name: 'feed-test', feed });
  t.after(() => closeRedis(redis));
  await ensureConnected(redis);
  return redis;
}

/** A feed's entries as field maps, with their ids. */
async function entries(redis: Redis, key: string): Promise<Record<string, string>[]> {
  const pairs = (f: string[]) => f.flatMap((v, i) => (i % 2 === 0 ? [[v, f[i + 1]!] as const] : []));
  return (await redis.xrange(key, '-', '+')).map(([id, fields]) => ({ id, ...Object.fromEntries(pairs(fields)) }));
}

test('each status change goes to the all-tasks feed and to each tag feed, in the same script as the event', async (t) => {
  const redis = await redisWith(t, { maxLen: 1000, progressMs: 250, tagTtlS: 600 });
  const store = new TaskStore(redis);
  const tagged = (await store.start('reference', {}, 1000, { tags: ['team:a', 'user@x'] })).state.task_id;
  const plain = (await store.start('reference', {}, 1001)).state.task_id;
  await appendEvent(redis, tagged, { status: 'STARTED', progress: 0 });
  await store.cancel(plain, 2000);

  const all = await entries(redis, FEED_STREAM);
  assert.deepEqual(all.map(({ id: _, ts: __, ...e }) => e), [
    { task_id: tagged, type: 'reference', status: 'PENDING', progress: '0', tags: '["team:a","user@x"]' },
    { task_id: plain, type: 'reference', status: 'PENDING', progress: '0' },
    { task_id: tagged, type: 'reference', status: 'STARTED', progress: '0', tags: '["team:a","user@x"]' },
    { task_id: plain, type: 'reference', status: 'CANCELLED', progress: '0' },
  ]);
  for (const tag of ['team:a', 'user@x']) {
    assert.deepEqual((await entries(redis, feedKey(tag))).map((e) => e.status), ['PENDING', 'STARTED'], tag);
    const ttl = await redis.ttl(feedKey(tag));
    assert.ok(ttl > 590 && ttl <= 600, `a tag's feed expires TASK_TTL_S after its latest entry (TTL ${ttl})`);
  }
  assert.equal(await redis.ttl(FEED_STREAM), -1, 'the all-tasks feed lasts');
  // The entry's time is its event's.
  const events = await redis.xrange(eventsKey(tagged), '-', '+');
  assert.deepEqual(all.filter((e) => e.task_id === tagged).map((e) => e.ts), events.map(([, f]) => f[f.indexOf('ts') + 1]));

  const page = await new FeedStore(redis).page(undefined, '0-0', 10);
  const first = JSON.parse(page[0]!.json) as FeedEntry;
  assert.deepEqual(first, { id: all[0]!.id, task_id: tagged, type: 'reference', status: 'PENDING', progress: 0, ts: 1000, tags: ['team:a', 'user@x'] });
  assert.deepEqual((JSON.parse(page[1]!.json) as FeedEntry).tags, []);
});

test('progress reaches the feed at most once per FEED_PROGRESS_MS per task; status changes always', async (t) => {
  const redis = await redisWith(t, { maxLen: 1000, progressMs: 250, tagTtlS: 600 });
  const { state } = await new TaskStore(redis).start('reference', {}, 10_000);
  const writes = new TaskWrites(redis, { consumer: 'test', ttlS: 60, maxDeliveries: 5 });
  const progress = (ts: number, percent: number) => ({ kind: 'progress' as const, ts, percent });
  const reply = await writes.append({
    taskId: state.task_id, lease: 'L', commandId: '', firstSeq: 1,
    events: [
      progress(10_100, 1), // 100 ms after PENDING's entry: left out
      progress(10_250, 2), // 250 ms after: in
      progress(10_300, 3),
      { kind: 'stage', ts: 10_310, status: 'PROCESSING', progress: 4 }, // a status change: always in
      progress(10_400, 5),
      progress(10_560, 6), // 250 ms after PROCESSING's entry: in
      { kind: 'stage', ts: 10_570, status: 'COMPLETED', progress: 100, terminal: true },
    ],
  });
  assert.equal(reply[0], 'OK');
  assert.equal((await redis.xlen(eventsKey(state.task_id))), 8, 'every event is in the task log');
  const feed = await entries(redis, FEED_STREAM);
  assert.deepEqual(feed.map((e) => [e.status, e.progress, e.ts]), [
    ['PENDING', '0', '10000'],
    ['PENDING', '2', '10250'],
    ['PROCESSING', '4', '10310'],
    ['PROCESSING', '6', '10560'],
    ['COMPLETED', '100', '10570'],
  ]);
});

test('a cursor older than the feed holds, or beyond its end, is a FeedGap naming the id to continue from', async (t) => {
  const redis = await redisWith(t, { maxLen: 100, progressMs: 250, tagTtlS: 600 });
  const store = new TaskStore(redis);
  const feeds = new FeedStore(redis);
  assert.equal(await feeds.head(undefined), '0-0', 'no feed yet');
  assert.deepEqual(await feeds.page(undefined, '0-0', 10), []);
  await assert.rejects(feeds.page(undefined, '5-0', 10), (err: unknown) => err instanceof FeedGap && err.continueFrom === '0-0');

  const ids: string[] = [];
  for (let i = 0; i < 350; i++) ids.push((await store.start('reference', {})).state.last_event_id);
  const feed = await redis.xrange(FEED_STREAM, '-', '+');
  const last = feed.at(-1)![0];
  const oldest = feed[0]![0];
  // After each script call: over FEED_MAXLEN + 100 entries, the oldest go down to FEED_MAXLEN.
  let expected = 0;
  for (let i = 0; i < 350; i++) if (++expected > 200) expected = 100;
  assert.equal(feed.length, expected, 'down to 100 whenever over 100 + 100');
  assert.equal(await feeds.head(undefined), last);

  // The id just before the oldest entry kept is the oldest cursor that still resumes exactly.
  const before = (await redis.xinfo('STREAM', FEED_STREAM) as unknown[]);
  const maxDeleted = String(before[before.indexOf('max-deleted-entry-id') + 1]);
  const resumed = await feeds.page(undefined, maxDeleted, 1000);
  assert.equal(resumed[0]!.id, oldest);
  assert.equal(resumed.length, feed.length);

  for (const cursor of ['0-0', ids[0]!, '1-0', `${Number(last.split('-')[0]) + 1}-0`]) {
    await assert.rejects(feeds.page(undefined, cursor, 10), (err: unknown) => err instanceof FeedGap && err.continueFrom === last, cursor);
  }
  assert.deepEqual(await feeds.page(undefined, last, 10), [], 'the last id is a cursor with nothing after it');
});
