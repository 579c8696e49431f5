import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandQueue, type CommandEntry } from '../../src/store/command-queue.js';
import { PRIORITIES, WORKER_GROUP, commandsStream, slotKeys, taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { maintainSlots } from '../../src/store/slots.js';
import { TaskStore, type StartOptions } from '../../src/store/task-store.js';
import { TaskWrites } from '../../src/store/task-writes.js';
import { item } from '../helpers/append.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';

const TYPE = 'reference';
const keys = slotKeys(TYPE);

/** A store, a queue and writes of the consumer 'me'; `start` starts a task, `take` reads commands. */
async function setup(redis: Redis) {
  const queue = new CommandQueue(redis, 'me');
  await queue.ensureGroup();
  const store = new TaskStore(redis);
  const writes = new TaskWrites(redis, { consumer: 'me', ttlS: 60, maxDeliveries: 5 });
  const start = async (options: StartOptions = {}) => (await store.start(TYPE, {}, Date.now(), options)).state.task_id;
  const take = async (n: number): Promise<CommandEntry[]> => {
    const out: CommandEntry[] = [];
    for (const priority of PRIORITIES) {
      if (out.length < n) out.push(...(await queue.take(redis, queue.layout.partitions[0]!, priority, n - out.length)));
    }
    return out;
  };
  const claim = (c: CommandEntry, limit: number, keyLimit = 0) =>
    writes.claim({ taskId: c.taskId!, lease: `L-${c.id}`, commandId: c.id, slots: { type: TYPE, limit, keyLimit } });
  const end = (c: CommandEntry) =>
    writes.append(item(c.taskId!, `L-${c.id}`, { status: 'COMPLETED', progress: 100, terminal: true, commandId: c.id }));
  return { store, writes, start, take, claim, end };
}

const pending = async (redis: Redis, priority: 'high' | 'normal' | 'low') =>
  Number(((await redis.xpending(commandsStream(priority), WORKER_GROUP)) as [number])[0]);

test('over the limit a claim waits (command acked, in the waiting list); an end gives its slot to the oldest waiting task', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const { start, take, claim, end } = await setup(redis);
  const [a, b, c] = [await start(), await start({ priority: 'low' }), await start()];
  const [ca, cc] = await take(2);
  assert.deepEqual(await claim(ca!, 1), ['OK', '0', '1']);
  assert.deepEqual(await claim(cc!, 1), ['WAIT', 'concurrency']);
  const [cb] = await take(1);
  assert.equal(cb!.taskId, b);
  assert.deepEqual(await claim(cb!, 1), ['WAIT', 'concurrency']);
  assert.deepEqual(await redis.lrange(keys.waiting, 0, -1), [c, b]);
  assert.equal(await redis.hget(taskKey(c), 'waiting_for_slot'), 'concurrency');
  assert.equal((await pending(redis, 'normal')) + (await pending(redis, 'low')), 1, 'the waiting tasks\' commands are acked');
  assert.deepEqual(await redis.hgetall(keys.holders), { [a]: '' });

  await end(ca!);
  assert.deepEqual(await redis.hgetall(keys.holders), { [c]: '' }, 'the oldest waiting task holds the slot now');
  assert.deepEqual(await redis.lrange(keys.waiting, 0, -1), [b]);
  assert.equal(await redis.hget(taskKey(c), 'waiting_for_slot'), null);
  const [again] = await take(5);
  assert.equal(again!.taskId, c, 'its command is queued again');
  assert.deepEqual(await claim(again!, 1), ['OK', '0', '1']);
  assert.equal(await redis.hget(taskKey(c), 'command_id'), again!.id);

  await end(again!);
  const [last] = await take(5);
  assert.deepEqual([last!.taskId, last!.priority], [b, 'low'], 'a woken task goes back to its own priority\'s stream');
  assert.deepEqual(await claim(last!, 1), ['OK', '0', '1']);
  await end(last!);
  for (const key of Object.values(keys)) assert.equal(await redis.exists(key), 0, `${key} is empty`);
});

