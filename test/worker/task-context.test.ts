import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { z } from 'zod';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { ensureGroup } from '../../src/store/consumer-group.js';
import { COMMANDS_STREAM, WORKER_GROUP, taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { TaskWrites } from '../../src/store/task-writes.js';
import { TaskRegistry, defineTaskType, type TaskContext } from '../../src/tasks/registry.js';
import { TaskUsageError } from '../../src/worker/stops.js';
import { Worker } from '../../src/worker/worker.js';
import { item } from '../helpers/append.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { taskEvents, taskOutput, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

const config = loadConfig({
  CLAIM_IDLE_MS: '300', STAGE_MS: '0', SHUTDOWN_GRACE_MS: '2000', RETRY_BASE_MS: '10',
  RESULT_MAX_BYTES: '1000', OUTPUT_CHUNK_MAX_BYTES: '100',
});
const logger = createLogger('silent', 'test');
const none = z.strictObject({});

/** Starts a worker running only `run`, as task type `t`; returns the store to start tasks with. */
async function runner(t: TestContext, redis: Redis, run: (ctx: TaskContext<unknown>) => Promise<unknown>): Promise<TaskStore> {
  await ensureGroup(redis);
  const registry = new TaskRegistry().register(defineTaskType({ name: 't', params: none, run }));
  const worker = new Worker({ redis, logger, config, registry });
  await worker.start();
  t.after(() => worker.close());
  return new TaskStore(redis);
}

/** Each event as `type status progress [detail]`. */
const compact = (events: Awaited<ReturnType<typeof taskEvents>>) =>
  events.map((e) => {
    const detail = e.chunk ?? e.message ?? e.result ?? e.error;
    return `${e.type} ${e.status} ${e.progress}${detail === undefined ? '' : ` ${JSON.stringify(detail)}`}`;
  });

test('progress messages, text and record output and the result are recorded in call order', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = await runner(t, redis, async (ctx) => {
    await ctx.stage('STARTED', 10);
    await ctx.progress(20, 'rows 2 of 10');
    await ctx.output('line one\n');
    await ctx.output({ row: 1, ok: true });
    await ctx.progress(30);
    await ctx.stage('PROCESSING', 50);
    await ctx.progress(60, 'almost');
    await ctx.output('tail');
    return { rows: 10, names: ['a', 'b'] };
  });
  const { state } = await store.start('t', {});
  assert.equal(await waitForEnd(redis, state.task_id), 'COMPLETED');
  const events = await taskEvents(redis, state.task_id);
  assert.deepEqual(compact(events), [
    'stage PENDING 0',
    'stage STARTED 10',
    'progress STARTED 20 "rows 2 of 10"',
    'output STARTED 20 "line one\\n"',
    'output STARTED 20 {"row":1,"ok":true}',
    'progress STARTED 30',
    'stage PROCESSING 50',
    'progress PROCESSING 60 "almost"',
    'output PROCESSING 60 "tail"',
    'stage COMPLETED 100 {"rows":10,"names":["a","b"]}',
  ]);
  const output = await taskOutput(redis, state.task_id);
  assert.equal(output.text, 'line one\n{"row":1,"ok":true}\ntail');
  const final = await store.get(state.task_id);
  assert.deepEqual(final?.result, { rows: 10, names: ['a', 'b'] });
  assert.equal(final?.message, undefined, 'the terminal stage clears the message');
});

test('a handler may take its context apart: stage, progress, output and sleep work unbound, and logger is bound to the task', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  let bindings: Record<string, unknown> | undefined;
  const store = await runner(t, redis, async (ctx) => {
    const { stage, progress, output, sleep, logger: log } = ctx;
    bindings = log.bindings();
    await stage('STARTED', 10);
    await sleep(1);
    await progress(20, 'half');
    await output('x');
  });
  const { state } = await store.start('t', {});
  assert.equal(await waitForEnd(redis, state.task_id), 'COMPLETED');
  assert.deepEqual(compact(await taskEvents(redis, state.task_id)), [
    'stage PENDING 0',
    'stage STARTED 10',
    'progress STARTED 20 "half"',
    'output STARTED 20 "x"',
    'stage COMPLETED 100',
  ]);
  assert.equal(bindings?.taskId, state.task_id);
});

