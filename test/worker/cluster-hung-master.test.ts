import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { clusterClient, clusterView, startRedisCluster } from '../helpers/redis-cluster.js';
import { REFERENCE_STATUSES, assertEventLog, keysOfTask, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

// Without CLUSTERDOWN replies (full coverage not required) nothing but the client's own reads of
// the slot map tell it that the hung master's replica took over: a worker that only learnt it
// from failed reads of its own kept sending that partition's writes, heartbeats and reclaims to
// the hung node for as long as it hung, and started no queued task meanwhile.
test('cluster: a master that hangs (SIGSTOP) mid-task: once its replica took over, its tasks go on there and queued ones start, while it still hangs', async (t) => {
  const c = await startRedisCluster({ requireFullCoverage: false });
  t.after(() => c.close());
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayInProcess(t, c);
  await startWorkerInProcess(t, c, { WORKER_CONCURRENCY: '6', CLAIM_IDLE_MS: '4000' });
  const [victim] = await c.masters();
  const replica = (await c.replicaOf(victim!))!;
  const frozen = new Set(await c.partitionsOf(victim!));

  // Six run and six wait in the queue; each task takes four stages of 700 ms.
  const ids = await Promise.all(Array.from({ length: 12 }, () => startTask(gateway.url, { stage_ms: 700 })));
  assert.ok(ids.some((id) => frozen.has(CLUSTER_LAYOUT.of(id).index)), 'some tasks live on the master that will hang');
  const statuses = () => Promise.all(ids.map((id) => redis.hget(keysOfTask(redis, id).state, 'status')));
  await waitFor(async () => (await statuses()).filter((s) => s !== 'PENDING').length >= 6, 'six tasks running');

  victim!.process.kill('SIGSTOP');
  t.after(() => victim!.process.kill('SIGCONT'));
  await waitFor(async () => (await clusterView(replica.port)).find((v) => v.id === replica.id)!.flags.includes('master'), 'the replica to take over', 30_000);

  // Every task ends while the old master still hangs.
  for (const id of ids) assert.equal(await waitForEnd(redis, id, 40_000), 'COMPLETED', `task of partition ${CLUSTER_LAYOUT.of(id).index}`);
  assert.equal(victim!.process.exitCode, null);
  for (const id of ids) await assertEventLog(redis, id, REFERENCE_STATUSES);
});
