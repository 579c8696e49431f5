import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SCHEDULED_SET, commandsStream, idempotencyKey, keyIn, PRIORITIES } from '../../src/store/keys.js';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import type { Redis } from '../../src/store/redis.js';
import { request } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { clusterClient, startRedisCluster, testCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { testScope } from '../helpers/scope.js';
import { REFERENCE_STATUSES, assertEventLog, keysOfTask, pendingCount, taskEvents, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';


const post = (base: string, body: unknown, key?: string) =>
  request(`${base}/tasks`, { method: 'POST', body, headers: key === undefined ? {} : { 'Idempotency-Key': key } });

/** How many masters hold the partitions of `ids`. */
async function mastersHolding(c: RedisCluster, ids: string[]): Promise<number> {
  const partitions = new Set(ids.map((id) => CLUSTER_LAYOUT.of(id).index));
  const held = await Promise.all((await c.masters()).map(async (m) => (await c.partitionsOf(m)).some((p) => partitions.has(p))));
  return held.filter(Boolean).length;
}

/** Every commands stream entry (each partition's, each priority's) naming `taskId`, as `<partition> <priority>`. */
async function commandsOf(redis: Redis, taskId: string): Promise<string[]> {
  const found: string[] = [];
  for (const p of CLUSTER_LAYOUT.partitions) {
    for (const priority of PRIORITIES) {
      const entries = await redis.xrange(keyIn(p, commandsStream(priority)), '-', '+');
      for (const [, fields] of entries) if (fields[fields.indexOf('task_id') + 1] === taskId) found.push(`${p.index} ${priority}`);
    }
  }
  return found;
}

test('cluster: an Idempotency-Key retry answers 200 with the same task and Idempotent-Replayed, once for 20 at once; another body with the key is 422', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayInProcess(t, c);
  const body = { stage_ms: 60_000, tags: ['order'] };
  const answers = await Promise.all(Array.from({ length: 20 }, () => post(gateway.url, body, 'order-1')));
  const created = answers.filter((a) => a.status === 202);
  assert.equal(created.length, 1, JSON.stringify(answers.map((a) => a.status)));
  const taskId = created[0]!.body.task_id as string;
  assert.equal(created[0]!.headers.get('idempotent-replayed'), null);
  for (const a of answers.filter((x) => x !== created[0])) {
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('idempotent-replayed'), 'true');
    assert.equal(a.body.task_id, taskId);
    assert.equal(a.headers.get('location'), `/tasks/${taskId}`);
  }
  // The task lives in the key's partition, beside the key: a retry on any gateway finds it.
  const partition = CLUSTER_LAYOUT.pinned('global:order-1');
  assert.equal(CLUSTER_LAYOUT.of(taskId), partition);
  assert.match(String(await redis.get(keyIn(partition, idempotencyKey('global', 'order-1')))), new RegExp(`:${taskId}$`));
  assert.equal(await redis.hget(keysOfTask(redis, taskId).state, 'status'), 'PENDING');
  assert.deepEqual(await commandsOf(redis, taskId), [`${partition.index} normal`], 'one command');

  const later = await startGatewayInProcess(t, c);
  const retry = await post(later.url, { tags: ['order'], stage_ms: 60_000 }, 'order-1');
  assert.equal(retry.status, 200, 'another gateway replays it too');
  assert.equal(retry.body.task_id, taskId);
  for (const other of [
    { stage_ms: 60_001, tags: ['order'] },
    { stage_ms: 60_000 },
    { stage_ms: 60_000, tags: ['order'], priority: 'high' },
    { stage_ms: 60_000, tags: ['order'], delay_ms: 60_000 },
    { type: 'typewriter', params: { words: 3 }, tags: ['order'] },
  ]) {
    const res = await post(gateway.url, other, 'order-1');
    assert.equal(res.status, 422, JSON.stringify(other));
    assert.equal(res.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(res.body.error.details.task_id, taskId);
  }
  const listed = await request(`${gateway.url}/tasks?limit=100`);
  assert.deepEqual(listed.body.tasks.map((x: { task_id: string }) => x.task_id), [taskId], 'one task in all');
});

test('cluster: an Idempotency-Key reused by a start pinned to its type\'s partition (a concurrency_key) is 422 too', async (t) => {
  const c = await testCluster();
  const gateway = await startGatewayInProcess(t, c);
  // A key whose partition is not the reference type's, where a start with a concurrency_key goes.
  const key = Array.from({ length: 100 }, (_, i) => `pin-${i}`).find((k) => CLUSTER_LAYOUT.pinned(`global:${k}`) !== CLUSTER_LAYOUT.pinned('type:reference'))!;
  const first = await post(gateway.url, { stage_ms: 60_000 }, key);
  assert.equal(first.status, 202);
  const reused = await post(gateway.url, { stage_ms: 60_000, concurrency_key: 'customer-1' }, key);
  assert.equal(reused.status, 422, `answered ${reused.status} ${JSON.stringify(reused.body)}`);
  assert.equal(reused.body.error.details.task_id, first.body.task_id);
  // A pinned start with a key of its own: its retries, even at once, answer the one task it started.
  const pinnedKey = Array.from({ length: 100 }, (_, i) => `pinned-${i}`).find((k) => CLUSTER_LAYOUT.pinned(`global:${k}`) !== CLUSTER_LAYOUT.pinned('type:reference'))!;
  const body = { stage_ms: 60_000, concurrency_key: 'customer-2' };
  const answers = await Promise.all(Array.from({ length: 10 }, () => post(gateway.url, body, pinnedKey)));
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 202]);
  assert.equal(new Set(answers.map((a) => a.body.task_id)).size, 1, 'one task');
  const pinnedTask = answers[0]!.body.task_id as string;
  assert.equal(CLUSTER_LAYOUT.of(pinnedTask), CLUSTER_LAYOUT.pinned('type:reference'), 'in its type\'s partition');
  const listed = await request(`${gateway.url}/tasks?limit=100`);
  assert.deepEqual(new Set(listed.body.tasks.map((x: { task_id: string }) => x.task_id)), new Set([first.body.task_id, pinnedTask]), 'two tasks in all');
});