test('the hash keeps the latest progress message of the current stage', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const store = await runner(t, redis, async (ctx) => {
    await ctx.stage('STARTED', 10);
    await ctx.progress(40, '4 of 10');
    await held;
  });
  const { state } = await store.start('t', {});
  const running = await waitFor(async () => {
    const s = await store.get(state.task_id);
    return s?.message === undefined ? undefined : s;
  }, 'the progress message in the hash');
  assert.equal(running?.message, '4 of 10');
  assert.equal(running?.progress, 40);
  assert.equal(running?.status, 'STARTED');
  release();
  assert.equal(await waitForEnd(redis, state.task_id), 'COMPLETED');
});

test('misuse throws a TaskUsageError at once and records nothing', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  let saved: TaskContext<unknown> | undefined;
  const store = await runner(t, redis, async (ctx) => {
    saved = ctx;
    const codes: string[] = [];
    const attempt = (call: () => unknown) => {
      try {
        call();
        codes.push('none');
      } catch (err) {
        codes.push(err instanceof TaskUsageError ? err.code : `other: ${String(err)}`);
      }
    };
    attempt(() => ctx.progress(150));
    attempt(() => ctx.progress(-5));
    attempt(() => ctx.progress(Number.NaN));
    attempt(() => ctx.progress('50' as unknown as number));
    attempt(() => ctx.progress(50, 'x'.repeat(1025)));
    attempt(() => ctx.output(undefined as never));
    attempt(() => ctx.output({ a: undefined } as never));
    attempt(() => ctx.output([1, Number.POSITIVE_INFINITY]));
    attempt(() => ctx.output(new Map() as never));
    attempt(() => ctx.output('x'.repeat(101)));
    attempt(() => ctx.output({ text: 'y'.repeat(100) }));
    attempt(() => ctx.stage('COMPLETED', 100));
    attempt(() => ctx.stage('RETRYING', 10));
    attempt(() => ctx.stage('', 10));
    attempt(() => ctx.stage('OK', 101));
    attempt(() => ctx.stage('OK', 10, 'work' as never));
    // What JSON would drop or change, and text that UTF-8 cannot hold.
    const extra = Object.assign([1, 2], { note: 'x' });
    attempt(() => ctx.output([1, , 3] as never));
    attempt(() => ctx.output(extra));
    attempt(() => ctx.output({ a: 1, [Symbol('s')]: 2 } as never));
    attempt(() => ctx.output({ toJSON() { throw null; } } as never));
    attempt(() => ctx.output({ get x() { throw new Error('getter'); } } as never));
    attempt(() => ctx.output('a\ud800b'));
    attempt(() => ctx.progress(50, 'lone \udc00'));
    attempt(() => ctx.sleep(Number.NaN));
    attempt(() => ctx.sleep(Number.POSITIVE_INFINITY));
    attempt(() => ctx.sleep('5' as never));
    const first = ctx.stage('A', 10, async () => {
      // A stage started from inside another's work is an overlap too, from its first line on.
      attempt(() => ctx.stage('INNER', 15));
      await ctx.sleep(50);
    });
    attempt(() => ctx.stage('B', 20));
    await first;
    return codes;
  });
  const { state } = await store.start('t', {});
  assert.equal(await waitForEnd(redis, state.task_id), 'COMPLETED');
  assert.deepEqual((await store.get(state.task_id))?.result, [
    'INVALID_PROGRESS', 'INVALID_PROGRESS', 'INVALID_PROGRESS', 'INVALID_PROGRESS', 'INVALID_MESSAGE',
    'INVALID_CHUNK', 'INVALID_CHUNK', 'INVALID_CHUNK', 'INVALID_CHUNK', 'CHUNK_TOO_LARGE', 'CHUNK_TOO_LARGE',
    'INVALID_STATUS', 'INVALID_STATUS', 'INVALID_STATUS', 'INVALID_PROGRESS', 'INVALID_WORK',
    'INVALID_CHUNK', 'INVALID_CHUNK', 'INVALID_CHUNK', 'INVALID_CHUNK', 'INVALID_CHUNK', 'INVALID_CHUNK', 'INVALID_MESSAGE',
    'INVALID_SLEEP', 'INVALID_SLEEP', 'INVALID_SLEEP',
    'STAGE_OVERLAP', 'STAGE_OVERLAP',
  ]);
  assert.deepEqual(compact(await taskEvents(redis, state.task_id)).slice(0, -1), ['stage PENDING 0', 'stage A 10']);
  assert.throws(() => saved!.output('late'), (err: unknown) => err instanceof TaskUsageError && err.code === 'RUN_ENDED');
});

