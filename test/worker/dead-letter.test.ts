import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { v4 as uuidv4 } from 'uuid';
import { COMMANDS_STREAM, DEAD_LETTER_STREAM, taskKey } from '../../src/store/keys.js';
import { TaskStore } from '../../src/store/task-store.js';
import { startTask } from '../helpers/http.js';
import { inProcessTestTasksEnv, startGatewayInProcess } from '../helpers/in-process.js';
import { spawnEntry, startWorkerProc, stopProc, testTasksEnv, type Proc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { REFERENCE_STATUSES, assertEventLog, assertNothingPending, taskEvents, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

const TEST_TASKS = testTasksEnv();

async function deadLetters(redis: Awaited<ReturnType<typeof redisFor>>) {
  return (await redis.xrange(DEAD_LETTER_STREAM, '-', '+')).map(([, f]) => {
    const o: Record<string, string> = {};
    for (let i = 0; i < f.length; i += 2) o[f[i]!] = f[i + 1]!;
    return { commandId: o.command_id, reason: o.reason, command: JSON.parse(o.command!) as Record<string, string> };
  });
}

describe('poison commands go to tasks:dead once, their task ends FAILED', () => {
  test('malformed, unknown type, invalid params, unknown task: dead-lettered, acked, no loop', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const store = new TaskStore(redis);
    const noTaskId = await redis.xadd(COMMANDS_STREAM, '*', 'foo', 'bar', '__proto__', 'x', 'constructor', 'y');
    const unknownType = (await store.start('nope', {})).state.task_id;
    const badParams = (await store.start('reference', { stage_ms: 'slow' })).state.task_id;
    const ghost = uuidv4();
    const ghostCommand = await redis.xadd(COMMANDS_STREAM, '*', 'task_id', ghost, 'type', 'reference', 'params', '{}');

    const gateway = await startGatewayInProcess(t, url);
    const worker = await startWorkerProc(t, url, { CLAIM_IDLE_MS: '500' });
    assert.equal(await waitForEnd(redis, unknownType), 'FAILED');
    assert.equal(await waitForEnd(redis, badParams), 'FAILED');
    // A task started after the poison ones completes: the worker went on, not round in a loop.
    const healthy = await startTask(gateway.url, { stage_ms: 0 });
    assert.equal(await waitForEnd(redis, healthy), 'COMPLETED');
    await waitFor(async () => (await redis.xlen(DEAD_LETTER_STREAM)) === 4, 'four dead letters');
    const dead = await deadLetters(redis);
    const byReason = new Map<string | null | undefined, (typeof dead)[number]>(dead.map((d) => [d.commandId, d]));
    assert.equal(byReason.get(noTaskId)?.reason, 'malformed command: no task_id');
    // Every field as stored, those named like Object's own properties included.
    assert.deepEqual(byReason.get(noTaskId)?.command, JSON.parse('{"foo":"bar","__proto__":"x","constructor":"y"}'));
    assert.equal(byReason.get(ghostCommand)?.reason, 'task not found');
    assert.equal(dead.find((d) => d.command.task_id === unknownType)?.reason, 'unknown task type "nope"');
    assert.equal(
      dead.find((d) => d.command.task_id === badParams)?.reason,
      'invalid params: stage_ms: Invalid input: expected number, received string',
    );

    const failed = await assertEventLog(redis, unknownType, ['PENDING', 'FAILED']);
    assert.equal(failed[1]!.error, 'unknown task type "nope"');
    assert.equal(await redis.hget(taskKey(unknownType), 'error'), 'unknown task type "nope"');
    assert.ok((await redis.ttl(taskKey(unknownType))) > 0, 'the failed task expires');
    await assertEventLog(redis, badParams, ['PENDING', 'FAILED']);
    await assertEventLog(redis, healthy, REFERENCE_STATUSES);
    assert.equal(await redis.exists(taskKey(ghost)), 0, 'no task is invented for an unknown id');
    await assertNothingPending(redis);
    assert.equal(await redis.xlen(DEAD_LETTER_STREAM), 4);
    assert.equal(worker.logs.filter((l) => l.msg === 'poison command dead-lettered').length, 4, 'each handled once');
  });

  test('a command every worker dies on is dead-lettered after MAX_DELIVERIES deliveries', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayInProcess(t, url, inProcessTestTasksEnv());
    const taskId = await startTask(gateway.url, { type: 'crash' });
    const env = { ...TEST_TASKS, CLAIM_IDLE_MS: '500', MAX_DELIVERIES: '2' };
    const workers: Proc[] = [];
    // Each delivery kills its worker; a fresh one reclaims the command, until it is poison.
    while ((await redis.hget(taskKey(taskId), 'status')) !== 'FAILED') {
      assert.ok(workers.length < 4, 'dead-lettered by the third delivery');
      // Not startWorkerProc: a worker may die on the command before its first log line is out.
      const worker = spawnEntry('worker', { REDIS_URL: url, HEALTH_PORT: '0', ...env });
      t.after(() => stopProc(worker));
      workers.push(worker);
      const outcome = await waitFor(async () => {
        if ((await redis.hget(taskKey(taskId), 'status')) === 'FAILED') return 'ended';
        return worker.child.exitCode !== null || worker.child.signalCode !== null ? 'died' : undefined;
      }, 'the worker to die or the task to fail', 30_000);
      if (outcome === 'ended') break;
    }
    assert.equal(workers.length, 3, 'two workers died, the third dead-lettered it');
    assert.deepEqual(await Promise.all(workers.slice(0, 2).map((w) => w.exited)), ['SIGKILL', 'SIGKILL']);
    const reason = 'delivered 3 times, more than MAX_DELIVERIES (2)';
    // The second worker took the task over from the first (a restart event); the third found it poison.
    const events = await assertEventLog(redis, taskId, ['PENDING', 'FAILED']);
    assert.deepEqual((await taskEvents(redis, taskId)).map((e) => e.type), ['stage', 'restart', 'stage']);
    assert.equal(events[1]!.error, reason);
    const dead = await deadLetters(redis);
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.reason, reason);
    assert.equal(dead[0]!.command.task_id, taskId);
    await assertNothingPending(redis);
  });
});
