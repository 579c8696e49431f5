import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { clusterClient, startRedisCluster } from '../helpers/redis-cluster.js';
import { testScope } from '../helpers/scope.js';
import { eventIds, pendingCount, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchToEnd } from '../helpers/ws-client.js';

test('cluster failover: a master SIGKILLed while 50 watched tasks run; every task completes, every watcher gets exactly XRANGE, nothing stays pending', async (t) => {
  // Torn down in reverse: the services stop while the cluster still runs.
  const scope = testScope(t);
  const cluster = await startRedisCluster();
  scope.after(() => cluster.close());
  const redis = await clusterClient(scope, cluster);
  const gateway = await startGatewayInProcess(scope, cluster);
  const worker = await startWorkerInProcess(scope, cluster, { WORKER_CONCURRENCY: '64' });

  const ids = await Promise.all(Array.from({ length: 50 }, () => startTask(gateway.url, { stage_ms: 600 })));
  const watched = ids.map(async (taskId) => ({ taskId, seen: await watchToEnd(gateway.url, taskId) }));
  await waitFor(async () => (await Promise.all(ids.map((id) => eventIds(redis, id)))).every((e) => e.length >= 2), 'every task started');
  const [victim] = await cluster.masters();
  const victimPartitions = await cluster.partitionsOf(victim!);
  await cluster.killAndFailover(victim!);

  const hit = ids.filter((id) => victimPartitions.includes(CLUSTER_LAYOUT.of(id).index));
  assert.ok(hit.length > 0, 'some tasks lived on the killed master');
  for (const { taskId, seen } of await Promise.all(watched)) {
    assert.equal(await waitForEnd(redis, taskId, 60_000), 'COMPLETED', taskId);
    assert.deepEqual(seen, await eventIds(redis, taskId), `watcher of ${taskId} (partition ${CLUSTER_LAYOUT.of(taskId).index})`);
  }
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING 0 on every partition', 30_000);
  // The failover is an outage of the hub's reads on that master (CLUSTERDOWN, closed connections):
  // warned once per streak, without a stack, never an error.
  const failed = gateway.logs.filter((l) => l.msg === 'hub read failed; backing off');
  assert.deepEqual(failed.map((l) => [l.level, l.failures, typeof l.err]), failed.map(() => [40, 1, 'string']), JSON.stringify(failed.slice(0, 3)));
  // Likewise in the worker and in the hub's audits: no error, no stack for the outage.
  for (const [name, service] of [['gateway', gateway], ['worker', worker]] as const) {
    const loud = service.logs.filter((l) => Number(l.level) >= 40 && typeof l.err === 'object');
    assert.deepEqual(loud.map((l) => l.msg), [], `${name}: ${JSON.stringify(loud.slice(0, 2))}`);
  }
});