test('calls made without awaiting, and with Promise.all, are recorded in call order before COMPLETED', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = await runner(t, redis, async (ctx) => {
    for (let i = 0; i < 300; i++) void ctx.output(`${i},`);
    await Promise.all([ctx.output('x'), ctx.progress(50, 'half'), ctx.output('y')]);
    for (let i = 300; i < 600; i++) void ctx.output(`${i},`);
    return 'done';
  });
  const { state } = await store.start('t', {});
  assert.equal(await waitForEnd(redis, state.task_id), 'COMPLETED');
  const events = await taskEvents(redis, state.task_id);
  const numbers = Array.from({ length: 600 }, (_, i) => `${i},`);
  assert.deepEqual(
    events.slice(1).map((e) => (e.type === 'output' ? e.chunk : `${e.type}:${e.status}`)),
    [...numbers.slice(0, 300), 'x', 'progress:PENDING', 'y', ...numbers.slice(300), 'stage:COMPLETED'],
  );
});

test('a result that is too large or not JSON ends the task FAILED at once, with the reason', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const results: unknown[] = [
    'z'.repeat(2000), { when: 1n }, { self: null as unknown }, [1, , 3], { toJSON() { throw null; } }, { get rows() { throw undefined; } },
  ];
  (results[2] as { self: unknown }).self = results[2];
  let next = 0;
  const store = await runner(t, redis, async (ctx) => {
    await ctx.output('kept');
    return results[next++];
  });
  const errors: string[] = [];
  for (let i = 0; i < results.length; i++) {
    const { state } = await store.start('t', {});
    assert.equal(await waitForEnd(redis, state.task_id), 'FAILED');
    const events = compact(await taskEvents(redis, state.task_id));
    assert.equal(events.length, 3, 'no retry: PENDING, the output, FAILED');
    errors.push((await store.get(state.task_id))!.error!);
  }
  assert.deepEqual(errors, [
    "the handler's result is 2002 bytes, over RESULT_MAX_BYTES (1000)",
    "the handler's result is not JSON: $.when is a bigint, which JSON cannot hold",
    "the handler's result is not JSON: $.self refers back to itself (a cycle)",
    "the handler's result is not JSON: $ has a hole at [1], which JSON writes as null",
    "the handler's result is not JSON: $.toJSON() threw null",
    "the handler's result is not JSON: $.rows threw undefined",
  ]);
});

test('a record of null, 0 or false is one line of JSON in the output, like any other record', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = await runner(t, redis, async (ctx) => {
    await ctx.output(null);
    await ctx.output(0);
    await ctx.output(false);
    await ctx.output('');
  });
  const { state } = await store.start('t', {});
  assert.equal(await waitForEnd(redis, state.task_id), 'COMPLETED');
  const chunks = (await taskEvents(redis, state.task_id)).filter((e) => e.type === 'output').map((e) => e.chunk);
  assert.deepEqual(chunks, [null, 0, false, '']);
  assert.equal((await taskOutput(redis, state.task_id)).text, 'null\n0\nfalse\n');
});

test('a stage the handler does not await: its failure reaches no one but never crashes the worker; one still running when the handler returns fails the attempt', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  let runs = 0;
  const store = await runner(t, redis, async (ctx) => {
    runs += 1;
    void ctx.stage('A', 20, async () => {
      await ctx.sleep(20);
      throw new Error('stage work failed');
    });
    if (runs > 1) return 'returned while A ran';
    await ctx.sleep(300);
    await ctx.stage('B', 50);
    return 'went on';
  });
  const first = (await store.start('t', {})).state.task_id;
  assert.equal(await waitForEnd(redis, first), 'COMPLETED');
  assert.deepEqual(compact(await taskEvents(redis, first)), ['stage PENDING 0', 'stage B 50', 'stage COMPLETED 100 "went on"']);

  const second = (await store.start('t', {})).state.task_id;
  assert.equal(await waitForEnd(redis, second), 'FAILED');
  const retries = Array.from({ length: config.MAX_ATTEMPTS - 1 }, () => 'stage RETRYING 0 "stage work failed"');
  assert.deepEqual(compact(await taskEvents(redis, second)), ['stage PENDING 0', ...retries, 'stage FAILED 0 "stage work failed"']);
});

