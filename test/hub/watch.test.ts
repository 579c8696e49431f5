import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Hub } from '../../src/hub/hub.js';
import { openWatch, type WatchSink } from '../../src/hub/watch.js';
import { createLogger } from '../../src/logger.js';
import type { WireEvent } from '../../src/store/events.js';
import { eventsKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { appendEvent } from '../helpers/append.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { eventIds } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

const logger = createLogger('silent', 'test');

function sink() {
  const got: { id: string; status: string; replayed: boolean }[] = [];
  let ended = false;
  const s: WatchSink & { got: typeof got; ended: () => boolean } = {
    got,
    ended: () => ended,
    event: (e: WireEvent, replayed: boolean) => got.push({ id: e.id, status: (JSON.parse(e.json) as { status: string }).status, replayed }),
    end: () => (ended = true),
    error: (err: Error) => assert.fail(err),
  };
  return s;
}

/** Every XRANGE the server runs from now on, by key, seen through MONITOR. */
async function xranges(t: { after(fn: () => unknown): void }, redis: Redis): Promise<string[]> {
  const keys: string[] = [];
  const monitor = await redis.monitor();
  t.after(() => monitor.disconnect());
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() === 'xrange') keys.push(args[1]!);
  });
  return keys;
}

/** A Redis connection and a started hub over it, both closed after the test. */
async function redisAndHub(t: TestContext): Promise<{ redis: Redis; hub: Hub }> {
  const redis = await redisFor(t, await testRedisUrl());
  const hub = new Hub({ redis, logger });
  await hub.start();
  t.after(() => hub.close());
  return { redis, hub };
}

/** Appends the reference task's stages after the first `done` of them, then COMPLETED. */
const finish = async (redis: Redis, taskId: string, done = 0) => {
  for (const [status, progress] of ([['STARTED', 25], ['PROCESSING', 50], ['CONCLUDING', 75]] as const).slice(done)) {
    await appendEvent(redis, taskId, { status, progress });
  }
  await appendEvent(redis, taskId, { status: 'COMPLETED', progress: 100, terminal: true });
};

test('a watch of a task started by the same gateway moments ago is replayed by the hub, with no XRANGE', async (t) => {
  const { redis, hub } = await redisAndHub(t);
  const here = new TaskStore(redis);
  const elsewhere = new TaskStore(redis);
  const ranges = await xranges(t, redis);

  const live = (await here.start('reference', {})).state.task_id;
  const fresh = sink();
  await openWatch({ store: here, hub }, { taskId: live }, fresh);
  await appendEvent(redis, live, { status: 'STARTED', progress: 25 });
  const done = (await here.start('reference', {})).state.task_id;
  await finish(redis, done);
  await finish(redis, live, 1);

  const replay = sink();
  await openWatch({ store: here, hub }, { taskId: done }, replay);
  const other = sink();
  await openWatch({ store: elsewhere, hub }, { taskId: done }, other);
  await waitFor(() => fresh.ended() && replay.ended() && other.ended(), 'the three watches to end');
  // MONITOR lines come on their own connection: wait for the one read that must be there.
  await waitFor(() => ranges.length > 0, 'the other gateway\'s XRANGE');
  assert.deepEqual(ranges, [eventsKey(done)], 'only the gateway that did not start the task read its log');

  assert.deepEqual(fresh.got.map((e) => e.id), await eventIds(redis, live));
  assert.deepEqual(replay.got.map((e) => e.id), await eventIds(redis, done));
  assert.deepEqual(other.got.map((e) => e.id), await eventIds(redis, done));
  assert.deepEqual(fresh.got.map((e) => e.replayed), [true, false, false, false, false], 'only PENDING predates the watch');
  assert.deepEqual(replay.got.map((e) => e.replayed), [true, true, true, true, true]);
});

test('a resume point of a recent start is read as usual once it is past the first event', async (t) => {
  const { redis, hub } = await redisAndHub(t);
  const store = new TaskStore(redis);
  const { task_id: taskId, last_event_id: first } = (await store.start('reference', {})).state;
  await finish(redis, taskId);
  const ids = await eventIds(redis, taskId);

  const fromFirst = sink();
  await openWatch({ store, hub }, { taskId, lastEventId: first }, fromFirst);
  const fromSecond = sink();
  await openWatch({ store, hub }, { taskId, lastEventId: ids[1] }, fromSecond);
  await waitFor(() => fromFirst.ended() && fromSecond.ended(), 'both watches to end');
  assert.deepEqual(fromFirst.got.map((e) => e.id), ids.slice(1));
  assert.deepEqual(fromSecond.got.map((e) => e.id), ids.slice(2));

  const beyond = `${Number(ids.at(-1)!.split('-')[0]) + 1000}-0`;
  await assert.rejects(openWatch({ store, hub }, { taskId, lastEventId: beyond }, sink()), { code: 'EVENT_ID_OUT_OF_RANGE' });
});
