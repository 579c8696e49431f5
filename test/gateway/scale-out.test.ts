import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';
import { sseUrl, watchSse } from '../helpers/sse-client.js';
import { eventIds } from '../helpers/task-log.js';

test('two gateways and two workers on one Redis: a client that switches gateway mid-task resumes exactly', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateways = [await startGatewayInProcess(t, url), await startGatewayInProcess(t, url)] as const;
  // One task at a time each, so that both workers must take part.
  const workers = [
    await startWorkerInProcess(t, url, { WORKER_CONCURRENCY: '1' }),
    await startWorkerInProcess(t, url, { WORKER_CONCURRENCY: '1' }),
  ];

  const runs = [];
  for (let i = 0; i < 4; i++) {
    const [from, to] = i % 2 === 0 ? gateways : [gateways[1], gateways[0]];
    runs.push(
      (async () => {
        const taskId = await startTask(from.url, { stage_ms: 250 });
        const first = await watchTask(wsUrl(from.url, taskId), { take: 2 + (i % 2) });
        const rest = i < 2
          ? (await watchTask(wsUrl(to.url, taskId, first.events.at(-1)!.id))).events.map((e) => e.id)
          : (await watchSse(sseUrl(to.url, taskId), { lastEventId: first.events.at(-1)!.id })).ids;
        return { taskId, ids: [...first.events.map((e) => e.id), ...rest] };
      })(),
    );
  }
  for (const { taskId, ids } of await Promise.all(runs)) {
    const all = await eventIds(redis, taskId);
    assert.equal(all.length, 5);
    assert.deepEqual(ids, all, taskId);
  }
  for (const [i, w] of workers.entries()) {
    assert.ok(w.logs.some((l) => l.msg === 'event recorded'), `worker ${i} ran tasks`);
  }
});
