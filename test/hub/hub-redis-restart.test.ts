import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeRedis, type Redis } from '../../src/store/redis.js';
import { startTask } from '../helpers/http.js';
import { startGatewayProc, startWorkerProc } from '../helpers/processes.js';
import { connectRedis } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { REFERENCE_STATUSES, eventIds } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

/** Starts `count` reference tasks of `stageMs` stages, each watched over its own WebSocket; resolves once every watcher got STARTED. */
async function watchedTasks(gatewayUrl: string, count: number, stageMs: number) {
  const tasks: string[] = [];
  for (let i = 0; i < count; i++) tasks.push(await startTask(gatewayUrl, { stage_ms: stageMs }));
  let started = 0;
  const watches = tasks.map((id) =>
    watchTask(wsUrl(gatewayUrl, id), { timeoutMs: 60_000, onEvent: (e) => void (e.status === 'STARTED' && started++) }),
  );
  await waitFor(() => started === tasks.length, 'every task to be STARTED', 20_000);
  return { tasks, results: Promise.all(watches) };
}

test('watchers connected through a Redis restart get every event exactly once, in order, on the same socket', async (t) => {
  const server = await startRedisServer();
  t.after(() => server.close());
  const gateway = await startGatewayProc(t, server.url);
  await startWorkerProc(t, server.url);
  let redis: Redis | undefined = await connectRedis(server.url);
  t.after(() => (redis ? closeRedis(redis) : undefined));

  const { tasks, results: watched } = await watchedTasks(gateway.url, 4, 400);
  // A clean shutdown writes the AOF out, so nothing acknowledged is lost: the log after the
  // restart is what every watcher must have got.
  await closeRedis(redis);
  redis = undefined;
  const downAt = Date.now();
  await server.kill('SIGTERM');
  await server.restart();
  redis = await connectRedis(server.url);

  const results = await watched;
  for (const [i, id] of tasks.entries()) {
    assert.equal(results[i]!.code, 1000, `task ${i} closed normally`);
    assert.deepEqual(results[i]!.events.map((e) => e.status), REFERENCE_STATUSES, `task ${i}`);
    assert.deepEqual(results[i]!.events.map((e) => e.id), await eventIds(redis, id), `task ${i} ids`);
    assert.ok(Number(results[i]!.events.at(-1)!.id.split('-')[0]) > downAt, `task ${i} went on after the restart`);
  }
});

test('a Redis that hangs (SIGSTOP) under watched tasks: the gateway warns once that its hub read waits, logs the answer, and every watcher gets XRANGE exactly', async (t) => {
  const server = await startRedisServer();
  t.after(() => server.close());
  // A read is overdue 5 s after its BLOCK ran out: 5.5 s here.
  const gateway = await startGatewayProc(t, server.url, { HUB_BLOCK_MS: '500' });
  await startWorkerProc(t, server.url);
  const redis = await connectRedis(server.url);
  t.after(() => closeRedis(redis));

  const { tasks, results: watched } = await watchedTasks(gateway.url, 3, 300);
  server.process.kill('SIGSTOP');
  let warned: Record<string, unknown>;
  try {
    warned = await gateway.waitForLog((l) => l.msg === 'hub read is still waiting on Redis', 'the hub to warn of its unanswered read', 30_000);
  } finally {
    server.process.kill('SIGCONT');
  }
  assert.equal(warned.level, 40);
  assert.ok(Number(warned.waited_ms) >= 5500, JSON.stringify(warned));
  const answered = await gateway.waitForLog((l) => l.msg === "hub read got Redis's answer", 'the hub to log the answer', 30_000);
  assert.ok(Number(answered.waited_ms) >= Number(warned.waited_ms), JSON.stringify(answered));
  assert.equal(gateway.logs.filter((l) => l.msg === 'hub read is still waiting on Redis').length, 1, 'one warning for the hang');

  const results = await watched;
  for (const [i, id] of tasks.entries()) {
    assert.equal(results[i]!.code, 1000, `task ${i} closed normally`);
    assert.deepEqual(results[i]!.events.map((e) => e.status), REFERENCE_STATUSES, `task ${i}`);
    assert.deepEqual(results[i]!.events.map((e) => e.id), await eventIds(redis, id), `task ${i} ids`);
  }
});
