import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Cluster } from 'ioredis';
import { nodeKey } from '../../src/store/cluster-nodes.js';
import { closeRedis, createRedis, ensureConnected, type Redis } from '../../src/store/redis.js';
import { replicaSyncOf } from '../../src/store/replica-sync.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { testScope } from '../helpers/scope.js';

test('replica sync: a cluster client that reads from replicas reads those in sync; a replica that hangs is out at the next check, its reads go to the master, and it is back once it answers', async (t) => {
  const scope = testScope(t);
  const c = await startRedisCluster();
  scope.after(() => c.close());
  const seeds = c.seeds.split(',').map((s) => ({ host: s.split(':')[0]!, port: Number(s.split(':')[1]) }));
  // As the gateway's: commands fail at once while a connection is not up (no offline queue).
  const client = createRedis({ cluster: seeds }, { name: 'test', readFromReplicas: true, offlineQueue: false });
  scope.after(() => closeRedis(client));
  await ensureConnected(client);
  const cluster = client as unknown as Cluster;
  const sync = replicaSyncOf(client)!;
  assert.ok(sync, 'a client that reads from replicas has a ReplicaSync');
  const plain = createRedis({ cluster: seeds }, { name: 'plain' });
  scope.after(() => closeRedis(plain));
  assert.equal(replicaSyncOf(plain), undefined, 'one that does not has none');

  // The first round, as a hub reader awaits it before its first read: the replicas' connections are not up yet.
  await sync.checked(cluster);
  const replicas = cluster.nodes('slave');
  assert.equal(replicas.length, 3);
  for (const r of replicas) assert.ok(sync.inSync(nodeKey(r as unknown as Redis)), `${nodeKey(r as unknown as Redis)} in sync`);
  const [master, replica] = cluster.slots[0]!;
  const pair = [master!, replica!].map((key) => cluster.nodes('all').find((n) => nodeKey(n as unknown as Redis) === key)!);
  /** Where a read of that slot goes: the one node pick names, or each of those it names (ioredis takes one at random). */
  const picked = () => [sync.pick(pair)].flat().map((n) => nodeKey(n as unknown as Redis)).join(',');
  assert.equal(picked(), replica, 'reads go to the replica');

  const hung = c.nodes.find((n) => `127.0.0.1:${n.port}` === replica)!;
  hung.process.kill('SIGSTOP');
  scope.after(() => hung.process.kill('SIGCONT'));
  await sync.check(cluster);
  assert.equal(sync.inSync(replica!), false, 'a replica that does not answer is out');
  assert.equal(picked(), master, 'its reads go to the master');
  for (const r of replicas.filter((n) => nodeKey(n as unknown as Redis) !== replica)) assert.ok(sync.inSync(nodeKey(r as unknown as Redis)), 'the others stay in');

  hung.process.kill('SIGCONT');
  await sync.check(cluster);
  assert.ok(sync.inSync(replica!), 'back in once it answers in sync');
  assert.equal(picked(), replica);
});
