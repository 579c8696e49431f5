import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TaskEvent } from '../../src/wire/events.js';
import { COMMANDS_STREAM, WORKER_GROUP, taskKey } from '../../src/store/keys.js';
import { startTask } from '../helpers/http.js';
import { inProcessTestTasksEnv, startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { startGatewayProc, startWorkerProc, testTasksEnv } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { testScope } from '../helpers/scope.js';
import { REFERENCE_STATUSES, assertEventLog, assertNothingPending, taskEvents, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

const recordedBy = (logs: Record<string, unknown>[], taskId: string) =>
  logs.filter((l) => l.msg === 'event recorded' && l.taskId === taskId).map((l) => l.status);

describe('graceful shutdown under load', () => {
  test('SIGTERM to a worker: it stops reading, finishes its running tasks, exits 0; others run the rest', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    const leaving = await startWorkerProc(t, url, { WORKER_CONCURRENCY: '4', SHUTDOWN_GRACE_MS: '30000' });
    const first = await Promise.all([1, 2, 3, 4].map(() => startTask(gateway.url, { stage_ms: 300 })));
    const pid = `-${leaving.child.pid}-`;
    await waitFor(async () => {
      const leases = await Promise.all(first.map((id) => redis.hget(taskKey(id), 'lease')));
      return leases.every((l) => l?.includes(pid));
    }, 'the four tasks claimed by the leaving worker');
    leaving.kill('SIGTERM');
    await leaving.waitForLog((l) => l.msg === 'shutting down', 'shutting down');
    const later = await Promise.all([1, 2, 3].map(() => startTask(gateway.url, { stage_ms: 0 })));
    assert.equal(await leaving.exited, 0);
    for (const id of first) {
      assert.equal(await waitForEnd(redis, id), 'COMPLETED', 'finished by the leaving worker before it exited');
      assert.deepEqual(recordedBy(leaving.logs, id), REFERENCE_STATUSES.slice(1));
    }
    for (const id of later) assert.equal(await redis.hget(taskKey(id), 'status'), 'PENDING', 'not read while draining');

    await startWorkerInProcess(t, url);
    for (const id of later) assert.equal(await waitForEnd(redis, id), 'COMPLETED');
    for (const id of [...first, ...later]) await assertEventLog(redis, id, REFERENCE_STATUSES);
    await assertNothingPending(redis);
  });

  test('SIGTERM to a worker whose tasks outlast SHUTDOWN_GRACE_MS: left pending, another resumes them', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    const env = { SHUTDOWN_GRACE_MS: '300', CLAIM_IDLE_MS: '1000' };
    const leaving = await startWorkerProc(t, url, env);
    const ids = await Promise.all([1, 2, 3].map(() => startTask(gateway.url, { stage_ms: 800 })));
    await waitFor(async () => {
      const steps = await Promise.all(ids.map((id) => redis.hget(taskKey(id), 'step')));
      return steps.every((s) => Number(s) >= 1);
    }, 'every task past STARTED', 20_000);
    leaving.kill('SIGTERM');
    assert.equal(await leaving.exited, 0);
    assert.ok(leaving.logs.some((l) => l.msg === 'grace period over; leaving running commands pending'));
    for (const id of ids) assert.notEqual(await redis.hget(taskKey(id), 'status'), 'COMPLETED');

    await startWorkerInProcess(t, url, env);
    for (const id of ids) assert.equal(await waitForEnd(redis, id), 'COMPLETED');
    for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
    await assertNothingPending(redis);
  });

  test('SIGTERM to a worker whose handler ignores its signal: the command is handed back at once, exit 0', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const tasks = testTasksEnv();
    const gateway = await startGatewayInProcess(t, url, inProcessTestTasksEnv());
    // The backstop would exit 1 after SHUTDOWN_GRACE_MS + STOP_MARGIN_MS; the handler holds on for a minute.
    const leaving = await startWorkerProc(t, url, { ...tasks, SHUTDOWN_GRACE_MS: '300', CLAIM_IDLE_MS: '60000' });
    const taskId = await startTask(gateway.url, { type: 'stubborn', params: { hold_ms: 60_000 } });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'STARTED', 'the stubborn task to start');
    leaving.kill('SIGTERM');
    assert.equal(await leaving.exited, 0);
    assert.ok(!leaving.logs.some((l) => l.msg === 'shutdown took too long; exiting'));
    // A shutdown's abort gives no grace: the run stops at once, which is not the handler ignoring a grace.
    const stops = leaving.logs.filter((l) => l.msg === 'the run stops without waiting for its handler');
    assert.deepEqual(stops.map((l) => [l.taskId, l.level]), [[taskId, 30]]);
    assert.ok(!leaving.logs.some((l) => String(l.msg).startsWith('the handler ignored its abort signal')));
    // Handed back: idle for CLAIM_IDLE_MS at once, so another worker reclaims it now, not in a minute.
    const [, , idle] = ((await redis.xpending(COMMANDS_STREAM, WORKER_GROUP, '-', '+', 10)) as [string, string, number, number][])[0]!;
    assert.ok(idle >= 60_000, `handed back with idle ${idle} ms`);
  });

  test('SIGTERM to a gateway: every socket closes 1001, it exits 0, watchers resume exactly on another', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const leaving = await startGatewayProc(t, url);
    const staying = await startGatewayInProcess(t, url);
    await startWorkerInProcess(t, url);
    const ids = await Promise.all([1, 2, 3, 4].map(() => startTask(staying.url, { stage_ms: 400 })));
    const seen = new Map<string, TaskEvent[]>(ids.map((id) => [id, []]));
    const watches = ids.map((id) => watchTask(wsUrl(leaving.url, id), { onEvent: (e) => seen.get(id)!.push(e) }));
    await waitFor(() => [...seen.values()].every((events) => events.length >= 1), 'a first event on every watch');
    leaving.kill('SIGTERM');
    const closed = await Promise.all(watches);
    assert.deepEqual(closed.map((c) => c.code), [1001, 1001, 1001, 1001]);
    assert.equal(await leaving.exited, 0);
    await assert.rejects(fetch(`${leaving.url}/livez`), 'the gateway no longer accepts connections');

    for (const [i, id] of ids.entries()) {
      const before = closed[i]!.events;
      const rest = await watchTask(wsUrl(staying.url, id, before.at(-1)!.id));
      assert.equal(rest.code, 1000);
      const all = await taskEvents(redis, id);
      assert.deepEqual([...before, ...rest.events].map((e) => e.id), all.map((e) => e.id), 'no gap, no duplicate');
      await assertEventLog(redis, id, REFERENCE_STATUSES);
    }
    await assertNothingPending(redis);
  });
});

