import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEAD_LETTER_STREAM, eventsKey, taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { startWorkerProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { REFERENCE_STATUSES, assertEventLog, assertNothingPending, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

async function deadLetters(redis: Redis): Promise<{ reason: string; taskId: string }[]> {
  return (await redis.xrange(DEAD_LETTER_STREAM, '-', '+')).map(([, f]) => {
    const o: Record<string, string> = {};
    for (let i = 0; i < f.length; i += 2) o[f[i]!] = f[i + 1]!;
    return { reason: o.reason!, taskId: (JSON.parse(o.command!) as Record<string, string>).task_id! };
  });
}

const pendingCount = async (redis: Redis) => ((await redis.xpending('tasks:commands', 'workers')) as [number])[0];

/** Waits until a task's hash says `status` (the run is under way). */
const waitForStatus = (redis: Redis, taskId: string, status: string) =>
  waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === status, `task ${taskId} to be ${status}`);

/**
 * Each corrupted task is dead-lettered once, at its first delivery (no redelivery, no
 * MAX_DELIVERIES round), its command acked, and the worker goes on with other tasks.
 */
async function assertRetiredOnce(redis: Redis, worker: { logs: Record<string, unknown>[] }, expected: Record<string, RegExp>): Promise<void> {
  const ids = Object.keys(expected);
  await waitFor(async () => (await deadLetters(redis)).length >= ids.length && (await pendingCount(redis)) === 0,
    'every corrupted task dead-lettered and acked', 60_000);
  const store = new TaskStore(redis);
  const healthy = (await store.start('reference', { stage_ms: 0 })).state.task_id;
  assert.equal(await waitForEnd(redis, healthy), 'COMPLETED', 'the worker goes on with other tasks');
  await assertEventLog(redis, healthy, REFERENCE_STATUSES);

  const dead = await deadLetters(redis);
  assert.deepEqual(dead.map((d) => d.taskId).sort(), [...ids].sort(), 'one dead letter per corrupted task');
  for (const d of dead) assert.match(d.reason, expected[d.taskId]!);
  await assertNothingPending(redis);
  // The log line may trail the script's reply.
  const logged = () => worker.logs.filter((l) => l.msg === 'poison command dead-lettered').length;
  await waitFor(() => logged() >= ids.length, 'the dead-letter log lines');
  assert.equal(logged(), ids.length);
  assert.deepEqual(worker.logs.filter((l) => l.msg === 'command run failed; it stays pending'), [], 'no run was left pending');
  assert.deepEqual(worker.logs.filter((l) => l.msg === 'heartbeat failed'), [], 'the other runs kept their heartbeat');
}

describe('a task whose keys hold the wrong type is dead-lettered once, and the worker goes on', () => {
  test('events key replaced by a string while a worker runs the task', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const worker = await startWorkerProc(t, url, { CLAIM_IDLE_MS: '500' });
    const taskId = (await new TaskStore(redis).start('reference', { stage_ms: 1000 })).state.task_id;
    await waitForStatus(redis, taskId, 'STARTED');
    // SET replaces a key of any type in one step: the run never sees the key absent.
    await redis.set(eventsKey(taskId), 'not a stream');

    const key = eventsKey(taskId).replace(/[:-]/g, '\\$&');
    await assertRetiredOnce(redis, worker, {
      [taskId]: new RegExp(`^corrupted task data; the task cannot be ended FAILED: WRONGTYPE ${key} holds a string, not a stream$`),
    });
    assert.equal(await redis.get(eventsKey(taskId)), 'not a stream', 'bad data is left for the operator');
    assert.equal(await redis.hget(taskKey(taskId), 'status'), 'STARTED', 'no FAILED could be recorded');
  });

  test('state hash replaced by a string before the claim, by a list while running', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const store = new TaskStore(redis);
    const early = (await store.start('reference', { stage_ms: 0 })).state.task_id;
    await redis.set(taskKey(early), 'not a hash');

    const worker = await startWorkerProc(t, url, { CLAIM_IDLE_MS: '500' });
    const running = (await store.start('reference', { stage_ms: 1000 })).state.task_id;
    await waitForStatus(redis, running, 'STARTED');
    // In one transaction: a run that met the hash absent in between would end as a task deleted
    // under it (acked, not dead-lettered).
    await redis.multi().del(taskKey(running)).rpush(taskKey(running), 'not', 'a', 'hash').exec();

    await assertRetiredOnce(redis, worker, {
      [early]: /^corrupted task data; the task cannot be ended FAILED: WRONGTYPE task:\S+ holds a string, not a hash$/,
      [running]: /^corrupted task data; the task cannot be ended FAILED: WRONGTYPE task:\S+ holds a list, not a hash$/,
    });
    assert.equal((await redis.xrange(eventsKey(running), '-', '+')).length, 2, 'PENDING and STARTED; nothing written since');
  });
});
