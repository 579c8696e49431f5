import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMANDS_STREAM, SCHEDULED_SET, WORKER_GROUP, commandsStream, eventsKey, taskKey } from '../../src/store/keys.js';
import { ensureGroup } from '../../src/store/consumer-group.js';
import { promoteDue } from '../../src/store/schedule.js';
import { TaskStore } from '../../src/store/task-store.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';

test('a scheduled start writes the task SCHEDULED with its due time, in the scheduled set, and no command', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis);
  const now = 1_700_000_000_000;
  const { state, commandId } = await store.start('reference', {}, now, { runAt: now + 5000, priority: 'low' });
  assert.equal(commandId, '');
  assert.equal(state.status, 'SCHEDULED');
  assert.equal(state.run_at, now + 5000);
  const hash = await redis.hgetall(taskKey(state.task_id));
  assert.equal(hash.status, 'SCHEDULED');
  assert.equal(hash.run_at, String(now + 5000));
  assert.equal(hash.priority, 'low');
  assert.equal(hash.queue, commandsStream('low'));
  assert.deepEqual(await redis.xrange(eventsKey(state.task_id), '-', '+'), [
    [state.last_event_id, ['type', 'stage', 'status', 'SCHEDULED', 'progress', '0', 'ts', String(now), 'run_at', String(now + 5000)]],
  ]);
  assert.equal(await redis.zscore(SCHEDULED_SET, state.task_id), String(now + 5000));
  for (const p of ['high', 'normal', 'low'] as const) assert.equal(await redis.exists(commandsStream(p)), 0);
  const got = await store.get(state.task_id);
  assert.equal(got?.status, 'SCHEDULED');
  assert.equal(got?.run_at, now + 5000);
  assert.equal((await store.events(state.task_id))[0]?.run_at, now + 5000);
});

test('promotion queues each due task once on its priority stream, even from many callers at once', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const others = await Promise.all(Array.from({ length: 4 }, () => redisFor(t, url)));
  await ensureGroup(redis);
  const store = new TaskStore(redis);
  const now = Date.now();
  const due = await Promise.all(Array.from({ length: 300 }, (_, i) =>
    store.start('reference', {}, now, { runAt: now - 10 + (i % 3), priority: (['high', 'normal', 'low'] as const)[i % 3] })));
  const later = await store.start('reference', {}, now, { runAt: now + 60_000 });

  const promoted = await Promise.all([redis, ...others].map((r) => promoteDue(r, now)));
  assert.equal(promoted.reduce((a, b) => a + b, 0), 300, 'each due task promoted once in all');
  assert.equal(await promoteDue(redis, now), 0, 'a re-run promotes nothing');

  assert.deepEqual(await redis.zrange(SCHEDULED_SET, '0', '-1'), [later.state.task_id]);
  const lens = await Promise.all((['high', 'normal', 'low'] as const).map((p) => redis.xlen(commandsStream(p))));
  assert.deepEqual(lens, [100, 100, 100]);
  for (const { state } of due.slice(0, 3)) {
    const hash = await redis.hgetall(taskKey(state.task_id));
    assert.equal(hash.status, 'PENDING');
    const events = await store.events(state.task_id);
    assert.deepEqual(events.map((e) => e.status), ['SCHEDULED', 'PENDING']);
    assert.equal(hash.last_event_id, events[1]!.id);
    const [entry] = await redis.xrange(hash.queue!, hash.command_id!, hash.command_id!);
    assert.deepEqual(entry![1], ['task_id', state.task_id, 'type', 'reference', 'params', '{}']);
  }
  assert.equal(((await redis.xpending(COMMANDS_STREAM, WORKER_GROUP)) as [number])[0], 0);
});

test('cancel of a scheduled task ends it CANCELLED and takes it out of the set; it is never promoted', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis);
  const now = Date.now();
  const { state } = await store.start('reference', {}, now, { runAt: now + 1000 });
  const outcome = await store.cancel(state.task_id, now + 1);
  assert.equal(outcome.outcome, 'cancelled');
  assert.equal(await redis.zcard(SCHEDULED_SET), 0);
  assert.equal(await promoteDue(redis, now + 5000), 0);
  assert.deepEqual((await store.events(state.task_id)).map((e) => e.status), ['SCHEDULED', 'CANCELLED']);
  assert.equal(await redis.exists(COMMANDS_STREAM), 0);
});

test('a task that left SCHEDULED without leaving the set is dropped from it, not promoted', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis);
  const now = Date.now();
  const { state } = await store.start('reference', {}, now, { runAt: now });
  await redis.del(taskKey(state.task_id));
  assert.equal(await promoteDue(redis, now + 1), 0);
  assert.equal(await redis.zcard(SCHEDULED_SET), 0);
  assert.equal(await redis.exists(COMMANDS_STREAM), 0);
});

test('a due task whose event stream holds another type stays scheduled and writes nothing; the others are promoted', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis);
  const now = 1_700_000_000_000;
  const bad = (await store.start('reference', {}, now, { runAt: now + 10 })).state.task_id;
  const good = (await store.start('reference', {}, now, { runAt: now + 20 })).state.task_id;
  await redis.set(eventsKey(bad), 'not a stream');
  assert.equal(await promoteDue(redis, now + 1000), 1);
  assert.equal(await redis.hget(taskKey(good), 'status'), 'PENDING');
  assert.equal(await redis.hget(taskKey(bad), 'status'), 'SCHEDULED');
  assert.equal(await redis.hget(taskKey(bad), 'command_id'), '', 'no command for it');
  const commands = await redis.xrange(COMMANDS_STREAM, '-', '+');
  assert.deepEqual(commands.map(([, f]) => f[f.indexOf('task_id') + 1]), [good]);
  assert.deepEqual(await redis.zrange(SCHEDULED_SET, '0', '-1'), [bad]);
});
