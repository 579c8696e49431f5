import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { startTask } from '../helpers/http.js';
import { releaseHeld } from '../fixtures/test-tasks.js';
import { inProcessTestTasksEnv, startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { clusterClient, startRedisCluster } from '../helpers/redis-cluster.js';
import { eventIds, keysOfTask, pendingCount, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchToEnd } from '../helpers/ws-client.js';

test('cluster failover: a master SIGKILLed while 50 watched tasks run; every task completes, every watcher gets exactly XRANGE, nothing stays pending', async (t) => {
  const cluster = await startRedisCluster();
  t.after(() => cluster.close());
  const redis = await clusterClient(t, cluster);
  const gateway = await startGatewayInProcess(t, cluster);
  await startWorkerInProcess(t, cluster, { WORKER_CONCURRENCY: '64' });

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
});

test('cluster: a master frozen (SIGSTOP, as a paused VM) while 30 watched tasks write output: tasks on the other masters go on, its own go on once its replica took over, all complete before it is back, and it rejoins as a replica; every watcher gets exactly XRANGE', async (t) => {
  const cluster = await startRedisCluster();
  t.after(() => cluster.close());
  const redis = await clusterClient(t, cluster);
  // Short blocking reads, so the hub's readers look up their node often.
  const gateway = await startGatewayInProcess(t, cluster, { ...inProcessTestTasksEnv(), HUB_BLOCK_MS: '1000' });
  await startWorkerInProcess(t, cluster, { ...inProcessTestTasksEnv(), WORKER_CONCURRENCY: '64' });
  // The feed of all tasks keeps every partition's hub reader reading.
  const feed = new WebSocket(`${gateway.url.replace('http', 'ws')}/ws/feed`);
  t.after(() => feed.close());

  const ids = await Promise.all(Array.from({ length: 30 }, () => startTask(gateway.url, { type: 'held', params: { line_ms: 100 } })));
  const watched = ids.map(async (taskId) => ({ taskId, seen: await watchToEnd(gateway.url, taskId, { timeoutMs: 100_000 }) }));
  const lengths = (of: string[]) => Promise.all(of.map((id) => redis.xlen(keysOfTask(redis, id).events)));
  const grow = async (of: string[], what: string) => {
    const from = await lengths(of);
    await waitFor(async () => (await lengths(of)).every((n, i) => n >= from[i]! + 3), what, 30_000);
  };
  await waitFor(async () => (await lengths(ids)).every((n) => n >= 4), 'every task writing output', 60_000);
  const [victim] = await cluster.masters();
  const frozen = await cluster.partitionsOf(victim!);
  const onVictim = ids.filter((id) => frozen.includes(CLUSTER_LAYOUT.of(id).index));
  const elsewhere = ids.filter((id) => !onVictim.includes(id));
  assert.ok(onVictim.length > 0 && elsewhere.length > 0, `tasks on the frozen master (${onVictim.length}) and elsewhere (${elsewhere.length})`);

  await cluster.freezeAndFailover(victim!);
  await grow(elsewhere, 'the tasks on the other masters writing on while it is frozen');
  await grow(onVictim, 'the frozen master\'s tasks writing on, on its promoted replica');
  releaseHeld();
  for (const id of ids) assert.equal(await waitForEnd(redis, id, 60_000), 'COMPLETED', id);

  await cluster.thaw(victim!);
  assert.ok(!(await cluster.masters()).some((m) => m.id === victim!.id), 'the thawed master is a replica now');
  // It is its partitions' only replica now: the gateway reads them from it again.
  const readersOnIt = async () => (await cluster.clientNamesOn(victim!)).flatMap((n) => /^taskcast:hub-reader:(\d+)$/.exec(n)?.[1] ?? []).map(Number);
  await waitFor(async () => (await readersOnIt()).length === frozen.length, 'the hub readers of its partitions on the thawed replica', 30_000);
  assert.deepEqual((await readersOnIt()).sort((a, b) => a - b), frozen);
  for (const { taskId, seen } of await Promise.all(watched)) {
    assert.deepEqual(seen, await eventIds(redis, taskId), `watcher of ${taskId} (partition ${CLUSTER_LAYOUT.of(taskId).index})`);
  }
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING 0 on every partition', 30_000);
});
