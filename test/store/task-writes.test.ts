import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ensureGroup } from '../../src/store/consumer-group.js';
import { COMMANDS_STREAM, WORKER_GROUP, eventsKey, taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { TaskWrites } from '../../src/store/task-writes.js';
import { item } from '../helpers/append.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';

/** Server-side script calls so far (EVALSHA, and EVAL when a script was not loaded yet). */
async function scriptCalls(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats');
  const calls = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
  return calls('evalsha') + calls('eval');
}

const GONE_TASK = '00000000-0000-4000-8000-000000000000';

/** Starts n tasks and reads their commands as `consumer`, as a worker would. */
async function readTasks(redis: Redis, n: number, consumer: string): Promise<{ taskId: string; commandId: string }[]> {
  await ensureGroup(redis);
  const store = new TaskStore(redis);
  const out = [];
  for (let i = 0; i < n; i++) {
    const { state, commandId } = await store.start('reference', { stage_ms: 0 });
    out.push({ taskId: state.task_id, commandId });
  }
  await redis.xreadgroup('GROUP', WORKER_GROUP, consumer, 'COUNT', n, 'STREAMS', COMMANDS_STREAM, '>');
  return out;
}

const writesFor = (redis: Redis, consumer: string, maxBatch?: number) =>
  new TaskWrites(redis, { consumer, ttlS: 60, maxDeliveries: 5, ...(maxBatch ? { maxBatch } : {}) });

test('claims made in one turn go in one script call, each decided on its own', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const [a, b] = await readTasks(redis, 2, 'me');
  const [other] = await readTasks(redis, 1, 'someone-else');
  const writes = writesFor(redis, 'me');
  assert.deepEqual(await writes.claim({ taskId: GONE_TASK, lease: 'L0', commandId: a!.commandId }), ['GONE']);
  const before = await scriptCalls(redis);
  const replies = await Promise.all([
    writes.claim({ taskId: a!.taskId, lease: 'La', commandId: a!.commandId }),
    writes.claim({ taskId: b!.taskId, lease: 'Lb', commandId: b!.commandId }),
    writes.claim({ taskId: other!.taskId, lease: 'Lx', commandId: other!.commandId }),
    writes.claim({ taskId: GONE_TASK, lease: 'Lg', commandId: a!.commandId }),
  ]);
  assert.equal((await scriptCalls(redis)) - before, 1, 'one script call for the four claims');
  assert.deepEqual(replies, [['OK', '0', '1'], ['OK', '0', '1'], ['LOST'], ['GONE']]);
  assert.equal(await redis.hget(taskKey(a!.taskId), 'lease'), 'La');
  assert.equal(await redis.hget(taskKey(b!.taskId), 'lease'), 'Lb');
  assert.equal(await redis.hget(taskKey(other!.taskId), 'lease'), '');
});

test('appends made in one turn go in one script call; each is fenced and deduplicated on its own', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const [a, b, c] = await readTasks(redis, 3, 'me');
  const writes = writesFor(redis, 'me');
  for (const [task, lease] of [[a!, 'La'], [b!, 'Lb'], [c!, 'Lc']] as const) {
    assert.equal((await writes.claim({ taskId: task.taskId, lease, commandId: task.commandId }))[0], 'OK');
  }
  assert.equal((await writes.append(item(b!.taskId, 'Lb', { step: 1, status: 'STARTED', progress: 25, ts: 1 })))[0], 'OK');
  const before = await scriptCalls(redis);
  const replies = await Promise.all([
    writes.append(item(a!.taskId, 'La', { step: 1, status: 'STARTED', progress: 25, ts: 2 })),
    writes.append(item(b!.taskId, 'Lb', { step: 1, status: 'STARTED', progress: 25, ts: 3 })),
    writes.append(item(c!.taskId, 'stale', { step: 1, status: 'STARTED', progress: 25, ts: 4 })),
    writes.append(item(GONE_TASK, 'Lg', { step: 1, status: 'STARTED', progress: 25, ts: 5 })),
    writes.append(item(a!.taskId, 'La', { status: 'COMPLETED', progress: 100, terminal: true, commandId: a!.commandId, ts: 6 })),
  ]);
  assert.equal((await scriptCalls(redis)) - before, 1, 'one script call for the five appends');

  const events = await redis.xrange(eventsKey(a!.taskId), '-', '+');
  assert.deepEqual(events.map(([, f]) => f.slice(0, 8)), [
    ['type', 'stage', 'status', 'PENDING', 'progress', '0', 'ts', events[0]![1][7]],
    ['type', 'stage', 'status', 'STARTED', 'progress', '25', 'ts', '2'],
    ['type', 'stage', 'status', 'COMPLETED', 'progress', '100', 'ts', '6'],
  ]);
  assert.deepEqual(replies, [['OK', events[1]![0]], ['OK', 'DUPLICATE'], ['FENCED'], ['GONE'], ['OK', events[2]![0]]]);
  assert.equal(await redis.xlen(eventsKey(c!.taskId)), 1, 'the fenced append recorded nothing');
  const hash = await redis.hgetall(taskKey(a!.taskId));
  assert.equal(hash.status, 'COMPLETED');
  assert.equal(hash.last_event_id, events[2]![0]);
  const pending = (await redis.xpending(COMMANDS_STREAM, WORKER_GROUP, '-', '+', 10)) as [string][];
  assert.deepEqual(pending.map(([id]) => id).sort(), [b!.commandId, c!.commandId].sort(), 'the terminal event acked its command');
  assert.ok((await redis.ttl(eventsKey(a!.taskId))) > 0, 'a terminal event sets the TTL');
});

