import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { COMMANDS_STREAM, WORKER_GROUP, taskKey } from '../../src/store/keys.js';
import { startTask } from '../helpers/http.js';
import { startGatewayProc, startWorkerProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { REFERENCE_STATUSES, assertEventLog, assertNothingPending, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

/** Small CLAIM_IDLE_MS so that a dead or paused worker's commands are reclaimed within a second. */
const FAST_RECLAIM = { CLAIM_IDLE_MS: '1000' };

describe('reclaim and fencing, with real worker processes', () => {
  test('SIGKILL a worker mid-task: another reclaims and resumes after the last recorded stage', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayProc(t, url);
    const doomed = await startWorkerProc(t, url, FAST_RECLAIM);
    const ids = await Promise.all([1, 2, 3].map(() => startTask(gateway.url, { stage_ms: 700 })));
    // Killed once every task has recorded a stage and is inside the next one's work.
    await waitFor(async () => {
      const steps = await Promise.all(ids.map((id) => redis.hget(taskKey(id), 'step')));
      return steps.every((s) => Number(s) >= 1);
    }, 'every task past STARTED', 20_000);
    doomed.kill('SIGKILL');
    await doomed.exited;
    const progressAtKill = await Promise.all(ids.map((id) => redis.hget(taskKey(id), 'status')));
    assert.ok(progressAtKill.every((s) => s !== 'COMPLETED'), `killed mid-task: ${progressAtKill}`);

    const rescuer = await startWorkerProc(t, url, FAST_RECLAIM);
    for (const id of ids) assert.equal(await waitForEnd(redis, id), 'COMPLETED');
    for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
    await assertNothingPending(redis);
    const reclaimed = rescuer.logs.filter((l) => l.msg === 'reclaimed an idle command').length;
    assert.equal(reclaimed, 3, 'the rescuer reclaimed the three commands');
  });

  test('SIGSTOP a worker past CLAIM_IDLE_MS, then SIGCONT: it appends nothing and acks nothing', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayProc(t, url);
    const paused = await startWorkerProc(t, url, FAST_RECLAIM);
    const taskId = await startTask(gateway.url, { stage_ms: 2000 });
    const pausedPid = `-${paused.child.pid}-`;
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'lease'))?.includes(pausedPid), 'claimed by the first worker');
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

    assert.equal(await waitForEnd(redis, taskId), 'COMPLETED');
    await assertEventLog(redis, taskId, REFERENCE_STATUSES);
    await assertNothingPending(redis);
    const staleWrites = paused.logs.filter((l) => l.msg === 'event recorded' && l.taskId === taskId);
    assert.deepEqual(staleWrites, [], 'the paused worker recorded no event');
    // Its log line may trail the write that waitForEnd saw.
    await owner.waitForLog((l) => l.msg === 'event recorded' && l.taskId === taskId && l.status === 'COMPLETED', 'the owner recorded COMPLETED');
  });
});
