import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeRedis, type Redis } from '../../src/store/redis.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayProc, startWorkerProc } from '../helpers/processes.js';
import { connectRedis } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { REFERENCE_STATUSES, assertEventLog, assertNothingPending, waitForEnd } from '../helpers/task-log.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

test('kill -9 of Redis under load, restart with AOF: every accepted task completes exactly once', async (t) => {
  const server = await startRedisServer({ appendonly: true, fsyncAlways: true });
  t.after(() => server.close());
  const gateway = await startGatewayProc(t, server.url);
  const workers = [await startWorkerProc(t, server.url), await startWorkerProc(t, server.url)];

  const accepted: string[] = [];
  for (let i = 0; i < 12; i++) accepted.push(await startTask(gateway.url, { stage_ms: 150 }));
  await server.kill('SIGKILL');

  // While Redis is down: starts fail fast with 503, probes say not ready, liveness holds.
  const refused = await withTimeout(request(`${gateway.url}/tasks`, { body: { stage_ms: 0 } }), 'a prompt 503', 5000);
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error.code, 'REDIS_UNAVAILABLE');
  for (const base of [gateway.url, ...workers.map((w) => w.healthUrl)]) {
    await waitFor(async () => (await request(`${base}/readyz`)).status === 503, `${base}/readyz 503`);
    assert.equal((await request(`${base}/livez`)).status, 200);
  }

  await server.restart();
  let redis: Redis | undefined;
  t.after(() => (redis ? closeRedis(redis) : undefined));
  redis = await connectRedis(server.url);
  for (const base of [gateway.url, ...workers.map((w) => w.healthUrl)]) {
    await waitFor(async () => (await request(`${base}/readyz`)).status === 200, `${base}/readyz 200`, 20_000);
  }
  // Starts and live watches work again through the same processes (readers reconnected).
  const afterRestart = await startTask(gateway.url, { stage_ms: 100 });
  const watched = await watchTask(wsUrl(gateway.url, afterRestart));
  assert.deepEqual(watched.events.map((e) => e.status), REFERENCE_STATUSES);
  for (const id of [...accepted, afterRestart]) {
    assert.equal(await waitForEnd(redis, id, 60_000), 'COMPLETED');
    await assertEventLog(redis, id, REFERENCE_STATUSES);
  }
  await assertNothingPending(redis);
});
