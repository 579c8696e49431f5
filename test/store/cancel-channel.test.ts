import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { subscribeCancels } from '../../src/store/cancel-channel.js';
import { CANCEL_CHANNEL } from '../../src/store/keys.js';
import { clusterClient, startRedisCluster } from '../helpers/redis-cluster.js';
import { waitFor } from '../helpers/wait.js';

test('cluster: the cancel subscription hears cancels published on any node, follows its node\'s failover, and leaves no connection once closed', async (t) => {
  const cluster = await startRedisCluster();
  t.after(() => cluster.close());
  const redis = await clusterClient(t, cluster);
  const heard = new Set<string>();
  const subscription = await subscribeCancels(redis, 'test-cancels', createLogger('silent', 'test'), (taskId) => heard.add(taskId));
  t.after(() => subscription.close());
  // Pub/sub keeps nothing for a subscriber that is not there yet: publish until heard.
  const hear = (taskId: string, what: string) =>
    waitFor(async () => {
      // A publish while the cluster fails over may fail: the next try goes on.
      await redis.publish(CANCEL_CHANNEL, taskId).catch(() => 0);
      return heard.has(taskId);
    }, what, 30_000);

  await hear('first', 'a cancel');
  // The subscription listens on the master of partition 0; that master dies, its replica takes over.
  const masters = await cluster.masters();
  const home = (await Promise.all(masters.map((m) => cluster.partitionsOf(m)))).findIndex((partitions) => partitions.includes(0));
  assert.ok(home >= 0, 'a master serves partition 0');
  assert.ok((await cluster.clientNames()).includes('taskcast:test-cancels'), 'the subscription has its connection');
  await cluster.killAndFailover(masters[home]!);
  await hear('after-failover', 'a cancel after the failover');

  await subscription.close();
  await subscription.close();
  await waitFor(async () => !(await cluster.clientNames()).includes('taskcast:test-cancels'), 'the subscription\'s connection closed');
});
