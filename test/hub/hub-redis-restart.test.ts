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

test('watchers connected through a Redis restart get every event exactly once, in order, on the same socket', async (t) => {
  const server = await startRedisServer();
  t.after(() => server.close());
  const gateway = await startGatewayProc(t, server.url);
  await startWorkerProc(t, server.url);
  let redis: Redis | undefined = await connectRedis(server.url);
  t.after(() => (redis ? closeRedis(redis) : undefined));

  const tasks: string[] = [];
  for (let i = 0; i < 4; i++) tasks.push(await startTask(gateway.url, { stage_ms: 400 }));
  let started = 0;
  const watches = tasks.map((id) =>
    watchTask(wsUrl(gateway.url, id), { timeoutMs: 60_000, onEvent: (e) => void (e.status === 'STARTED' && started++) }),
  );
  await waitFor(() => started === tasks.length, 'every task to be STARTED', 20_000);
  // A clean shutdown writes the AOF out, so nothing acknowledged is lost: the log after the
  // restart is what every watcher must have got.
  await closeRedis(redis);
  redis = undefined;
  const downAt = Date.now();
  await server.kill('SIGTERM');
  await server.restart();
  redis = await connectRedis(server.url);

  const results = await Promise.all(watches);
  for (const [i, id] of tasks.entries()) {
    assert.equal(results[i]!.code, 1000, `task ${i} closed normally`);
    assert.deepEqual(results[i]!.events.map((e) => e.status), REFERENCE_STATUSES, `task ${i}`);
    assert.deepEqual(results[i]!.events.map((e) => e.id), await eventIds(redis, id), `task ${i} ids`);
    assert.ok(Number(results[i]!.events.at(-1)!.id.split('-')[0]) > downAt, `task ${i} went on after the restart`);
  }
});
