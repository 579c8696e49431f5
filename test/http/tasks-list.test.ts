import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { TASKS_INDEX, taskKey } from '../../src/store/keys.js';
import { TaskStore } from '../../src/store/task-store.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';

async function listAll(base: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const res = await request(`${base}/tasks?limit=${limit}${query}`);
    assert.equal(res.status, 200);
    ids.push(...res.body.tasks.map((t: { task_id: string }) => t.task_id));
    cursor = res.body.next_cursor;
    pages++;
    assert.ok(pages < 100, 'pagination terminates');
  } while (cursor !== null);
  return { ids, pages };
}

describe('GET /tasks: recent tasks from the index', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl, { TASK_TTL_S: '3600' });
  });

  test('newest first, full states, cursor pagination covers every task once', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await redis.del(TASKS_INDEX);
    const started: string[] = [];
    for (let i = 0; i < 5; i++) started.push(await startTask(gateway.url, { stage_ms: 1000 }));
    const first = await request(`${gateway.url}/tasks?limit=2`);
    assert.equal(first.status, 200);
    assert.equal(first.body.tasks.length, 2);
    assert.equal(first.body.tasks[0].task_id, started[4]);
    assert.equal(first.body.tasks[0].status, 'PENDING');
    assert.equal(first.body.tasks[0].type, 'reference');
    assert.deepEqual(first.body.tasks[0].params, { stage_ms: 1000 });
    assert.equal(typeof first.body.next_cursor, 'string');
    // A repeated parameter counts with its first value, as on every route.
    const twice = await request(`${gateway.url}/tasks?limit=2&limit=50`);
    assert.deepEqual(twice.body.tasks.map((s: { task_id: string }) => s.task_id), [started[4], started[3]]);

    const { ids, pages } = await listAll(gateway.url, 2);
    assert.deepEqual(ids, [...started].reverse());
    assert.equal(pages, 3);
    const all = await request(`${gateway.url}/tasks`);
    assert.deepEqual(all.body.tasks.map((s: { task_id: string }) => s.task_id), [...started].reverse());
    assert.equal(all.body.next_cursor, null);
    const ttl = await redis.ttl(TASKS_INDEX);
    assert.ok(ttl > 3500 && ttl <= 3600, `index ttl ${ttl}`);
  });

  test('tasks created in the same millisecond are paged one by one without loss or repeat', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await redis.del(TASKS_INDEX);
    const store = new TaskStore(redis, { ttlS: 3600 });
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await store.start('reference', { stage_ms: 0 }, now)).state.task_id);
    const older = (await store.start('reference', { stage_ms: 0 }, now - 1)).state.task_id;
    const newer = (await store.start('reference', { stage_ms: 0 }, now + 1)).state.task_id;
    const expected = [newer, ...[...ids].sort().reverse(), older];
    for (const limit of [1, 2, 3, 100]) {
      assert.deepEqual((await listAll(gateway.url, limit)).ids, expected, `limit=${limit}`);
    }
  });

  test('tasks that expired before their index entry was pruned are left out', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await redis.del(TASKS_INDEX);
    const store = new TaskStore(redis, { ttlS: 3600 });
    const now = Date.now();
    const expired = (await store.start('reference', {}, now - 3_500_000)).state.task_id;
    const fresh = (await store.start('reference', {}, now)).state.task_id;
    await redis.del(taskKey(expired));
    assert.notEqual(await redis.zscore(TASKS_INDEX, expired), null);
    assert.deepEqual((await listAll(gateway.url, 1)).ids, [fresh]);
  });

  test('bad queries are 400 INVALID_QUERY', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'cursor=nope', 'cursor=1:xyz', 'other=1']) {
      const res = await request(`${gateway.url}/tasks?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.error.code, 'INVALID_QUERY', query);
    }
  });
});