test('a claim that takes a task over records restart, unless a cancel was requested: then only the new run\'s CANCELLED', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const [a, b] = await readTasks(redis, 2, 'me');
  const writes = writesFor(redis, 'me');
  for (const task of [a!, b!]) {
    assert.deepEqual(await writes.claim({ taskId: task.taskId, lease: 'first', commandId: task.commandId }), ['OK', '0', '1']);
    assert.equal((await writes.append(item(task.taskId, 'first', { text: 'tentative' })))[0], 'OK');
  }
  // Cancel requested while the first run was stalled (as cancel-task.lua records it).
  await redis.hset(taskKey(b!.taskId), 'cancel_requested', Date.now());

  assert.deepEqual(await writes.claim({ taskId: a!.taskId, lease: 'second', commandId: a!.commandId }), ['OK', '0', '1']);
  assert.deepEqual(await writes.claim({ taskId: b!.taskId, lease: 'second', commandId: b!.commandId }), ['CANCEL', '0', '1']);
  const types = async (taskId: string) => (await redis.xrange(eventsKey(taskId), '-', '+')).map(([, f]) => f[1]);
  assert.deepEqual(await types(a!.taskId), ['stage', 'output', 'restart']);
  assert.deepEqual(await types(b!.taskId), ['stage', 'output'], 'no restart after the cancel request');
  assert.deepEqual(await writes.append(item(b!.taskId, 'first', { status: 'CANCELLED', progress: '', terminal: true })), ['FENCED']);
  const [result] = await writes.append(item(b!.taskId, 'second', { status: 'CANCELLED', progress: '', terminal: true, commandId: b!.commandId }));
  assert.equal(result, 'OK');
  assert.deepEqual(await types(b!.taskId), ['stage', 'output', 'stage']);
  assert.equal(await redis.hget(taskKey(b!.taskId), 'status'), 'CANCELLED');
});

test('an item that hits a Redis error fails alone; the rest of its batch is recorded', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const [a, b] = await readTasks(redis, 2, 'me');
  // A key of the wrong type where b's event stream should be: its XADD fails inside the script.
  await redis.set(eventsKey(b!.taskId), 'not a stream');
  const writes = writesFor(redis, 'me');
  const [ra, rb] = await Promise.allSettled([
    writes.append(item(a!.taskId, 'La', { step: 1, status: 'STARTED', progress: 25, ts: 1 })),
    writes.append(item(b!.taskId, 'Lb', { step: 1, status: 'STARTED', progress: 25, ts: 1 })),
  ]);
  assert.equal(ra.status, 'fulfilled');
  assert.equal(ra.status === 'fulfilled' && ra.value[0], 'OK');
  assert.equal(rb.status, 'rejected');
  assert.match(String(rb.status === 'rejected' && rb.reason), /WRONGTYPE/);
  assert.equal(await redis.hget(taskKey(b!.taskId), 'status'), 'PENDING', 'nothing recorded for the failed item');
  assert.equal(await redis.xlen(eventsKey(a!.taskId)), 2);
});