test('cluster: scheduled starts (delay_ms) on several partitions stay SCHEDULED until their time, then run; every partition\'s scheduled set ends empty', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayInProcess(t, c);
  await startWorkerInProcess(t, c);
  const tasks: { id: string; runAt: number }[] = [];
  for (let i = 0; i < 8; i++) {
    const res = await post(gateway.url, { stage_ms: 0, delay_ms: 2000 + 100 * i });
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'SCHEDULED');
    tasks.push({ id: res.body.task_id, runAt: res.body.run_at });
  }
  assert.ok(new Set(tasks.map((x) => CLUSTER_LAYOUT.of(x.id).index)).size >= 2, 'several partitions');
  for (const { id, runAt } of tasks) {
    assert.ok(Date.now() < runAt, 'checked before its time');
    assert.equal(await redis.hget(keysOfTask(redis, id).state, 'status'), 'SCHEDULED');
    assert.equal(await redis.zscore(keyIn(CLUSTER_LAYOUT.of(id), SCHEDULED_SET), id), String(runAt));
  }
  for (const { id, runAt } of tasks) {
    assert.equal(await waitForEnd(redis, id), 'COMPLETED', id);
    await assertEventLog(redis, id, ['SCHEDULED', ...REFERENCE_STATUSES]);
    const events = await taskEvents(redis, id);
    assert.equal(events[0]!.run_at, runAt);
    const [promoted, ran] = [events[1]!.ts, events[2]!.ts];
    assert.ok(promoted >= runAt, `promoted ${promoted - runAt} ms after its time, not before`);
    assert.ok(ran - runAt < 2000, `STARTED ${ran - runAt} ms after its time`);
  }
  for (const p of CLUSTER_LAYOUT.partitions) assert.equal(await redis.zcard(keyIn(p, SCHEDULED_SET)), 0, `partition ${p.index}`);
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING 0 on every partition');
});

test('cluster: cancelling running tasks on every master ends each CANCELLED at once (the cancel is published across the cluster)', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayInProcess(t, c);
  // Heartbeats every 200 s: only the published cancel can stop a task within this test.
  await startWorkerInProcess(t, c, { CLAIM_IDLE_MS: '600000', WORKER_CONCURRENCY: '64' });
  const ids: string[] = [];
  // Task ids are random: 12 miss a master about one time in 40, so more are started until each holds some.
  while (ids.length < 12 || ((await mastersHolding(c, ids)) < 3 && ids.length < 48)) {
    const res = await post(gateway.url, { stage_ms: 600_000 });
    assert.equal(res.status, 202);
    ids.push(res.body.task_id);
  }
  assert.equal(await mastersHolding(c, ids), 3, 'tasks on every master');
  await waitFor(async () => (await Promise.all(ids.map((id) => redis.hget(keysOfTask(redis, id).state, 'lease')))).every(Boolean), 'every task claimed');
  for (const id of ids) {
    const res = await request(`${gateway.url}/tasks/${id}/cancel`, { method: 'POST' });
    assert.equal(res.status, 202, id);
  }
  for (const id of ids) {
    assert.equal(await waitForEnd(redis, id, 10_000), 'CANCELLED', id);
    await assertEventLog(redis, id, ['PENDING', 'CANCELLED']);
  }
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING 0 on every partition');
  const again = await request(`${gateway.url}/tasks/${ids[0]}/cancel`, { method: 'POST' });
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, 'TASK_ALREADY_FINISHED');
});