// The process gives up on a stop after SHUTDOWN_GRACE_MS + 5 s (exit 1): a worker whose Redis is
// gone must not need that. Its reads, heartbeats and reclaims wait on a Redis that will not answer,
// so it stops without them, leaves its running tasks pending for others, and exits 0.
test('SIGTERM to a worker while its Redis is down: it stops within its grace period and exits 0; its tasks complete once Redis is back', async (t) => {
  const server = await startRedisServer({ appendonly: true, fsyncAlways: true });
  const scope = testScope(t);
  scope.after(() => server.close());
  const gateway = await startGatewayInProcess(scope, server.url);
  // Reclaim passes every 500 ms: one is likely waiting on Redis when the signal comes.
  const leaving = await startWorkerProc(scope, server.url, { WORKER_CONCURRENCY: '4', SHUTDOWN_GRACE_MS: '2000', CLAIM_IDLE_MS: '2000' });
  const ids = await Promise.all([1, 2].map(() => startTask(gateway.url, { stage_ms: 1500 })));
  await leaving.waitForLog((l) => l.msg === 'event recorded' && l.status === 'STARTED' && l.taskId === ids[1], 'a task started');
  await server.kill('SIGKILL');
  await leaving.waitForLog((l) => l.msg === 'redis connection error; reconnecting', 'the worker to see Redis gone');
  leaving.kill('SIGTERM');
  assert.equal(await leaving.exited, 0);
  assert.ok(leaving.logs.some((l) => l.msg === 'worker stopped'), 'a clean stop');
  assert.ok(!leaving.logs.some((l) => l.msg === 'shutdown took too long; exiting'));

  await server.restart();
  const redis = await redisFor(t, server.url);
  await startWorkerInProcess(scope, server.url, { CLAIM_IDLE_MS: '2000' });
  for (const id of ids) assert.equal(await waitForEnd(redis, id), 'COMPLETED', id);
  for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
});

// A Redis that hangs (a stopped VM) answers nothing and closes nothing: every step of the stop
// waits out its bound. With no grace at all, those bounds alone must fit before the backstop.
test('SIGTERM to a worker while its Redis hangs (SIGSTOP), with SHUTDOWN_GRACE_MS=0: a clean stop, exit 0; its tasks complete once Redis wakes', async (t) => {
  const server = await startRedisServer({ appendonly: true, fsyncAlways: true });
  const scope = testScope(t);
  scope.after(() => server.close());
  scope.after(() => void server.process.kill('SIGCONT'));
  const gateway = await startGatewayInProcess(scope, server.url);
  const leaving = await startWorkerProc(scope, server.url, { WORKER_CONCURRENCY: '4', SHUTDOWN_GRACE_MS: '0', CLAIM_IDLE_MS: '2000' });
  const ids = await Promise.all([1, 2].map(() => startTask(gateway.url, { stage_ms: 1500 })));
  await leaving.waitForLog((l) => l.msg === 'event recorded' && l.status === 'STARTED' && l.taskId === ids[1], 'a task started');
  server.process.kill('SIGSTOP');
  leaving.kill('SIGTERM');
  assert.equal(await leaving.exited, 0);
  assert.ok(leaving.logs.some((l) => l.msg === 'worker stopped'), 'a clean stop');
  assert.ok(!leaving.logs.some((l) => l.msg === 'shutdown took too long; exiting'));

  server.process.kill('SIGCONT');
  const redis = await redisFor(t, server.url);
  await startWorkerInProcess(scope, server.url, { CLAIM_IDLE_MS: '2000' });
  for (const id of ids) assert.equal(await waitForEnd(redis, id), 'COMPLETED', id);
  for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
});
