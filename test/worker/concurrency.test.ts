import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { ConfigError } from '../../src/config.js';
import { slotKeys } from '../../src/store/keys.js';
import { ConcurrencyLimits } from '../../src/tasks/concurrency.js';
import { TaskRegistry, defineTaskType } from '../../src/tasks/registry.js';
import { request } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { maxRunning, runInterval, slotKeysLeft } from '../helpers/running-sets.js';
import { testScope } from '../helpers/scope.js';
import { assertNothingPending, taskEvents, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURES = { TASK_MODULES: 'test/fixtures/test-tasks.ts' };
const run = async () => undefined;

test('limits: the type\'s own, TASK_CONCURRENCY over it, per key 1 unless the type says; none without either', () => {
  const registry = new TaskRegistry()
    .register(defineTaskType({ name: 'free', params: z.object({}), run }))
    .register(defineTaskType({ name: 'report', params: z.object({}), run, concurrency: 5, concurrencyPerKey: 2 }));
  const limits = new ConcurrencyLimits(registry, { free: 4 });
  assert.deepEqual(limits.of('free', undefined), { limit: 4, keyLimit: 0 });
  assert.deepEqual(limits.of('report', 'c1'), { limit: 5, keyLimit: 2 });
  assert.equal(new ConcurrencyLimits(registry, {}).of('free', undefined), undefined);
  assert.deepEqual(new ConcurrencyLimits(registry, {}).of('free', 'c1'), { limit: 0, keyLimit: 1 });
  assert.throws(() => new ConcurrencyLimits(registry, { nope: 1 }), (err: Error) => err instanceof ConfigError && /TASK_CONCURRENCY.*"nope"/.test(err.message));
  assert.throws(() => defineTaskType({ name: 'bad', params: z.object({}), run, concurrency: 0 }), /concurrency must be an integer of at least 1/);
  assert.throws(() => defineTaskType({ name: 'bad', params: z.object({}), run, concurrencyPerKey: 1.5 }), /concurrencyPerKey/);
});

test('a type\'s concurrency caps its running tasks across the worker; the others wait PENDING with waiting_for_slot and start oldest first', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const scope = testScope(t);
  const gw = await startGatewayInProcess(scope, url, FIXTURES);
  await startWorkerInProcess(scope, url, { ...FIXTURES, WORKER_CONCURRENCY: '10' });
  const ids: string[] = [];
  // Stages long enough that three run at once however slowly a loaded machine takes the starts.
  for (let i = 0; i < 8; i++) {
    const res = await request(`${gw.url}/tasks`, { body: { type: 'limited', params: { stage_ms: 1000 } } });
    assert.equal(res.status, 202);
    ids.push(res.body.task_id);
  }
  const waiting = await waitFor(async () => {
    const got = await request(`${gw.url}/tasks/${ids[7]}`);
    return got.body.waiting_for_slot ? got.body : null;
  }, 'the last task to wait for a slot');
  assert.equal(waiting.status, 'PENDING');
  assert.equal(waiting.waiting_for_slot, 'concurrency');
  for (const id of ids) assert.equal(await waitForEnd(redis, id), 'COMPLETED');

  assert.equal(await maxRunning(redis, ids), 3, 'the fixture type\'s concurrency (3), reached and never exceeded');
  const starts = await Promise.all(ids.map(async (id) => (await runInterval(redis, id))!.start));
  for (let i = 4; i < ids.length; i++) assert.ok(starts[i]! >= starts[i - 1]!, `task ${i} started after task ${i - 1} (FIFO)`);
  assert.equal((await request(`${gw.url}/tasks/${ids[7]}`)).body.waiting_for_slot, undefined);
  assert.deepEqual(await slotKeysLeft(redis, 'limited'), [], 'no slot leaks');
  await assertNothingPending(redis);
});

test('concurrency_key: one task per key at once (oldest first), other keys run beside it; a waiting task cancelled never runs', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const scope = testScope(t);
  const gw = await startGatewayInProcess(scope, url);
  await startWorkerInProcess(scope, url, { WORKER_CONCURRENCY: '10' });
  const start = async (key: string) => {
    const res = await request(`${gw.url}/tasks`, { body: { stage_ms: 150, concurrency_key: key } });
    assert.equal(res.status, 202);
    assert.equal(res.body.concurrency_key, key);
    return res.body.task_id as string;
  };
  const a = [await start('customer-a'), await start('customer-a'), await start('customer-a'), await start('customer-a')];
  const b = await start('customer-b');

  const waiting = await waitFor(async () => {
    const got = await request(`${gw.url}/tasks/${a[2]}`);
    return got.body.waiting_for_slot ? got.body : null;
  }, 'the third customer-a task to wait');
  assert.equal(waiting.waiting_for_slot, 'concurrency_key');
  const cancelled = await request(`${gw.url}/tasks/${a[2]}/cancel`, { method: 'POST' });
  assert.equal(cancelled.status, 202);
  assert.equal(cancelled.body.status, 'CANCELLED');

  for (const id of [a[0]!, a[1]!, a[3]!, b]) assert.equal(await waitForEnd(redis, id), 'COMPLETED');
  assert.deepEqual((await taskEvents(redis, a[2]!)).map((e) => e.status), ['PENDING', 'CANCELLED']);
  assert.equal(await maxRunning(redis, a), 1, 'customer-a tasks never overlap');
  const [a0, a1, a3, runB] = await Promise.all([a[0]!, a[1]!, a[3]!, b].map(async (id) => (await runInterval(redis, id))!));
  assert.ok(a0!.end <= a1!.start && a1!.end <= a3!.start, 'customer-a tasks ran oldest first');
  assert.ok(runB!.start < a0!.end, 'customer-b ran beside customer-a');
  assert.deepEqual(await slotKeysLeft(redis, 'reference'), [], 'no slot leaks');
  assert.equal(await redis.exists(slotKeys('reference').waiting), 0);
  await assertNothingPending(redis);
});
