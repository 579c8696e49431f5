import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { COMMANDS_STREAM, WORKER_GROUP, taskKey } from '../../src/store/keys.js';
import { startTask } from '../helpers/http.js';
import { taskGate } from '../helpers/gate.js';
import { inProcessTestTasksEnv, startGatewayInProcess } from '../helpers/in-process.js';
import { startWorkerProc, testTasksEnv } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { REFERENCE_STATUSES, assertEventLog, assertNothingPending, assertRunning, taskEvents, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

/** Small CLAIM_IDLE_MS so that a dead or paused worker's commands are reclaimed within a second. */
const FAST_RECLAIM = { ...testTasksEnv(), CLAIM_IDLE_MS: '1000' };

describe('reclaim and fencing, with real worker processes', () => {
  test('SIGKILL a worker mid-task: another reclaims and resumes after the last recorded stage', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    const doomed = await startWorkerProc(t, url, FAST_RECLAIM);
    const ids = await Promise.all([1, 2, 3].map(() => startTask(gateway.url, { stage_ms: 700 })));
    // Killed once every task has recorded a stage and is inside the next one's work.
    await waitFor(async () => {
      const steps = await Promise.all(ids.map((id) => redis.hget(taskKey(id), 'step')));
      return steps.every((s) => Number(s) >= 1);
    }, 'every task past STARTED', 20_000);
    doomed.kill('SIGKILL');
    await doomed.exited;
    await assertRunning(redis, ids);

    const rescuer = await startWorkerProc(t, url, FAST_RECLAIM);
    for (const id of ids) assert.equal(await waitForEnd(redis, id), 'COMPLETED');
    for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
    await assertNothingPending(redis);
    // Same host, dead process: the rescuer takes them over at once rather than when they idle out.
    const tookOver = rescuer.logs.filter((l) => l.msg === 'took over the command of a dead worker').length;
    assert.equal(tookOver, 3, 'the rescuer took over the three commands');
  });

  test('SIGSTOP a worker past CLAIM_IDLE_MS, then SIGCONT: it appends nothing and acks nothing', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url, inProcessTestTasksEnv());
    const paused = await startWorkerProc(t, url, FAST_RECLAIM);
    // Gated: the task runs until the stale worker was fenced, however slow the machine.
    const gate = taskGate(t);
    const taskId = await startTask(gateway.url, { type: 'gated', params: { gate: gate.path } });
    const pausedPid = `-${paused.child.pid}-`;
    await paused.waitForLog((l) => l.msg === 'event recorded' && l.taskId === taskId && l.status === 'STARTED', 'STARTED recorded by the first worker');
    assert.ok((await redis.hget(taskKey(taskId), 'lease'))?.includes(pausedPid), 'claimed by the first worker');
    paused.kill('SIGSTOP');
    t.after(() => paused.kill('SIGCONT'));

    const owner = await startWorkerProc(t, url, FAST_RECLAIM);
    const ownerPid = `-${owner.child.pid}-`;
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'lease'))?.includes(ownerPid), 'taken over by the second worker', 20_000);
    paused.kill('SIGCONT');
    await paused.waitForLog((l) => l.msg === 'fenced: another worker owns this task now' && l.taskId === taskId, 'fenced');

    // The stale worker did not ack: the command is still pending, held by the new owner.
    const pending = (await redis.xpending(COMMANDS_STREAM, WORKER_GROUP, '-', '+', 10)) as [string, string, number, number][];
    assert.equal(pending.length, 1);
    assert.ok(pending[0]![1].includes(ownerPid), `pending entry held by ${pending[0]![1]}`);
    assert.notEqual(await redis.hget(taskKey(taskId), 'status'), 'COMPLETED');

    gate.open();
    assert.equal(await waitForEnd(redis, taskId), 'COMPLETED');
    await assertEventLog(redis, taskId, REFERENCE_STATUSES);
    await assertNothingPending(redis);
    const staleWrites = paused.logs.filter((l) => l.msg === 'event recorded' && l.taskId === taskId);
    assert.deepEqual(staleWrites.map((l) => l.status), ['STARTED'], 'the paused worker recorded nothing after its pause');
    // Its log line may trail the write that waitForEnd saw.
    await owner.waitForLog((l) => l.msg === 'event recorded' && l.taskId === taskId && l.status === 'COMPLETED', 'the owner recorded COMPLETED');
  });

  test('a worker paused past CLAIM_IDLE_MS, alone: after SIGCONT it heartbeats before it reclaims, and its own running commands are never counted as delivered again', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url, inProcessTestTasksEnv());
    // CLAIM_IDLE_MS 200: heartbeats every 66 ms, reclaim passes every 50 and 100 ms.
    const worker = await startWorkerProc(t, url, { ...testTasksEnv(), CLAIM_IDLE_MS: '200' });
    t.after(() => worker.kill('SIGCONT'));
    // Gated: both tasks run through every pause below.
    const gate = taskGate(t);
    const ids = await Promise.all([1, 2].map(() => startTask(gateway.url, { type: 'gated', params: { gate: gate.path } })));
    await waitFor(async () => (await Promise.all(ids.map((id) => redis.hget(taskKey(id), 'step')))).every((s) => Number(s) >= 1), 'both tasks past STARTED');
    const pending = async () => {
      const entries = (await redis.xpending(COMMANDS_STREAM, WORKER_GROUP, '-', '+', 10)) as [string, string, number, number][];
      assert.equal(entries.length, 2, 'both commands still pending');
      return entries;
    };
    // Each pause lasts until Redis counts both commands idle past CLAIM_IDLE_MS; after it, the
    // worker's overdue heartbeat and reclaim passes run together, in an order that varies: without
    // the heartbeat at the start of each pass, some of these pauses end in a reclaim of its own.
    for (let pause = 1; pause <= 30; pause++) {
      worker.kill('SIGSTOP');
      await waitFor(async () => (await pending()).every(([, , idle]) => idle >= 300), `pause ${pause}: both commands idle past CLAIM_IDLE_MS`);
      worker.kill('SIGCONT');
      await waitFor(async () => (await pending()).every(([, , idle]) => idle < 200), `pause ${pause}: the worker heartbeats again`);
    }
    // A reclaim of its own that got through (the process held up between its heartbeat and its
    // XAUTOCLAIM) has its delivery given back at once.
    await waitFor(async () => (await pending()).every(([, , , deliveries]) => deliveries === 1), 'each command delivered once: its own reclaims not counted', 5000);
    gate.open();
    for (const id of ids) assert.equal(await waitForEnd(redis, id), 'COMPLETED');
    for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
    assert.deepEqual(worker.logs.filter((l) => l.msg === 'reclaimed an idle command'), []);
    await assertNothingPending(redis);
  });

  test('a worker that starts after a crash takes over its predecessor\'s commands at once, not after CLAIM_IDLE_MS', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    const slow = { CLAIM_IDLE_MS: '60000' };
    const doomed = await startWorkerProc(t, url, slow);
    const ids = await Promise.all([1, 2].map(() => startTask(gateway.url, { stage_ms: 400 })));
    await waitFor(async () => (await Promise.all(ids.map((id) => redis.hget(taskKey(id), 'step')))).every((s) => Number(s) >= 1), 'both tasks past STARTED');
    doomed.kill('SIGKILL');
    await doomed.exited;
    const rescuer = await startWorkerProc(t, url, slow);
    // Within seconds: waiting for them to idle out would take a minute.
    for (const id of ids) assert.equal(await waitForEnd(redis, id, 15_000), 'COMPLETED');
    for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
    assert.equal(rescuer.logs.filter((l) => l.msg === 'took over the command of a dead worker').length, 2);
    await assertNothingPending(redis);
  });

  test('a command due for reclaim is taken before new ones, while every slot is busy with a queue of new work', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url);
    // A worker of another host read the command and died: it is reclaimed once idle for CLAIM_IDLE_MS.
    const orphan = await startTask(gateway.url, { stage_ms: 100 });
    await redis.xreadgroup('GROUP', WORKER_GROUP, 'elsewhere-4242-0badf00d', 'COUNT', 1, 'STREAMS', COMMANDS_STREAM, '>');
    const queued: string[] = [];
    for (let i = 0; i < 30; i++) queued.push(await startTask(gateway.url, { stage_ms: 100 }));
    await startWorkerProc(t, url, { WORKER_CONCURRENCY: '2', CLAIM_IDLE_MS: '1000' });
    assert.equal(await waitForEnd(redis, orphan), 'COMPLETED');
    const doneAt = async (id: string) => (await taskEvents(redis, id)).at(-1)!.ts;
    const orphanDone = await doneAt(orphan);
    for (const id of queued) assert.equal(await waitForEnd(redis, id), 'COMPLETED');
    const before = (await Promise.all(queued.map(doneAt))).filter((ts) => ts < orphanDone).length;
    // Draining the queue first (the old order) would finish all 30 before it.
    assert.ok(before <= 12, `${before} of 30 new tasks finished before the reclaimed one`);
    await assertNothingPending(redis);
  });

  test('a handler that blocks the event loop for more than half of CLAIM_IDLE_MS is warned of, with how long; the task still completes', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url, inProcessTestTasksEnv());
    const worker = await startWorkerProc(t, url, FAST_RECLAIM);
    const taskId = await startTask(gateway.url, { type: 'spin', params: { spin_ms: 1500 } });
    assert.equal(await waitForEnd(redis, taskId, 30_000), 'COMPLETED');
    const warned = await worker.waitForLog((l) => String(l.msg).startsWith('the worker was held up'), 'the hold-up warned of');
    assert.equal(warned.level, 40);
    assert.ok(Number(warned.heldUpMs) >= 500 && Number(warned.claimIdleMs) === 1000, JSON.stringify(warned));
    await assertNothingPending(redis);
  });
});
