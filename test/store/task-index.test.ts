import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TASKS_INDEX } from '../../src/store/keys.js';
import { pruneIndex, readIndexPage } from '../../src/store/task-index.js';
import { TaskStore } from '../../src/store/task-store.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';

test('start adds the task to the index and sets its TTL; it prunes nothing', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis, { ttlS: 3600 });
  const now = Date.now();
  const ancient = (await store.start('reference', {}, now - 3_601_000)).state.task_id;
  const fresh = (await store.start('reference', {}, now)).state.task_id;
  assert.deepEqual((await readIndexPage(redis, 10, null)).entries.map((e) => e.taskId), [fresh, ancient]);
  const ttl = await redis.ttl(TASKS_INDEX);
  assert.ok(ttl > 3500 && ttl <= 3600, `index ttl ${ttl}`);
});

test('pruneIndex removes exactly the entries older than TASK_TTL_S', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis, { ttlS: 3600 });
  const now = Date.now();
  const ancient = (await store.start('reference', {}, now - 3_600_001)).state.task_id;
  const edge = (await store.start('reference', {}, now - 3_600_000)).state.task_id;
  const fresh = (await store.start('reference', {}, now)).state.task_id;
  assert.equal(await pruneIndex(redis, 3600, now), 1);
  assert.deepEqual((await readIndexPage(redis, 10, null)).entries.map((e) => e.taskId), [fresh, edge]);
  assert.equal(await redis.zscore(TASKS_INDEX, ancient), null);
});
