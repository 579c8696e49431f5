import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SCHEDULED_SET } from '../../src/store/keys.js';
import { closeRedis, type Redis } from '../../src/store/redis.js';
import { request } from '../helpers/http.js';
import { startGatewayInProcess } from '../helpers/in-process.js';
import { startWorkerProc } from '../helpers/processes.js';
import { connectRedis } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { testScope } from '../helpers/scope.js';
import { waitFor } from '../helpers/wait.js';
import { REFERENCE_STATUSES, assertNothingPending, taskEvents, waitForEnd } from '../helpers/task-log.js';

test('scheduled tasks due in about 3 s run within 1 s of their time after a worker SIGKILL and a Redis restart (AOF)', async (t) => {
  const server = await startRedisServer({ appendonly: true, fsyncAlways: true });
  t.after(() => server.close());
  const scope = testScope(t);
  const gw = await startGatewayInProcess(scope, server.url);
  const workers = [await startWorkerProc(t, server.url), await startWorkerProc(t, server.url)];

  const tasks: { id: string; runAt: number }[] = [];
  for (const [i, priority] of (['low', 'normal', 'high'] as const).entries()) {
    const res = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, delay_ms: 3000 + 100 * i, priority } });
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'SCHEDULED');
    tasks.push({ id: res.body.task_id, runAt: res.body.run_at });
  }
  workers[0]!.kill('SIGKILL');
  await server.restart();
  await waitFor(async () => (await request(`${workers[1]!.healthUrl}/readyz`)).status === 200, 'the surviving worker ready again', 20_000);
  assert.ok(Date.now() < tasks[0]!.runAt, `the faults were over ${tasks[0]!.runAt - Date.now()} ms before the first task was due`);

  let redis: Redis | undefined;
  t.after(() => (redis ? closeRedis(redis) : undefined));
  redis = await connectRedis(server.url);
  for (const { id, runAt } of tasks) {
    assert.equal(await waitForEnd(redis, id, 30_000), 'COMPLETED');
    const events = await taskEvents(redis, id);
    assert.deepEqual(events.map((e) => e.status), ['SCHEDULED', ...REFERENCE_STATUSES]);
    assert.equal(events[0]!.run_at, runAt);
    const [promoted, ran] = [events[1]!.ts, events[2]!.ts];
    assert.ok(promoted >= runAt, `promoted ${promoted - runAt} ms after its time, not before`);
    assert.ok(ran - runAt < 1000, `STARTED ${ran - runAt} ms after its time`);
  }
  assert.equal(await redis.zcard(SCHEDULED_SET), 0);
  await assertNothingPending(redis);
});
