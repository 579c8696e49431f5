import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/http.js';
import { startGatewayInProcess } from '../helpers/in-process.js';
import { startWorkerProc, testTasksEnv } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { maxRunning, slotKeysLeft } from '../helpers/running-sets.js';
import { testScope } from '../helpers/scope.js';
import { assertNothingPending, taskEvents, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

test('a per-type limit of 2 (TASK_CONCURRENCY) holds at every moment while 3 workers run 30 tasks and one is SIGKILLed; no slot leaks', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gw = await startGatewayInProcess(testScope(t), url, { TASK_MODULES: 'test/fixtures/test-tasks.ts' });
  const env = { ...testTasksEnv(), TASK_CONCURRENCY: 'limited=2', CLAIM_IDLE_MS: '1000', WORKER_CONCURRENCY: '4' };
  // The first worker alone takes the first (long) tasks and is killed while it runs them: they
  // keep their slots until other workers reclaim and finish them.
  const victim = await startWorkerProc(t, url, env);
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    const res = await request(`${gw.url}/tasks`, { body: { type: 'limited', params: { stage_ms: i < 2 ? 1500 : 60 } } });
    assert.equal(res.status, 202);
    ids.push(res.body.task_id);
  }
  await waitFor(() => victim.logs.some((l) => l.msg === 'event recorded' && l.status === 'STARTED'), 'the first worker to run a task', 30_000);
  victim.kill('SIGKILL');
  await Promise.all([0, 1].map(() => startWorkerProc(t, url, env)));

  for (const id of ids) assert.equal(await waitForEnd(redis, id, 60_000), 'COMPLETED');
  assert.equal(await maxRunning(redis, ids), 2, 'two at once at most, and two reached');
  const restarted = (await Promise.all(ids.map((id) => taskEvents(redis, id)))).filter((events) => events.some((e) => e.type === 'restart'));
  assert.ok(restarted.length >= 1, 'the killed worker\'s task was reclaimed and finished by another');
  assert.deepEqual(await slotKeysLeft(redis, 'limited'), [], 'no slot leaks');
  await assertNothingPending(redis);
});