test('a batch holds at most maxBatch items; the rest go in further calls', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const tasks = await readTasks(redis, 5, 'me');
  const writes = writesFor(redis, 'me', 2);
  assert.deepEqual(await writes.claim({ taskId: GONE_TASK, lease: 'L0', commandId: tasks[0]!.commandId }), ['GONE']);
  const before = await scriptCalls(redis);
  const replies = await Promise.all(tasks.map((x, i) => writes.claim({ taskId: x.taskId, lease: `L${i}`, commandId: x.commandId })));
  assert.equal((await scriptCalls(redis)) - before, 3, 'five claims in batches of at most two');
  assert.deepEqual(replies.map((r) => r[0]), ['OK', 'OK', 'OK', 'OK', 'OK']);
});

test('claims and appends of one turn go in the same batch: one call of each script', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const [a, b] = await readTasks(redis, 2, 'me');
  const writes = writesFor(redis, 'me');
  assert.equal((await writes.claim({ taskId: a!.taskId, lease: 'La', commandId: a!.commandId }))[0], 'OK');
  assert.equal((await writes.append(item(a!.taskId, 'La', { step: 1, status: 'STARTED', progress: 25, ts: 1 })))[0], 'OK');
  const before = await scriptCalls(redis);
  const [claimed, appended, again] = await Promise.all([
    writes.claim({ taskId: b!.taskId, lease: 'Lb', commandId: b!.commandId }),
    writes.append(item(a!.taskId, 'La', { step: 2, status: 'PROCESSING', progress: 50, ts: 2 })),
    writes.claim({ taskId: GONE_TASK, lease: 'Lg', commandId: b!.commandId }),
  ]);
  assert.equal((await scriptCalls(redis)) - before, 2);
  assert.deepEqual(claimed, ['OK', '0', '1']);
  assert.equal(appended[0], 'OK');
  assert.deepEqual(again, ['GONE']);
  assert.equal(await redis.hget(taskKey(a!.taskId), 'status'), 'PROCESSING');
  assert.equal(await redis.hget(taskKey(b!.taskId), 'lease'), 'Lb');
});

test('a resent item records nothing twice: its events are deduplicated by the run\'s sequence numbers', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const [a] = await readTasks(redis, 1, 'me');
  const writes = writesFor(redis, 'me');
  assert.equal((await writes.claim({ taskId: a!.taskId, lease: 'La', commandId: a!.commandId }))[0], 'OK');
  const resent = {
    taskId: a!.taskId, lease: 'La', commandId: a!.commandId, firstSeq: 1,
    events: [
      { kind: 'text' as const, ts: 1, value: 'one ' },
      { kind: 'progress' as const, ts: 2, percent: 40, message: 'half' },
      { kind: 'json' as const, ts: 3, value: '{"n":2}' },
    ],
  };
  const first = await writes.append(resent);
  assert.equal(first[0], 'OK');
  assert.equal(first.length, 4);
  assert.deepEqual(await writes.append(resent), ['OK', 'DUPLICATE', 'DUPLICATE', 'DUPLICATE']);
  // A resend that overlaps: its first two were recorded, its third is new.
  const next = await writes.append({ ...resent, firstSeq: 2, events: [resent.events[1]!, resent.events[2]!, { kind: 'text', ts: 4, value: 'two' }] });
  assert.deepEqual(next.slice(0, 3), ['OK', 'DUPLICATE', 'DUPLICATE']);
  const events = await redis.xrange(eventsKey(a!.taskId), '-', '+');
  assert.deepEqual(events.map(([, f]) => f.slice(0, 2).concat(f.slice(8))), [
    ['type', 'stage'],
    ['type', 'output', 'text', 'one '],
    ['type', 'progress', 'message', 'half'],
    ['type', 'output', 'json', '{"n":2}'],
    ['type', 'output', 'text', 'two'],
  ]);
  const hash = await redis.hgetall(taskKey(a!.taskId));
  assert.deepEqual([hash.seq, hash.progress, hash.message, hash.last_event_id], ['4', '40', 'half', events.at(-1)![0]]);
});