test('whatever a handler throws is retried and recorded as text, never left pending', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const thrown = [
    Object.create(null),
    Object.assign(new Error('x'), { message: 42 }),
    Object.defineProperty(new Error('x'), 'message', { get() { throw new Error('no message'); } }),
  ];
  const store = await runner(t, redis, async (ctx) => {
    throw thrown[ctx.attempt - 1];
  });
  const { state } = await store.start('t', {});
  assert.equal(await waitForEnd(redis, state.task_id), 'FAILED');
  assert.deepEqual(compact(await taskEvents(redis, state.task_id)), [
    'stage PENDING 0', 'stage RETRYING 0 "[object Object]"', 'stage RETRYING 0 "42"', 'stage FAILED 0 "[object Error]"',
  ]);
});

test('a retried attempt\'s output is discarded by RETRYING; the next attempt\'s counts', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = await runner(t, redis, async (ctx) => {
    await ctx.stage('STARTED', 10, async () => void (await ctx.output('in stage one\n')));
    await ctx.output(`attempt ${ctx.attempt} says hi\n`);
    if (ctx.attempt === 1) throw new Error('half way');
    await ctx.output('and finishes\n');
  });
  const { state } = await store.start('t', {});
  assert.equal(await waitForEnd(redis, state.task_id), 'COMPLETED');
  const events = await taskEvents(redis, state.task_id);
  assert.deepEqual(compact(events), [
    'stage PENDING 0',
    'output PENDING 0 "in stage one\\n"',
    'stage STARTED 10',
    'output STARTED 10 "attempt 1 says hi\\n"',
    'stage RETRYING 10 "half way"',
    'output RETRYING 10 "attempt 2 says hi\\n"',
    'output RETRYING 10 "and finishes\\n"',
    'stage COMPLETED 100',
  ]);
  const output = await taskOutput(redis, state.task_id);
  assert.equal(output.text, 'in stage one\nattempt 2 says hi\nand finishes\n');
});

test('a run that takes over records restart; stages and their output recorded before are not repeated', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  await ensureGroup(redis);
  const { state, commandId } = await new TaskStore(redis).start('t', {});
  const id = state.task_id;
  // A run that recorded stage A with its output, then output between stages, then died.
  await redis.xreadgroup('GROUP', WORKER_GROUP, 'dead', 'COUNT', 1, 'STREAMS', COMMANDS_STREAM, '>');
  const dead = new TaskWrites(redis, { consumer: 'dead', ttlS: 60, maxDeliveries: 5 });
  assert.equal((await dead.claim({ taskId: id, lease: 'dead-lease', commandId }))[0], 'OK');
  for (const e of [
    { text: 'in A\n' },
    { status: 'A', progress: 25, step: 1 },
    { text: 'between\n' },
  ]) {
    assert.equal((await dead.append(item(id, 'dead-lease', e)))[0], 'OK');
  }

  await runner(t, redis, async (ctx) => {
    await ctx.stage('A', 25, async () => void (await ctx.output('in A\n')));
    await ctx.output('between\n');
    await ctx.stage('B', 50);
    await ctx.output('after\n');
  });
  assert.equal(await waitForEnd(redis, id), 'COMPLETED');
  const events = await taskEvents(redis, id);
  assert.deepEqual(compact(events), [
    'stage PENDING 0',
    'output PENDING 0 "in A\\n"',
    'stage A 25',
    'output A 25 "between\\n"',
    'restart A 25',
    'output A 25 "between\\n"',
    'stage B 50',
    'output B 50 "after\\n"',
    'stage COMPLETED 100',
  ]);
  const output = await taskOutput(redis, id);
  assert.equal(output.text, 'in A\nbetween\nafter\n');
  assert.equal(await redis.hget(taskKey(id), 'status'), 'COMPLETED');
});
