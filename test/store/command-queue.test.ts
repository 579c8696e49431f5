import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { CommandQueue } from '../../src/store/command-queue.js';
import { ensureGroup } from '../../src/store/consumer-group.js';
import { COMMANDS_STREAM, WORKER_GROUP, keyIn } from '../../src/store/keys.js';
import { CLUSTER_LAYOUT, layoutOf } from '../../src/store/layout.js';
import { TaskStore } from '../../src/store/task-store.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { clusterClient, startRedisCluster } from '../helpers/redis-cluster.js';
import { testScope } from '../helpers/scope.js';

test('undoDelivery gives back the delivery that a reclaim of its own counted, and touches no command it does not hold or that was delivered once', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  await ensureGroup(redis);
  const store = new TaskStore(redis);
  for (let i = 0; i < 4; i++) await store.start('reference', {});
  const p = layoutOf(redis).partitions[0]!;
  const me = new CommandQueue(redis, 'me');
  const other = new CommandQueue(redis, 'other');
  const [own] = await me.take(redis, p, 'normal', 1);
  const [taken] = await other.take(redis, p, 'normal', 1);
  const [once] = await other.take(redis, p, 'normal', 1);
  const [mineOnce] = await me.take(redis, p, 'normal', 1);
  // `own` and `taken` idle for a minute: a reclaim by `me` takes both, counting a delivery each.
  await redis.xclaim(COMMANDS_STREAM, WORKER_GROUP, 'me', 0, own!.id, 'IDLE', 60_000, 'JUSTID');
  await redis.xclaim(COMMANDS_STREAM, WORKER_GROUP, 'other', 0, taken!.id, 'IDLE', 60_000, 'JUSTID');
  const { entries } = await me.reclaim(1000, 10);
  assert.deepEqual(entries.map((e) => e.id).sort(), [own!.id, taken!.id].sort());

  await me.undoDelivery([own!, once!, mineOnce!]);
  await other.undoDelivery([taken!]);
  const pending = (await redis.xpending(COMMANDS_STREAM, WORKER_GROUP, '-', '+', 10)) as [string, string, number, number][];
  const byId = new Map(pending.map(([id, consumer, , deliveries]) => [id, { consumer, deliveries }]));
  assert.deepEqual(byId.get(own!.id), { consumer: 'me', deliveries: 1 }, 'its own command: the reclaim not counted');
  assert.deepEqual(byId.get(taken!.id), { consumer: 'me', deliveries: 2 }, 'held by `me` now: `other` cannot change it');
  assert.deepEqual(byId.get(once!.id), { consumer: 'other', deliveries: 1 }, 'held by `other`: `me` cannot change it');
  assert.deepEqual(byId.get(mineOnce!.id), { consumer: 'me', deliveries: 1 }, 'delivered once: nothing to give back');
});

test('cluster: reclaim takes the idle commands of the partitions that answer while another partition\'s master hangs, and reports that master\'s node as failed', async (t) => {
  const scope = testScope(t);
  const c = await startRedisCluster({ replicasPerMaster: 0, requireFullCoverage: false });
  scope.after(() => c.close());
  const redis = await clusterClient(scope, c);
  await ensureGroup(redis);
  const store = new TaskStore(redis);
  const masters = await c.masters();
  const hung = new Set(await c.partitionsOf(masters[0]!));
  const answering = CLUSTER_LAYOUT.partitions.filter((p) => !hung.has(p.index));
  // One command per partition that answers, held by a worker that died a minute ago.
  const dead = new CommandQueue(redis, 'dead');
  const held: string[] = [];
  for (const p of answering) {
    let pin = '';
    while (CLUSTER_LAYOUT.pinned(pin).index !== p.index) pin = `pin-${randomUUID()}`;
    await store.start('reference', {}, Date.now(), { pin });
    const [taken] = await dead.take(redis, p, 'normal', 1);
    await redis.xclaim(keyIn(p, COMMANDS_STREAM), WORKER_GROUP, 'dead', 0, taken!.id, 'IDLE', 60_000, 'JUSTID');
    held.push(taken!.id);
  }

  masters[0]!.process.kill('SIGSTOP');
  scope.after(() => masters[0]!.process.kill('SIGCONT'));
  const { entries, failed } = await new CommandQueue(redis, 'me').reclaim(1000, 100);
  assert.deepEqual(entries.map((e) => e.id).sort(), held.sort());
  assert.equal(failed.length, 1, 'the hung master failed once: its other partitions were passed over');
  assert.match(String(failed[0]), /timed out/i);
});
