import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { clusterClient, startRedisCluster } from '../helpers/redis-cluster.js';
import { eventIds, keysOfTask, pendingCount, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchToEnd } from '../helpers/ws-client.js';

test('cluster resharding: slots of partitions move to another master while 50 watched tasks run; every task completes, every watcher gets exactly XRANGE', async (t) => {
  const cluster = await startRedisCluster();
  t.after(() => cluster.close());
  const redis = await clusterClient(t, cluster);
  const gateway = await startGatewayInProcess(t, cluster);
  await startWorkerInProcess(t, cluster, { WORKER_CONCURRENCY: '64' });
  const [from, to] = await cluster.masters();
  const before = await cluster.partitionsOf(from!);

  const ids = await Promise.all(Array.from({ length: 50 }, () => startTask(gateway.url, { stage_ms: 5000 })));
  const watched = ids.map(async (taskId) => ({ taskId, seen: await watchToEnd(gateway.url, taskId) }));
  await waitFor(async () => (await Promise.all(ids.map((id) => eventIds(redis, id)))).every((e) => e.length >= 2), 'every task started');
  await cluster.moveSlots(from!, to!, 1200);
  const after = await cluster.partitionsOf(to!);
  assert.ok(before.some((p) => after.includes(p)), `a partition moved: ${JSON.stringify({ before, after })}`);
  const movedTasks = ids.filter((id) => after.includes(CLUSTER_LAYOUT.of(id).index) && before.includes(CLUSTER_LAYOUT.of(id).index));
  assert.ok(movedTasks.length > 0, 'some tasks lived in a moved partition');
  const running = await Promise.all(movedTasks.map((id) => redis.hget(keysOfTask(redis, id).state, 'status')));
  assert.ok(running.some((s) => s !== 'COMPLETED'), `the move ended while tasks of a moved partition still ran: ${running.join(' ')}`);

  for (const { taskId, seen } of await Promise.all(watched)) {
    assert.equal(await waitForEnd(redis, taskId, 60_000), 'COMPLETED', taskId);
    assert.deepEqual(seen, await eventIds(redis, taskId), `watcher of ${taskId} (partition ${CLUSTER_LAYOUT.of(taskId).index})`);
  }
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING 0 on every partition', 30_000);
  // Tasks started after the move land on its new owner too.
  const late = await startTask(gateway.url, { stage_ms: 10 });
  assert.equal(await waitForEnd(redis, late), 'COMPLETED');
});
