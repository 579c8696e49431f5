import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { COMMANDS_STREAM, WORKER_GROUP, eventsKey, taskKey } from '../../src/store/keys.js';
import { ensureGroup } from '../../src/store/consumer-group.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

describe('retention', () => {
  test('trim-commands never removes a pending entry nor an undelivered one', async (t) => {
    const redis = await redisFor(t, await testRedisUrl());
    // Small stream nodes so that approximate trimming (whole nodes) has something to remove.
    await redis.config('SET', 'stream-node-max-entries', '4');
    await ensureGroup(redis);
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push((await redis.xadd(COMMANDS_STREAM, '*', 'n', String(i)))!);
    // Entries 0..39 delivered; all acked but 25; 40..59 never delivered.
    await redis.xreadgroup('GROUP', WORKER_GROUP, 'c1', 'COUNT', 40, 'STREAMS', COMMANDS_STREAM, '>');
    await redis.xack(COMMANDS_STREAM, WORKER_GROUP, ...ids.slice(0, 40).filter((_, i) => i !== 25));

    assert.equal(await redis.trimCommands(COMMANDS_STREAM, WORKER_GROUP, 100), 0, 'not above the bound: untouched');
    const removed = await redis.trimCommands(COMMANDS_STREAM, WORKER_GROUP, 10);
    assert.ok(removed > 0 && removed <= 25, `removed ${removed}`);
    const left = (await redis.xrange(COMMANDS_STREAM, '-', '+')).map(([id]) => id);
    assert.deepEqual(left, ids.slice(60 - left.length), 'only the oldest entries went');
    assert.ok(left.includes(ids[25]!), 'the pending entry stays');

    // Once it is acked, the bound is the last-delivered id: undelivered entries 40..59 stay.
    await redis.xack(COMMANDS_STREAM, WORKER_GROUP, ids[25]!);
    await redis.trimCommands(COMMANDS_STREAM, WORKER_GROUP, 10);
    const after = (await redis.xrange(COMMANDS_STREAM, '-', '+')).map(([id]) => id);
    assert.ok(after.length < left.length, 'trimmed further');
    assert.deepEqual(after, ids.slice(60 - after.length));
    assert.ok(after.length >= 21, 'entries 39 (last delivered) to 59 (undelivered) stay');
    // The group still delivers every undelivered entry.
    const reply = (await redis.xreadgroup('GROUP', WORKER_GROUP, 'c2', 'COUNT', 100, 'STREAMS', COMMANDS_STREAM, '>')) as [
      string,
      [string, string[]][],
    ][];
    assert.deepEqual(reply[0]![1].map(([id]) => id), ids.slice(40));
    await redis.config('SET', 'stream-node-max-entries', '100');
  });

  test('an expired task answers 404 over HTTP and closes 4404 over WebSocket (no tombstone)', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const env = { TASK_TTL_S: '1' };
    const gateway = await startGatewayInProcess(t, url, env);
    await startWorkerInProcess(t, url, env);
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    assert.equal(await waitForEnd(redis, taskId), 'COMPLETED');
    assert.ok((await redis.pttl(taskKey(taskId))) <= 1000);
    await waitFor(async () => (await redis.exists(taskKey(taskId), eventsKey(taskId))) === 0, 'keys expired', 10_000);
    const res = await request(`${gateway.url}/tasks/${taskId}`);
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'TASK_NOT_FOUND');
    assert.equal((await request(`${gateway.url}/tasks/${taskId}/events`)).status, 404);
    assert.equal((await request(`${gateway.url}/tasks/${taskId}/cancel`, { method: 'POST' })).status, 404);
    const watch = await watchTask(wsUrl(gateway.url, taskId));
    assert.equal(watch.code, 4404);
    assert.deepEqual(watch.events, []);
  });
});
