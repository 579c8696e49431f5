import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Hub } from '../../src/hub/hub.js';
import { openWatch, type WatchSink } from '../../src/hub/watch.js';
import { createLogger } from '../../src/logger.js';
import type { WireEvent } from '../../src/store/events.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { appendHistory } from '../helpers/append.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { eventIds } from '../helpers/task-log.js';
import { turns, waitFor } from '../helpers/wait.js';

const logger = createLogger('silent', 'test');

/** A sink whose room() answers `room(count)` after each event: count is the events given so far. */
function sink(room: (count: number) => Promise<boolean> | undefined = () => undefined) {
  const ids: string[] = [];
  let ended = false;
  const s: WatchSink & { ids: string[]; ended: () => boolean } = {
    ids,
    ended: () => ended,
    event: (e: WireEvent) => void ids.push(e.id),
    end: () => (ended = true),
    room: () => room(ids.length),
    error: (err: Error) => assert.fail(err),
  };
  return s;
}

/** A Redis connection and a started hub over it, both closed after the test. */
async function redisAndHub(t: TestContext): Promise<{ redis: Redis; hub: Hub }> {
  const redis = await redisFor(t, await testRedisUrl());
  const hub = new Hub({ redis, logger });
  await hub.start();
  t.after(() => hub.close());
  return { redis, hub };
}

/** A finished task with `n` events between PENDING and COMPLETED: more than two replay pages. */
async function longTask(redis: Redis, store: TaskStore, n: number): Promise<string> {
  const taskId = (await store.start('reference', {})).state.task_id;
  await appendHistory(redis, taskId, n);
  return taskId;
}


test('a replay waits whenever the sink has no room, and goes on exactly where it stopped', async (t) => {
  const { redis, hub } = await redisAndHub(t);
  const store = new TaskStore(redis);
  const taskId = await longTask(redis, store, 250);
  const ids = await eventIds(redis, taskId);

  let release!: (goOn: boolean) => void;
  const held = sink((count) => (count === 120 ? new Promise<boolean>((r) => (release = r)) : undefined));
  let opened = false;
  const opening = openWatch({ store, hub }, { taskId }, held).then(() => (opened = true));
  await waitFor(() => held.ids.length === 120, 'the replay to reach the 120th event');
  await turns(20);
  assert.deepEqual([held.ids.length, opened], [120, false], 'nothing more is read or given while there is no room');
  release(true);
  await opening;
  assert.deepEqual(held.ids, ids);
  assert.equal(held.ended(), true);
});

test('a replay whose watcher is gone stops there: no more events, no live subscription', async (t) => {
  const { redis, hub } = await redisAndHub(t);
  const store = new TaskStore(redis);
  const taskId = await longTask(redis, store, 250);
  const ids = await eventIds(redis, taskId);
  const gone = sink((count) => (count === 50 ? Promise.resolve(false) : undefined));
  await openWatch({ store, hub }, { taskId }, gone);
  assert.deepEqual(gone.ids, ids.slice(0, 50));
  assert.equal(gone.ended(), false);
  assert.equal(hub.watchedStreams, 0);
});
