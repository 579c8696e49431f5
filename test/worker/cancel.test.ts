import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { v4 as uuidv4 } from 'uuid';
import { taskKey, eventsKey } from '../../src/store/keys.js';
import { request, startTask } from '../helpers/http.js';
import { inProcessTestTasksEnv, startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { startWorkerProc, testTasksEnv } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { REFERENCE_STATUSES, assertEventLog, assertNothingPending, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

const cancel = (base: string, id: string) => request(`${base}/tasks/${id}/cancel`, { method: 'POST' });

describe('POST /tasks/<id>/cancel', () => {
  test('a PENDING task is cancelled before it starts; the worker later acks its command and never runs it', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    const res = await cancel(gateway.url, taskId);
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'CANCELLED');
    assert.equal(typeof res.body.cancel_requested_at, 'number');
    await assertEventLog(redis, taskId, ['PENDING', 'CANCELLED']);
    assert.ok((await redis.ttl(eventsKey(taskId))) > 0, 'a cancelled task expires');

    const worker = await startWorkerInProcess(t, url);
    const after = await startTask(gateway.url, { stage_ms: 0 });
    assert.equal(await waitForEnd(redis, after), 'COMPLETED');
    await assertEventLog(redis, taskId, ['PENDING', 'CANCELLED']);
    await assertNothingPending(redis);
    assert.ok(worker.logs.some((l) => l.msg === 'task already ended; acknowledging its command' && l.taskId === taskId));
  });

  test('a running task: the handler is aborted at once and CANCELLED follows, seen live over WebSocket', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    await startWorkerInProcess(t, url);
    // Each stage lasts 10 minutes: only an aborted handler can end within the test's timeouts.
    const taskId = await startTask(gateway.url, { stage_ms: 600_000 });
    await waitFor(async () => ((await redis.hget(taskKey(taskId), 'lease')) ?? '') !== '', 'task claimed');
    const watching = watchTask(wsUrl(gateway.url, taskId));
    const res = await cancel(gateway.url, taskId);
    assert.equal(res.status, 202);
    const watched = await watching;
    assert.equal(watched.code, 1000);
    assert.deepEqual(watched.events.map((e) => e.status), ['PENDING', 'CANCELLED']);
    await assertEventLog(redis, taskId, ['PENDING', 'CANCELLED']);
    await assertNothingPending(redis);
    const again = await cancel(gateway.url, taskId);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'TASK_ALREADY_FINISHED');
    assert.deepEqual(again.body.error.details, { status: 'CANCELLED' });
  });

  test('a running task past its first stage: stages so far stay, CANCELLED is last', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    await startWorkerInProcess(t, url);
    const taskId = await startTask(gateway.url, { stage_ms: 300 });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'STARTED', 'STARTED');
    // The next stage's work now runs for 300 ms; the cancel lands inside it.
    assert.equal((await cancel(gateway.url, taskId)).status, 202);
    assert.equal(await waitForEnd(redis, taskId), 'CANCELLED');
    const events = await assertEventLog(redis, taskId, ['PENDING', 'STARTED', 'CANCELLED']);
    assert.equal(events[2]!.progress, 25, 'CANCELLED keeps the progress reached');
    await assertNothingPending(redis);
  });

  test('a missed cancel message is caught by the heartbeat', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    await startWorkerInProcess(t, url, { CLAIM_IDLE_MS: '600' });
    const taskId = await startTask(gateway.url, { stage_ms: 600_000 });
    await waitFor(async () => ((await redis.hget(taskKey(taskId), 'lease')) ?? '') !== '', 'task claimed');
    // The request as cancel-task.lua records it, without the pub/sub message.
    await redis.hset(taskKey(taskId), 'cancel_requested', Date.now());
    assert.equal(await waitForEnd(redis, taskId), 'CANCELLED');
    await assertEventLog(redis, taskId, ['PENDING', 'CANCELLED']);
    await assertNothingPending(redis);
  });

  test('a finished task answers 409; an unknown one 404; a malformed id 400', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    await startWorkerInProcess(t, url);
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    assert.equal(await waitForEnd(redis, taskId), 'COMPLETED');
    const done = await cancel(gateway.url, taskId);
    assert.equal(done.status, 409);
    assert.deepEqual(done.body, {
      error: { code: 'TASK_ALREADY_FINISHED', message: `task ${taskId} already ended COMPLETED`, details: { status: 'COMPLETED' } },
    });
    await assertEventLog(redis, taskId, REFERENCE_STATUSES);
    const missing = await cancel(gateway.url, uuidv4());
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'TASK_NOT_FOUND');
    const bad = await cancel(gateway.url, 'not-a-uuid');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_TASK_ID');
  });
});

describe('a handler that ignores its abort signal', () => {
  test('cancel: after CANCEL_GRACE_MS the worker records CANCELLED itself, frees the slot and logs the offender', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const tasks = testTasksEnv();
    const gateway = await startGatewayInProcess(t, url, inProcessTestTasksEnv());
    const worker = await startWorkerProc(t, url, { ...tasks, WORKER_CONCURRENCY: '1', CANCEL_GRACE_MS: '500' });
    const taskId = await startTask(gateway.url, { type: 'stubborn', params: { hold_ms: 3000 } });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'STARTED', 'the stubborn task to start');
    const next = await startTask(gateway.url, { stage_ms: 0 });
    assert.equal((await cancel(gateway.url, taskId)).status, 202);
    assert.equal(await waitForEnd(redis, taskId, 2500), 'CANCELLED', 'cancelled within the grace, long before the handler returns');
    assert.equal(await waitForEnd(redis, next, 2500), 'COMPLETED', 'the slot was freed for the next task');
    const offender = await worker.waitForLog((l) => l.msg === 'the handler ignored its abort signal; the run goes on without it', 'the offender logged');
    assert.equal(offender.taskId, taskId);
    // The handler wakes up later and tries to output: fenced off (RUN_ENDED), nothing is recorded.
    const late = await worker.waitForLog((l) => l.msg === 'an abandoned handler settled' && l.taskId === taskId, 'the handler to wake');
    assert.match(String(late.err), /RUN_ENDED|this attempt has ended/);
    await assertEventLog(redis, taskId, ['PENDING', 'STARTED', 'CANCELLED']);
    await assertNothingPending(redis);
  });
});
