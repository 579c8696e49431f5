import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { taskKey } from '../../src/store/keys.js';
import { closeRedis, type Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayProc, startWorkerProc } from '../helpers/processes.js';
import { connectRedis } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { REFERENCE_STATUSES, assertEventLog, assertNothingPending, taskEvents, waitForEnd } from '../helpers/task-log.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

test('kill -9 of Redis under load, restart with AOF: every accepted task completes exactly once', async (t) => {
  const server = await startRedisServer({ appendonly: true, fsyncAlways: true });
  t.after(() => server.close());
  const gateway = await startGatewayProc(t, server.url);
  const workers = [await startWorkerProc(t, server.url), await startWorkerProc(t, server.url)];

  const accepted: string[] = [];
  for (let i = 0; i < 12; i++) accepted.push(await startTask(gateway.url, { stage_ms: 150 }));
  await server.kill('SIGKILL');

  // While Redis is down: starts fail fast with 503, probes say not ready, liveness holds.
  const refused = await withTimeout(request(`${gateway.url}/tasks`, { body: { stage_ms: 0 } }), 'a prompt 503', 5000);
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error.code, 'REDIS_UNAVAILABLE');
  for (const base of [gateway.url, ...workers.map((w) => w.healthUrl)]) {
    await waitFor(async () => (await request(`${base}/readyz`)).status === 503, `${base}/readyz 503`);
    assert.equal((await request(`${base}/livez`)).status, 200);
  }

  await server.restart();
  let redis: Redis | undefined;
  t.after(() => (redis ? closeRedis(redis) : undefined));
  redis = await connectRedis(server.url);
  for (const base of [gateway.url, ...workers.map((w) => w.healthUrl)]) {
    await waitFor(async () => (await request(`${base}/readyz`)).status === 200, `${base}/readyz 200`, 20_000);
  }
  // Starts and live watches work again through the same processes (readers reconnected).
  const afterRestart = await startTask(gateway.url, { stage_ms: 100 });
  const watched = await watchTask(wsUrl(gateway.url, afterRestart));
  assert.deepEqual(watched.events.map((e) => e.status), REFERENCE_STATUSES);
  for (const id of [...accepted, afterRestart]) {
    assert.equal(await waitForEnd(redis, id, 60_000), 'COMPLETED');
    await assertEventLog(redis, id, REFERENCE_STATUSES);
  }
  await assertNothingPending(redis);
});

// A Redis that comes back with older data (restarted from an older snapshot, or a replica that
// lagged taking over) has lost events the run recorded, while its hash still names the run's
// lease. The run's next event finds the hole (its number is past the hash's `seq` + 1) and stops;
// the task is taken over from the last stage in the log, so no stage goes missing.
/**
 * A redis-server without AOF (after a kill -9 it holds its last SAVE, or nothing), a worker
 * process with CLAIM_IDLE_MS 1000 on it, a client, and a reference task of `stageMs` stages that
 * has recorded STARTED.
 */
async function taskOnRdbRedis(t: TestContext, stageMs: number) {
  const server = await startRedisServer({ appendonly: false });
  t.after(() => server.close());
  const worker = await startWorkerProc(t, server.url, { CLAIM_IDLE_MS: '1000' });
  const redis = await connectRedis(server.url);
  t.after(() => closeRedis(redis));
  const taskId = (await new TaskStore(redis).start('reference', { stage_ms: stageMs })).state.task_id;
  const step = async () => Number(await redis.hget(taskKey(taskId), 'step'));
  await waitFor(async () => (await step()) >= 1, 'STARTED recorded', 30_000);
  return { server, worker, redis, taskId, step };
}

test('Redis back with older data: the run stops at its next event, and the task is taken over from its last stage in the log', async (t) => {
  // Stages of 2 s: the snapshot is taken after one of them, and Redis killed after the next.
  const { server, worker, redis, taskId, step } = await taskOnRdbRedis(t, 2000);
  // The worker holds still while the snapshot is taken: it holds what the log held at that step.
  worker.kill('SIGSTOP');
  const savedStep = await step();
  await redis.save();
  worker.kill('SIGCONT');
  await waitFor(async () => (await step()) > savedStep, 'a stage recorded after the snapshot', 30_000);
  assert.notEqual(await redis.hget(taskKey(taskId), 'status'), 'COMPLETED', 'still running when Redis goes');
  await server.kill('SIGKILL');
  await server.restart();
  assert.equal(await step(), savedStep, 'Redis is back with the snapshot');

  assert.equal(await waitForEnd(redis, taskId, 60_000), 'COMPLETED');
  await assertEventLog(redis, taskId, REFERENCE_STATUSES);
  assert.equal((await taskEvents(redis, taskId)).filter((e) => e.type === 'restart').length, 1, 'taken over once');
  const lost = worker.logs.filter((l) => String(l.msg).startsWith('the task\'s log lost events this run had recorded'));
  assert.equal(lost.length, 1, 'the stopped run says why');
  await assertNothingPending(redis);
});

test('Redis back empty (its data lost): a run whose task is gone stops with a warning naming the loss, and the worker goes on with new tasks', async (t) => {
  const { server, worker, redis, taskId } = await taskOnRdbRedis(t, 1000);
  await server.kill('SIGKILL');
  await server.restart();
  const gone = await worker.waitForLog((l) => l.taskId === taskId && String(l.msg).startsWith('task\'s keys are gone'), 'the lost task named', 30_000);
  assert.equal(gone.level, 40, 'a warning');
  const next = (await new TaskStore(redis).start('reference', { stage_ms: 0 })).state.task_id;
  assert.equal(await waitForEnd(redis, next, 60_000), 'COMPLETED');
});
