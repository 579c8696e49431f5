import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { TaskStore } from '../../src/store/task-store.js';
import { startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { taskGate } from '../helpers/gate.js';
import { startWorkerProc, testTasksEnv } from '../helpers/processes.js';
import { clusterClient, clusterView, startRedisCluster } from '../helpers/redis-cluster.js';
import { testScope } from '../helpers/scope.js';
import { REFERENCE_STATUSES, assertEventLog, assertRunning, eventIds, keysOfTask, waitForEnd } from '../helpers/task-log.js';
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

// A master that hangs with no replica to take over (or before one does, cluster-node-timeout):
// the worker waits on every partition at once, and a read the hung node leaves unanswered (its
// reads of new commands, its reclaim passes) must not hold up the others until it times out.
// Full coverage not required, so the other masters serve on.
test('cluster: while a master hangs (SIGSTOP) with no replica to take over, tasks of the other partitions are taken and run; none waits for a read of the hung node to time out', async (t) => {
  const scope = testScope(t);
  const c = await startRedisCluster({ replicasPerMaster: 0, requireFullCoverage: false });
  scope.after(() => c.close());
  const redis = await clusterClient(scope, c);
  // Reclaim passes every 250 ms (CLAIM_IDLE_MS / 4): each one asks the hung master too.
  const worker = await startWorkerInProcess(scope, c, { WORKER_CONCURRENCY: '8', CLAIM_IDLE_MS: '1000' });
  const store = new TaskStore(redis);
  const masters = await c.masters();
  const partitionsOf = await Promise.all(masters.map((m) => c.partitionsOf(m)));
  const hung = new Set(partitionsOf[0]!);
  /** Starts a reference task of 0 ms stages in a partition the hung master does not serve. */
  const startElsewhere = async () => {
    for (let i = 0; ; i++) {
      const pin = `pin-${randomUUID()}`;
      if (!hung.has(CLUSTER_LAYOUT.pinned(pin).index)) return (await store.start('reference', { stage_ms: 0 }, Date.now(), { pin })).state.task_id;
      assert.ok(i < 1000, 'a pin lands outside the hung partitions');
    }
  };
  // Every partition's reader is waiting for commands once the first tasks ran.
  for (const id of await Promise.all([1, 2, 3].map(startElsewhere))) assert.equal(await waitForEnd(redis, id), 'COMPLETED');

  masters[0]!.process.kill('SIGSTOP');
  scope.after(() => masters[0]!.process.kill('SIGCONT'));
  const timedOut = () => worker.logs.filter((l) => /timed out/i.test(JSON.stringify(l.err ?? '')));
  for (let round = 0; round < 3; round++) {
    const ids = await Promise.all(Array.from({ length: 4 }, startElsewhere));
    for (const id of ids) assert.equal(await waitForEnd(redis, id, 60_000), 'COMPLETED');
    for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
    assert.deepEqual(timedOut().map((l) => l.msg), [], `round ${round}: the tasks ended before any read of the hung node timed out`);
  }
  assert.equal(masters[0]!.process.exitCode, null, 'the master still hangs');
});

// Stopping a worker while a master hangs: its steps before the grace period wait up to a second
// each on the hung node, and they count against SHUTDOWN_GRACE_MS, so it still stops in time (exit
// 0, `worker stopped`) instead of being cut by the runtime's deadline (exit 1).
test('cluster: a worker SIGTERMed while a master hangs stops in time with exit 0; another runs its tasks once the master is back', async (t) => {
  const scope = testScope(t);
  const c = await startRedisCluster({ replicasPerMaster: 0, requireFullCoverage: false });
  scope.after(() => c.close());
  const redis = await clusterClient(scope, c);
  const env = { ...testTasksEnv(), WORKER_CONCURRENCY: '16', CLAIM_IDLE_MS: '3000', SHUTDOWN_GRACE_MS: '4000', REDIS_CLUSTER_WAIT_REPLICAS: '0' };
  const stopping = await startWorkerProc(scope, c, env);
  const store = new TaskStore(redis);
  const masters = await c.masters();
  const hung = new Set(await c.partitionsOf(masters[0]!));
  /**
   * A gated task pinned to a partition of the hung master (or not): it still runs when the second
   * worker is up and the master hangs, until the gate opens once the master is back.
   */
  const gate = taskGate(scope);
  const startPinned = async (onHung: boolean) => {
    for (;;) {
      const pin = `pin-${randomUUID()}`;
      if (hung.has(CLUSTER_LAYOUT.pinned(pin).index) === onHung) return (await store.start('gated', { gate: gate.path }, Date.now(), { pin })).state.task_id;
    }
  };
  const ids = await Promise.all([...Array.from({ length: 4 }, () => startPinned(true)), ...Array.from({ length: 8 }, () => startPinned(false))]);
  await waitFor(async () => (await Promise.all(ids.map((id) => redis.hget(keysOfTask(redis, id).state, 'step')))).every((s) => Number(s) >= 1), 'every task running', 60_000);
  const rescuer = await startWorkerProc(scope, c, env);
  await assertRunning(redis, ids);

  masters[0]!.process.kill('SIGSTOP');
  scope.after(() => masters[0]!.process.kill('SIGCONT'));
  stopping.kill('SIGTERM');
  assert.equal(await stopping.exited, 0, `exit code; last log lines: ${JSON.stringify(stopping.logs.slice(-3).map((l) => l.msg))}`);
  assert.ok(stopping.logs.some((l) => l.msg === 'worker stopped'), 'it logged `worker stopped`');

  masters[0]!.process.kill('SIGCONT');
  gate.open();
  for (const id of ids) assert.equal(await waitForEnd(redis, id, 60_000), 'COMPLETED', `task of partition ${CLUSTER_LAYOUT.of(id).index}`);
  for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
  // By a reclaim pass (idle commands) or by its upkeep's takeover of a gone worker of this host,
  // whichever comes first.
  const tookOver = (msg: unknown) => msg === 'reclaimed an idle command' || msg === 'took over the command of a dead worker';
  assert.ok(rescuer.logs.some((l) => tookOver(l.msg)), 'the other worker took the tasks over');
});
