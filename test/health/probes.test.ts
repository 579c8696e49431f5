import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { HealthProbes } from '../../src/health/probes.js';
import { COMMANDS_STREAM, WORKER_GROUP, taskKey } from '../../src/store/keys.js';
import { closeRedis, createRedis, ensureConnected, type Redis } from '../../src/store/redis.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayProc, startWorkerProc, type ServiceProc, type WorkerProc } from '../helpers/processes.js';
import { connectRedis } from '../helpers/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait.js';
import { suiteScope } from '../helpers/scope.js';

describe('health probes on the gateway and on the worker health port', () => {
  let redisServer: RedisServer;
  let admin: Redis;
  let gateway: ServiceProc;
  let worker: WorkerProc;
  const scope = suiteScope();

  before(async () => {
    // A private server: these tests kill it.
    redisServer = await startRedisServer();
    scope.after(() => redisServer.close());
    admin = await connectRedis(redisServer.url);
    scope.after(() => closeRedis(admin));
    gateway = await startGatewayProc(scope, redisServer.url);
    worker = await startWorkerProc(scope, redisServer.url, { SHUTDOWN_GRACE_MS: '60000' });
  });

  test('livez, readyz and healthz answer 200 with their checks on both processes', async () => {
    for (const base of [gateway.url, worker.healthUrl]) {
      const live = await request(`${base}/livez`);
      assert.equal(live.status, 200);
      assert.deepEqual(live.body, { status: 'ok' });
      assert.equal(live.headers.get('cache-control'), 'no-store');
      for (const path of ['/readyz', '/healthz']) {
        const ready = await request(`${base}${path}`);
        assert.equal(ready.status, 200, `${base}${path}`);
        assert.deepEqual(ready.body, { status: 'ok', checks: { redis: 'ok', group: 'ok', draining: false, writes: 'ok' } });
      }
    }
    const head = await fetch(`${gateway.url}/readyz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal((await request(`${worker.healthUrl}/nope`)).status, 404);
    for (const base of [gateway.url, worker.healthUrl]) {
      const post = await request(`${base}/readyz`, { method: 'POST', body: {} });
      assert.equal(post.status, 405, base);
      assert.equal(post.headers.get('allow'), 'GET, HEAD', base);
      assert.equal(post.body.error.code, 'METHOD_NOT_ALLOWED', base);
    }
  });

  test('readyz is 503 while Redis is down and 200 again once it is back; livez stays 200', async () => {
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await redisServer.kill('SIGKILL');
    for (const base of [gateway.url, worker.healthUrl]) {
      const ready = await waitFor(async () => {
        const r = await request(`${base}/readyz`);
        return r.status === 503 ? r : undefined;
      }, `${base}/readyz 503`);
      assert.deepEqual(ready.body, { status: 'unavailable', checks: { redis: 'down', group: 'unknown', draining: false, writes: 'unknown' } });
      assert.equal((await request(`${base}/livez`)).status, 200);
    }
    await redisServer.restart();
    for (const base of [gateway.url, worker.healthUrl]) {
      await waitFor(async () => (await request(`${base}/readyz`)).status === 200, `${base}/readyz 200 again`, 20_000);
    }
    // The task started before the outage survived it (AOF) and was run.
    const state = await waitFor(async () => {
      const r = await request(`${gateway.url}/tasks/${taskId}`);
      return r.body.status === 'COMPLETED' ? r : undefined;
    }, 'task completed after the restart', 20_000);
    assert.equal(state.status, 200);
  });

  test('readyz is 503 with group "missing" when the consumer group is gone', async (t) => {
    // A probe object over the admin connection: the worker would recreate the group at once.
    const redis = createRedis(redisServer.url, { name: 'probe-test', offlineQueue: false });
    t.after(() => closeRedis(redis));
    await ensureConnected(redis);
    const probes = new HealthProbes({ redis });
    assert.equal((await probes.ready()).status, 200);
    await admin.rename(COMMANDS_STREAM, 'renamed-for-test');
    t.after(() => admin.rename('renamed-for-test', COMMANDS_STREAM).catch(() => undefined));
    assert.deepEqual(await probes.ready(), {
      status: 503,
      body: { status: 'unavailable', checks: { redis: 'ok', group: 'missing', draining: false, writes: 'ok' } },
    });
    await admin.rename('renamed-for-test', COMMANDS_STREAM);
    await admin.xgroup('DESTROY', COMMANDS_STREAM, WORKER_GROUP);
    assert.equal((await probes.ready()).body.checks?.group, 'missing');
    await admin.xgroup('CREATE', COMMANDS_STREAM, WORKER_GROUP, '0');
    assert.equal((await probes.ready()).status, 200);
    probes.drain();
    assert.deepEqual(await probes.ready(), {
      status: 503,
      body: { status: 'unavailable', checks: { redis: 'ok', group: 'ok', draining: true, writes: 'ok' } },
    });
  });

  test('a worker draining on SIGTERM answers readyz 503 (draining) until it exits', async () => {
    const taskId = await startTask(gateway.url, { stage_ms: 600_000 });
    // Claimed: the worker holds a lease and is inside the first stage's work.
    await waitFor(async () => ((await admin.hget(taskKey(taskId), 'lease')) ?? '') !== '', 'task claimed', 20_000);
    worker.kill('SIGTERM');
    const ready = await waitFor(async () => {
      const r = await request(`${worker.healthUrl}/readyz`);
      return r.status === 503 ? r : undefined;
    }, 'worker readyz 503 while draining');
    assert.deepEqual(ready.body, { status: 'unavailable', checks: { redis: 'ok', group: 'ok', draining: true, writes: 'ok' } });
    assert.equal((await request(`${worker.healthUrl}/livez`)).status, 200);
    worker.kill('SIGKILL');
    await worker.exited;
  });
});
