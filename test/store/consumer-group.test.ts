import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ensureGroup, pruneConsumers } from '../../src/store/consumer-group.js';
import { COMMANDS_STREAM, WORKER_GROUP } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

/** XINFO CONSUMERS as name -> { pending, idle }. */
async function consumers(redis: Redis): Promise<Map<string, { pending: number; idle: number }>> {
  const raw = (await redis.xinfo('CONSUMERS', COMMANDS_STREAM, WORKER_GROUP)) as (string | number)[][];
  const out = new Map<string, { pending: number; idle: number }>();
  for (const info of raw) {
    const f: Record<string, string | number> = {};
    for (let i = 0; i + 1 < info.length; i += 2) f[String(info[i])] = info[i + 1]!;
    out.set(String(f.name), { pending: Number(f.pending), idle: Number(f.idle) });
  }
  return out;
}

test('ensureGroup creates the group once; a second call is fine', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  await ensureGroup(redis);
  await ensureGroup(redis);
  const groups = (await redis.xinfo('GROUPS', COMMANDS_STREAM)) as unknown[];
  assert.equal(groups.length, 1);
});

test('pruneConsumers removes exactly the idle consumers that hold nothing, never the kept one', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  await ensureGroup(redis);
  await new TaskStore(redis).start('reference', {});
  for (const name of ['ghost', 'me']) await redis.xgroup('CREATECONSUMER', COMMANDS_STREAM, WORKER_GROUP, name);
  await redis.xreadgroup('GROUP', WORKER_GROUP, 'busy', 'COUNT', 1, 'STREAMS', COMMANDS_STREAM, '>');
  await waitFor(async () => [...(await consumers(redis)).values()].every((c) => c.idle > 1000), 'every consumer idle for 1 s', 5000);
  await redis.xgroup('CREATECONSUMER', COMMANDS_STREAM, WORKER_GROUP, 'fresh');

  assert.deepEqual(await pruneConsumers(redis, COMMANDS_STREAM, 1000, 'me'), ['ghost']);
  const left = await consumers(redis);
  assert.deepEqual([...left.keys()].sort(), ['busy', 'fresh', 'me']);
  assert.equal(left.get('busy')!.pending, 1, 'a consumer holding a command keeps it');
  assert.deepEqual(await pruneConsumers(redis, COMMANDS_STREAM, 1000, 'me'), []);
});
