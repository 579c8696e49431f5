import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { closeRedis, createRedis, ensureConnected } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { quietHeld, releaseHeld } from '../fixtures/test-tasks.js';
import { request, startTask } from '../helpers/http.js';
import { inProcessTestTasksEnv, startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { clusterClient, clusterView, startRedisCluster } from '../helpers/redis-cluster.js';
import { testScope } from '../helpers/scope.js';
import { eventIds, keysOfTask, pendingCount, waitForEnd } from '../helpers/task-log.js';
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

// A master paused (SIGSTOP: a stalled VM, a stopped container) until its replica took over wakes
// up still a master for a moment, and first runs the commands its clients sent meanwhile (here the
// worker's appends): writes that are in no task log, since the worker made them again on the new
// master. It then turns into a replica of the new master, holding them until its full resync
// replaces its data (which the new master starts after repl-diskless-sync-delay: 5 s, Redis's
// default). The gateway's hub reads replicas; it must not read that one before the resync.
test('cluster: a master paused until its replica took over wakes up with writes in no task log; until its resync, neither the hub nor a GET reads any of them', async (t) => {
  // Torn down in reverse: the services stop while the cluster still runs (the old master woken).
  const scope = testScope(t);
  const c = await startRedisCluster();
  scope.after(() => c.close());
  const redis = await clusterClient(scope, c);
  const gateway = await startGatewayInProcess(scope, c, inProcessTestTasksEnv());
  await startWorkerInProcess(scope, c, { ...inProcessTestTasksEnv(), WORKER_CONCURRENCY: '16' });
  scope.after(releaseHeld);
  const [victim] = await c.masters();
  const frozen = new Set(await c.partitionsOf(victim!));
  const replica = (await c.replicaOf(victim!))!;
  const store = new TaskStore(redis);
  const ids: string[] = [];
  while (ids.length < 8) {
    const pin = `pin-${randomUUID()}`;
    if (frozen.has(CLUSTER_LAYOUT.pinned(pin).index)) ids.push((await store.start('held', { line_ms: 20 }, Date.now(), { pin })).state.task_id);
  }
  const watched = ids.map((id) => watchToEnd(gateway.url, id, { timeoutMs: 90_000 }));
  const lengths = () => Promise.all(ids.map((id) => redis.xlen(keysOfTask(redis, id).events)));
  await waitFor(async () => (await lengths()).every((n) => n >= 5), 'every task writing');

  // Writes that reach it as it stops, as the worker's appends do; here made certain to run only
  // once it wakes, and before it hears it was demoted: they wait behind a script that runs 1.5 s
  // (busy-reply-threshold raised, so that it answers nothing, the cluster bus included, meanwhile).
  const direct = createRedis(victim!.url, { name: 'test-node' });
  await ensureConnected(direct);
  scope.after(() => closeRedis(direct));
  await direct.config('SET', 'busy-reply-threshold', '60000');
  const busy = direct.eval("local t = redis.call('TIME') local until_us = t[1] * 1e6 + t[2] + 1.5e6 repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] >= until_us", 0);
  const woken = ids.map((id) => {
    const k = keysOfTask(redis, id);
    return direct.eval(
      "local id = redis.call('XADD', KEYS[2], '*', 'type', 'progress', 'status', 'STARTED', 'progress', '99', 'ts', ARGV[1]) redis.call('HSET', KEYS[1], 'last_event_id', id, 'progress', '99') return id",
      2, k.state, k.events, Date.now(),
    );
  });
  const stoppedAt = Date.now();
  victim!.process.kill('SIGSTOP');
  scope.after(() => victim!.process.kill('SIGCONT'));
  await waitFor(async () => (await clusterView(replica.port)).find((n) => n.id === replica.id)!.flags.includes('master'), 'the replica to take over', 30_000);
  const promoted = createRedis(replica.url, { name: 'test-node' });
  await ensureConnected(promoted);
  scope.after(() => closeRedis(promoted));
  const newest = async (id: string) => Number((await redis.xrevrange(keysOfTask(redis, id).events, '+', '-', 'COUNT', 1))[0]![0].split('-')[0]);
  await waitFor(async () => (await Promise.all(ids.map(newest))).every((ms) => ms > stoppedAt), 'every task appending on the new master', 30_000);
  // The tasks append nothing more, so the hub's cursors stay before the old master's waking.
  quietHeld();
  let last: number[] = [];
  await waitFor(async () => {
    const now = await lengths();
    const still = now.every((n, i) => n === last[i]);
    last = now;
    return still;
  }, 'the tasks to stop appending', 30_000, 300);
  await promoted.config('SET', 'repl-diskless-sync-delay', '5');

  // Woken: what it holds of each task that the task's log (on the new master) lacks.
  victim!.process.kill('SIGCONT');
  await busy;
  const wokenIds = (await Promise.all(woken)) as string[];
  const old = createRedis(victim!.url, { name: 'test-node' });
  await ensureConnected(old);
  scope.after(() => closeRedis(old));
  await waitFor(async () => /^role:slave/m.test(await old.info('replication')), 'the old master to turn replica', 10_000);
  await old.call('READONLY');
  const strays: string[] = [];
  for (const id of ids) {
    const { events } = keysOfTask(redis, id);
    const kept = new Set((await redis.xrange(events, '-', '+')).map(([eventId]) => eventId));
    strays.push(...(await old.xrange(events, '-', '+')).map(([eventId]) => eventId).filter((eventId) => !kept.has(eventId)));
  }
  assert.ok(/^master_link_status:down/m.test(await old.info('replication')), 'read before its resync');
  assert.deepEqual(wokenIds.filter((eventId) => !strays.includes(eventId)), [], 'the woken master took writes that are in no task log');

  // Until its resync, the gateway's reads of a task's state go to the master, not to that replica.
  const shown: string[] = [];
  await waitFor(async () => {
    for (const id of ids) shown.push((await request(`${gateway.url}/tasks/${id}`)).body.last_event_id);
    return /^master_link_status:up/m.test(await old.info('replication'));
  }, 'its resync', 30_000);
  assert.deepEqual(shown.filter((eventId) => strays.includes(eventId)), [], 'GET /tasks/<id> showed none of its writes');
  releaseHeld();
  for (const id of ids) assert.equal(await waitForEnd(redis, id, 30_000), 'COMPLETED', `${id}: ${JSON.stringify(await redis.hgetall(keysOfTask(redis, id).state))}`);
  const seen = await Promise.all(watched);
  for (const [i, id] of ids.entries()) {
    const log = await eventIds(redis, id);
    assert.deepEqual(seen[i], log, `watcher of ${id}`);
    assert.deepEqual(seen[i]!.filter((eventId) => strays.includes(eventId)), [], `watcher of ${id}: no write of the woken master`);
  }
});
