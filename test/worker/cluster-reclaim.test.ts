import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import type { Redis } from '../../src/store/redis.js';
import { startTask } from '../helpers/http.js';
import { taskGate } from '../helpers/gate.js';
import { startGatewayProc, startWorkerProc, testTasksEnv, type WorkerProc } from '../helpers/processes.js';
import { clusterClient, testCluster } from '../helpers/redis-cluster.js';
import { REFERENCE_STATUSES, assertEventLog, assertRunning, keysOfTask, pendingCount, taskEvents, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';


const TEST_TASKS = testTasksEnv();
/** Small CLAIM_IDLE_MS, so that a dead worker's commands are reclaimed within a second or so. */
const FAST_RECLAIM = { ...TEST_TASKS, CLAIM_IDLE_MS: '1000', WORKER_CONCURRENCY: '32' };
const TOOK_OVER = new Set(['took over the command of a dead worker', 'reclaimed an idle command']);
const leaseOf = (redis: Redis, id: string) => redis.hget(keysOfTask(redis, id).state, 'lease');
/** A consumer name holds its worker's pid: `<host>-<pid>-<8 hex>`. */
const heldBy = (lease: string | null | undefined, worker: WorkerProc) => (lease ?? '').includes(`-${worker.child.pid}-`);

/** `count` tasks started through `gatewayUrl` with `body`, each leased by `worker` and past STARTED (so killed mid-task). */
async function tasksRunningOn(redis: Redis, gatewayUrl: string, worker: WorkerProc, count: number, body: unknown): Promise<string[]> {
  const ids = await Promise.all(Array.from({ length: count }, () => startTask(gatewayUrl, body)));
  await waitFor(async () => {
    const states = await Promise.all(ids.map((id) => redis.hmget(keysOfTask(redis, id).state, 'step', 'lease')));
    return states.every(([step, lease]) => Number(step) >= 1 && heldBy(lease, worker));
  }, `every task past STARTED on worker ${worker.child.pid}`, 60_000);
  return ids;
}

/** Every task completed once per stage, after exactly one takeover by `rescuer`; XPENDING 0 on every partition. */
async function assertTakenOverAndDone(redis: Redis, ids: string[], rescuer: WorkerProc): Promise<void> {
  for (const id of ids) assert.equal(await waitForEnd(redis, id, 60_000), 'COMPLETED', id);
  for (const id of ids) {
    await assertEventLog(redis, id, REFERENCE_STATUSES);
    const restarts = (await taskEvents(redis, id)).filter((e) => e.type === 'restart');
    assert.equal(restarts.length, 1, `${id} (partition ${CLUSTER_LAYOUT.of(id).index}): one takeover`);
    assert.ok(heldBy(await leaseOf(redis, id), rescuer), `${id} finished by the rescuer`);
  }
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING 0 on every partition', 15_000);
  const tookOver = rescuer.logs.filter((l) => TOOK_OVER.has(String(l.msg))).length;
  assert.equal(tookOver, ids.length, 'the rescuer took over each command once');
}

test('cluster: a worker process SIGKILLed mid-task; a running worker takes over its commands on every partition; each task completes with each stage once and nothing stays pending', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayProc(t, c, TEST_TASKS);
  const doomed = await startWorkerProc(t, c, FAST_RECLAIM);
  // Gated: every task is still running on the doomed worker when the survivor is up.
  const gate = taskGate(t);
  const ids = await tasksRunningOn(redis, gateway.url, doomed, 24, { type: 'gated', params: { gate: gate.path } });
  const partitions = new Set(ids.map((id) => CLUSTER_LAYOUT.of(id).index));
  assert.ok(partitions.size >= 4, `24 tasks in ${partitions.size} of 12 partitions`);
  const masters = await c.masters();
  const held = await Promise.all(masters.map(async (m) => (await c.partitionsOf(m)).some((p) => partitions.has(p))));
  assert.ok(held.filter(Boolean).length >= 2, 'the tasks live on several masters');

  const survivor = await startWorkerProc(t, c, FAST_RECLAIM);
  await assertRunning(redis, ids);
  doomed.kill('SIGKILL');
  await doomed.exited;
  gate.open();
  await assertTakenOverAndDone(redis, ids, survivor);
});

test('cluster: a worker that starts after a crash takes over its predecessor\'s commands on every partition at once, not after CLAIM_IDLE_MS', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayProc(t, c);
  const slow = { CLAIM_IDLE_MS: '60000', WORKER_CONCURRENCY: '32' };
  const doomed = await startWorkerProc(t, c, slow);
  const ids = await tasksRunningOn(redis, gateway.url, doomed, 12, { stage_ms: 500 });
  doomed.kill('SIGKILL');
  await doomed.exited;
  await assertRunning(redis, ids);
  const rescuer = await startWorkerProc(t, c, slow);
  // Within seconds: waiting for the commands to idle out would take a minute.
  for (const id of ids) assert.equal(await waitForEnd(redis, id, 20_000), 'COMPLETED', id);
  await assertTakenOverAndDone(redis, ids, rescuer);
  assert.equal(rescuer.logs.filter((l) => l.msg === 'took over the command of a dead worker').length, ids.length);
});

test('cluster: a worker that stops answering (as one of another host that died) has its commands on every partition reclaimed once idle for CLAIM_IDLE_MS; each task completes with each stage once', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayProc(t, c, TEST_TASKS);
  const stalled = await startWorkerProc(t, c, FAST_RECLAIM);
  const gate = taskGate(t);
  const ids = await tasksRunningOn(redis, gateway.url, stalled, 12, { type: 'gated', params: { gate: gate.path } });
  const survivor = await startWorkerProc(t, c, FAST_RECLAIM);
  await assertRunning(redis, ids);
  // Its pid lives on, so no worker judges it dead: only the idle time tells.
  const stoppedAt = Date.now();
  stalled.kill('SIGSTOP');
  t.after(() => stalled.kill('SIGKILL'));
  await waitFor(async () => (await Promise.all(ids.map((id) => leaseOf(redis, id)))).every((l) => heldBy(l, survivor)), 'every task leased by the survivor', 30_000);
  stalled.kill('SIGKILL');
  await stalled.exited;
  gate.open();
  await assertTakenOverAndDone(redis, ids, survivor);
  const reclaims = survivor.logs.filter((l) => TOOK_OVER.has(String(l.msg)));
  assert.ok(reclaims.every((l) => l.msg === 'reclaimed an idle command'), 'reclaimed as idle, not as dead');
  // Idle since its last heartbeat, at most a third of CLAIM_IDLE_MS before the stop.
  const first = Math.min(...reclaims.map((l) => Number(l.time)));
  assert.ok(first >= stoppedAt + 600, `first reclaim ${first - stoppedAt} ms after the stop`);
});
