import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { releaseHeld } from '../fixtures/test-tasks.js';
import { startTask } from '../helpers/http.js';
import { inProcessTestTasksEnv, startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { clusterClient, startRedisCluster } from '../helpers/redis-cluster.js';
import { testScope } from '../helpers/scope.js';
import { eventIds, keysOfTask, pendingCount, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchToEnd } from '../helpers/ws-client.js';

test('cluster resharding: slots of partitions move to another master while 50 or more watched tasks write output; every task completes, every watcher gets exactly XRANGE', async (t) => {
  // Torn down in reverse: the services stop while the cluster still runs.
  const scope = testScope(t);
  const cluster = await startRedisCluster();
  scope.after(() => cluster.close());
  const redis = await clusterClient(scope, cluster);
  const gateway = await startGatewayInProcess(scope, cluster, inProcessTestTasksEnv());
  const worker = await startWorkerInProcess(scope, cluster, { ...inProcessTestTasksEnv(), WORKER_CONCURRENCY: '200' });
  scope.after(releaseHeld);
  const [from, to] = await cluster.masters();
  const before = await cluster.partitionsOf(from!);

  // Held tasks write a line every 100 ms until released: they run through the whole move. At
  // least 50, and two in each partition of the master that gives slots, whichever of them move.
  const ids: string[] = [];
  const inPartition = (p: number) => ids.filter((id) => CLUSTER_LAYOUT.of(id).index === p).length;
  while (ids.length < 50 || before.some((p) => inPartition(p) < 2)) {
    assert.ok(ids.length < 150, 'task ids land on every partition');
    ids.push(...(await Promise.all(Array.from({ length: 10 }, () => startTask(gateway.url, { type: 'held', params: { line_ms: 100 } })))));
  }
  const watched = ids.map(async (taskId) => ({ taskId, seen: await watchToEnd(gateway.url, taskId, { timeoutMs: 100_000 }) }));
  const lengths = (of: string[]) => Promise.all(of.map((id) => redis.xlen(keysOfTask(redis, id).events)));
  await waitFor(async () => (await lengths(ids)).every((n) => n >= 4), 'every task writing output', 60_000);
  const lengthsAtMove = await lengths(ids);
  await cluster.moveSlots(from!, to!, 1200);
  const after = await cluster.partitionsOf(to!);
  const moved = before.filter((p) => after.includes(p));
  assert.ok(moved.length > 0, `a partition moved: ${JSON.stringify({ before, after })}`);
  const movedTasks = ids.filter((id) => moved.includes(CLUSTER_LAYOUT.of(id).index));
  assert.ok(movedTasks.length > 0, 'some tasks live in a moved partition');
  // Every task of a moved partition writes on after the move (on the new owner).
  const lengthsAfterMove = await lengths(movedTasks);
  await waitFor(
    async () => (await lengths(movedTasks)).every((n, i) => n > lengthsAfterMove[i]!),
    'every task of a moved partition writing after the move',
    30_000,
  );
  assert.ok(
    movedTasks.every((id, i) => lengthsAfterMove[i]! > lengthsAtMove[ids.indexOf(id)]!),
    'tasks of a moved partition wrote while its slot moved',
  );
  releaseHeld();

  for (const { taskId, seen } of await Promise.all(watched)) {
    assert.equal(await waitForEnd(redis, taskId, 60_000), 'COMPLETED', taskId);
    assert.deepEqual(seen, await eventIds(redis, taskId), `watcher of ${taskId} (partition ${CLUSTER_LAYOUT.of(taskId).index})`);
  }
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING 0 on every partition', 30_000);
  // The hub's readers of the moved partitions followed them: told by a read (MOVED, ASK, or their
  // blocked read ended as the keys left) or, when it came first, by the slot map read each second;
  // the expected path, not logged as a failure.
  const follows = gateway.logs.filter((l) => l.msg === 'blocking reader follows its partition to another node' && String(l.reader).startsWith('hub-reader'));
  assert.ok(follows.length > 0, 'a hub reader followed a moved partition');
  const failed = gateway.logs.filter((l) => l.msg === 'hub read failed; backing off' && /MOVED|ASK|UNBLOCKED/.test(JSON.stringify(l.err)));
  assert.deepEqual(failed, [], 'a moving partition is not logged as a failure');
  // Nor by the worker, whose command readers wait on the moving partitions too.
  const workerFailed = worker.logs.filter((l) => l.level !== 30 && /MOVED|ASK|UNBLOCKED/.test(JSON.stringify(l.err)));
  assert.deepEqual(workerFailed.map((l) => l.msg), [], 'a moving partition is not a worker failure either');
  // Tasks started after the move land on its new owner too.
  const late = await startTask(gateway.url, { stage_ms: 10 });
  assert.equal(await waitForEnd(redis, late), 'COMPLETED');
});
