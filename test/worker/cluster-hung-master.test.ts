import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { clusterClient, clusterView, startRedisCluster } from '../helpers/redis-cluster.js';
import { testScope } from '../helpers/scope.js';
import { REFERENCE_STATUSES, assertEventLog, eventIds, keysOfTask, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchToEnd } from '../helpers/ws-client.js';

// Without CLUSTERDOWN replies (full coverage not required) nothing but the client's own reads of
// the slot map tell it that the hung master's replica took over: a worker that only learnt it
// from failed reads of its own kept sending that partition's writes, heartbeats and reclaims to
// the hung node for as long as it hung, and started no queued task meanwhile. Its blocking reads
// of new commands follow the new slot map at once: one left unanswered by the hung node is
// dropped then, not when it times out (which held up every partition's reads).
test('cluster: a master that hangs (SIGSTOP) mid-task: once its replica took over, its tasks go on there, new and queued ones start, and their watchers get every event, while it still hangs', async (t) => {
  // Torn down in reverse: the services stop while the cluster still runs (the old master woken).
  const scope = testScope(t);
  const c = await startRedisCluster({ requireFullCoverage: false });
  scope.after(() => c.close());
  const redis = await clusterClient(scope, c);
  const gateway = await startGatewayInProcess(scope, c);
  const worker = await startWorkerInProcess(scope, c, { WORKER_CONCURRENCY: '8', CLAIM_IDLE_MS: '4000' });

  // Six run when their master hangs; each takes four stages of 700 ms. The worker has room for
  // more, so its readers wait for commands on every partition, the hung master's too.
  const running = await Promise.all(Array.from({ length: 6 }, () => startTask(gateway.url, { stage_ms: 700 })));
  const statuses = (ids: string[]) => Promise.all(ids.map((id) => redis.hget(keysOfTask(redis, id).state, 'status')));
  await waitFor(async () => (await statuses(running)).every((s) => s !== 'PENDING'), 'six tasks running');
  const masters = await c.masters();
  const partitionsOf = await Promise.all(masters.map((m) => c.partitionsOf(m)));
  const v = partitionsOf.findIndex((ps) => ps.includes(CLUSTER_LAYOUT.of(running[0]!).index));
  const victim = masters[v]!;
  const frozen = new Set(partitionsOf[v]!);
  const replica = (await c.replicaOf(victim))!;
  const watched = running.map((id) => watchToEnd(gateway.url, id, { timeoutMs: 40_000 }));

  victim.process.kill('SIGSTOP');
  scope.after(() => victim.process.kill('SIGCONT'));
  await waitFor(async () => (await clusterView(replica.port)).find((n) => n.id === replica.id)!.flags.includes('master'), 'the replica to take over', 30_000);

  // Started while it hangs, some on its partitions, more than the worker has room for: some wait.
  const later: string[] = [];
  while (later.length < 6 || later.filter((id) => frozen.has(CLUSTER_LAYOUT.of(id).index)).length < 2) {
    assert.ok(later.length < 100, 'task ids land on every partition');
    later.push(await startTask(gateway.url, { stage_ms: 700 }));
  }
  watched.push(...later.map((id) => watchToEnd(gateway.url, id, { timeoutMs: 40_000 })));

  // Every task ends while the old master still hangs, and its watcher got exactly its log.
  const ids = [...running, ...later];
  for (const id of ids) assert.equal(await waitForEnd(redis, id, 40_000), 'COMPLETED', `task of partition ${CLUSTER_LAYOUT.of(id).index}`);
  assert.equal(victim.process.exitCode, null);
  for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
  const seen = await Promise.all(watched);
  for (const [i, id] of ids.entries()) assert.deepEqual(seen[i], await eventIds(redis, id), `watcher of ${id}`);
  assert.equal(victim.process.exitCode, null, 'the old master still hangs');
  // The worker's readers followed the new slot map; none waited for a read to the hung node to time out.
  assert.ok(worker.logs.some((l) => l.msg === 'blocking reader follows its partition to another node'), 'a command reader followed');
  for (const [name, service] of [['gateway', gateway], ['worker', worker]] as const) {
    const timedOut = service.logs.filter((l) => /timed out/i.test(JSON.stringify(l.err ?? '')));
    assert.deepEqual(timedOut.map((l) => l.msg), [], `${name}: no read waited for its timeout`);
  }
});