test('per key: one of a key at once, other keys beside it; the key travels with the command', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const { start, take, claim, end } = await setup(redis);
  await start({ concurrencyKey: 'k1' });
  await start({ concurrencyKey: 'k1' });
  await start({ concurrencyKey: 'k2' });
  const [c1, c2, c3] = await take(3);
  assert.equal(c1!.concurrencyKey, 'k1');
  assert.deepEqual(await claim(c1!, 0, 1), ['OK', '0', '1']);
  assert.deepEqual(await claim(c2!, 0, 1), ['WAIT', 'concurrency_key']);
  assert.deepEqual(await claim(c3!, 0, 1), ['OK', '0', '1']);
  assert.deepEqual(await redis.hgetall(keys.keyCounts), { k1: '1', k2: '1' });
  await end(c3!);
  assert.deepEqual(await redis.hgetall(keys.keyCounts), { k1: '1' }, 'k2\'s end wakes no k1 task');
  assert.equal(await redis.llen(keys.waiting), 1);
  await end(c1!);
  const [woken] = await take(5);
  assert.equal(woken!.taskId, c2!.taskId);
  assert.equal(woken!.concurrencyKey, 'k1');
});

test('a keyless task\'s end wakes a keyed task only within its own per-key limit', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const { start, take, claim, end } = await setup(redis);
  await start();
  await start();
  const keyed = [await start({ concurrencyKey: 'customer-42' }), await start({ concurrencyKey: 'customer-42' })];
  const [free1, free2, k1, k2] = await take(4);
  assert.deepEqual(await claim(free1!, 2, 0), ['OK', '0', '1']);
  assert.deepEqual(await claim(free2!, 2, 0), ['OK', '0', '1']);
  assert.deepEqual(await claim(k1!, 2, 1), ['WAIT', 'concurrency']);
  assert.deepEqual(await claim(k2!, 2, 1), ['WAIT', 'concurrency']);

  await end(free1!);
  await end(free2!);
  assert.deepEqual(await redis.hgetall(keys.keyCounts), { 'customer-42': '1' }, 'one of the key runs, though two type slots are free');
  assert.deepEqual(await redis.lrange(keys.waiting, 0, -1), [keyed[1]], 'the other waits for the key');
  assert.equal(await redis.hget(taskKey(keyed[1]!), 'waiting_for_slot'), 'concurrency');
  const [woken] = await take(5);
  assert.equal(woken!.taskId, keyed[0]);
  assert.deepEqual(await claim(woken!, 2, 1), ['OK', '0', '1']);
  await end(woken!);
  const [next] = await take(5);
  assert.equal(next!.taskId, keyed[1], 'the key\'s end wakes the next of the key');
});

test('a dead letter and a cancel free slots; maintenance frees a leaked one (task gone) and wakes the next', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const { store, writes, start, take, claim } = await setup(redis);
  const ids = [await start(), await start(), await start(), await start()];
  const cmds = await take(4);
  assert.deepEqual(await claim(cmds[0]!, 1), ['OK', '0', '1']);
  for (const c of cmds.slice(1)) assert.deepEqual(await claim(c, 1), ['WAIT', 'concurrency']);

  const [, outcome] = await writes.deadLetter(cmds[0]!, ids[0]!, true, 'test poison', { maxLen: 100, ttlS: 60 });
  assert.equal(outcome, 'FAILED');
  assert.deepEqual(Object.keys(await redis.hgetall(keys.holders)), [ids[1]], 'the dead letter freed the slot for the oldest');

  assert.equal((await store.cancel(ids[2]!)).outcome, 'cancelled', 'a waiting task is cancelled');
  assert.deepEqual(await redis.lrange(keys.waiting, 0, -1), [ids[3]]);
  assert.equal(await redis.hget(taskKey(ids[2]!), 'waiting_for_slot'), null, 'a cancelled task waits for nothing');

  await redis.del(taskKey(ids[1]!));
  assert.deepEqual(await maintainSlots(redis, TYPE, { limit: 1, keyLimit: 1 }), [ids[1]]);
  assert.deepEqual(Object.keys(await redis.hgetall(keys.holders)), [ids[3]], 'the leaked slot went to the next waiting task');
  assert.equal(await redis.llen(keys.waiting), 0);
  assert.deepEqual(await maintainSlots(redis, TYPE, { limit: 1, keyLimit: 1 }), [], 'a live holder keeps its slot');
});

test('maintenance wakes waiting tasks that fit after a limit was raised', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const { start, take, claim } = await setup(redis);
  for (let i = 0; i < 3; i++) await start();
  const cmds = await take(3);
  assert.deepEqual(await claim(cmds[0]!, 1), ['OK', '0', '1']);
  assert.deepEqual(await claim(cmds[1]!, 1), ['WAIT', 'concurrency']);
  assert.deepEqual(await claim(cmds[2]!, 1), ['WAIT', 'concurrency']);
  await maintainSlots(redis, TYPE, { limit: 2, keyLimit: 1 });
  assert.equal(await redis.hlen(keys.holders), 2);
  assert.deepEqual((await take(5)).map((c) => c.taskId), [cmds[1]!.taskId]);
});