test('cluster: a high-priority start queues on its partition\'s high commands stream and runs', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayInProcess(t, c);
  const res = await post(gateway.url, { stage_ms: 0, priority: 'high' });
  assert.equal(res.status, 202);
  assert.equal(res.body.priority, 'high');
  const taskId = res.body.task_id as string;
  assert.deepEqual(await commandsOf(redis, taskId), [`${CLUSTER_LAYOUT.of(taskId).index} high`]);
  await startWorkerInProcess(t, c);
  assert.equal(await waitForEnd(redis, taskId), 'COMPLETED');
  await assertEventLog(redis, taskId, REFERENCE_STATUSES);
  assert.equal(await redis.hget(keysOfTask(redis, taskId).state, 'priority'), 'high');
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING 0 on every partition');
});

test('cluster: one worker of concurrency 1 runs every waiting high task before any normal one, and normal before low, whatever their partitions', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayInProcess(t, c);
  const started: { id: string; priority: string }[] = [];
  for (const priority of ['low', 'normal', 'high', 'low', 'high', 'normal', 'normal', 'low', 'high', 'low', 'normal', 'high'] as const) {
    const res = await post(gateway.url, { stage_ms: 10, priority });
    assert.equal(res.status, 202);
    started.push({ id: res.body.task_id, priority });
  }
  await startWorkerInProcess(t, c, { WORKER_CONCURRENCY: '1' });
  for (const { id } of started) assert.equal(await waitForEnd(redis, id), 'COMPLETED');
  // One run at a time: the order of their COMPLETED times is the run order.
  const doneAt = new Map<string, number>();
  for (const { id } of started) doneAt.set(id, (await taskEvents(redis, id)).at(-1)!.ts);
  const ran = [...started].sort((a, b) => doneAt.get(a.id)! - doneAt.get(b.id)!).map((s) => s.priority);
  assert.deepEqual(ran, ['high', 'high', 'high', 'high', 'normal', 'normal', 'normal', 'normal', 'low', 'low', 'low', 'low'], ran.join(' '));
});

// REDIS_CLUSTER_WAIT_REPLICAS: a start is answered 202 once a replica has it. When none confirms
// it in time (here every replica is paused), the task exists all the same and runs: the answer is
// 503 START_UNCONFIRMED naming it, so that a client can find it, and a retry with the same
// Idempotency-Key gets it instead of starting another.
test('cluster: a start no replica confirms in time is 503 START_UNCONFIRMED naming the task, which runs; a retry with its Idempotency-Key gets that task', async (t) => {
  const scope = testScope(t);
  const c = await startRedisCluster();
  scope.after(() => c.close());
  const redis = await clusterClient(scope, c);
  const gateway = await startGatewayInProcess(scope, c, { REDIS_CLUSTER_WAIT_TIMEOUT_MS: '300' });
  await startWorkerInProcess(scope, c);
  const replicas = c.nodes.filter((n) => !c.nodes.slice(0, 3).includes(n));
  for (const r of replicas) {
    r.process.kill('SIGSTOP');
    scope.after(() => r.process.kill('SIGCONT'));
  }
  const keyed = await post(gateway.url, { stage_ms: 10 }, 'unconfirmed-1');
  const plain = await post(gateway.url, { stage_ms: 10 });
  for (const answer of [keyed, plain]) {
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, 'START_UNCONFIRMED');
    assert.equal(answer.body.error.details.reason, 'NOREPLICAS');
    assert.match(answer.body.error.message, new RegExp(`task ${answer.body.error.details.task_id} was started`));
    assert.equal(answer.headers.get('retry-after'), '5');
  }
  const ids = [keyed.body.error.details.task_id as string, plain.body.error.details.task_id as string];
  for (const r of replicas) r.process.kill('SIGCONT');

  for (const id of ids) {
    assert.equal(await waitForEnd(redis, id, 60_000), 'COMPLETED', id);
    await assertEventLog(redis, id, REFERENCE_STATUSES);
  }
  const retry = await post(gateway.url, { stage_ms: 10 }, 'unconfirmed-1');
  assert.equal(retry.status, 200, JSON.stringify(retry.body));
  assert.equal(retry.headers.get('idempotent-replayed'), 'true');
  assert.equal(retry.body.task_id, ids[0]);
  assert.deepEqual(await commandsOf(redis, ids[0]!), [`${CLUSTER_LAYOUT.of(ids[0]!).index} normal`], 'one task, one command');
});
