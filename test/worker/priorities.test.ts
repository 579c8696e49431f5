import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { testScope } from '../helpers/scope.js';
import { assertNothingPending, taskEvents, waitForEnd } from '../helpers/task-log.js';

test('one worker of concurrency 1 runs a queue of low, normal and high tasks high first, then normal, then low, each FIFO', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const scope = testScope(t);
  const gw = await startGatewayInProcess(scope, url);
  const order = ['low', 'normal', 'high', 'low', 'high', 'normal', 'normal', 'low', 'high'] as const;
  const started: { id: string; priority: string }[] = [];
  for (const priority of order) {
    const res = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, priority } });
    assert.equal(res.status, 202);
    started.push({ id: res.body.task_id, priority });
  }
  await startWorkerInProcess(scope, url, { WORKER_CONCURRENCY: '1' });
  for (const { id } of started) assert.equal(await waitForEnd(redis, id), 'COMPLETED');

  // The run order: by the id of each task's first event after PENDING (one Redis clock, one run at a time).
  const firstRun = new Map<string, string>();
  for (const { id } of started) firstRun.set(id, (await taskEvents(redis, id)).find((e) => e.status !== 'PENDING')!.id);
  const byRun = [...started].sort((a, b) => compareIds(firstRun.get(a.id)!, firstRun.get(b.id)!));
  const expected = ['high', 'normal', 'low'].flatMap((p) => started.filter((s) => s.priority === p));
  assert.deepEqual(byRun.map((s) => `${s.priority} ${s.id}`), expected.map((s) => `${s.priority} ${s.id}`));
  await assertNothingPending(redis);
});

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}
