import assert from 'node:assert/strict';
import { test } from 'node:test';
import { feedKey, keyIn, taskKey } from '../../src/store/keys.js';
import { CLUSTER_LAYOUT, CLUSTER_PARTITIONS, idIn } from '../../src/store/layout.js';
import { randomUUID } from 'node:crypto';
import { closeRedis, createRedis, ensureConnected, type Redis } from '../../src/store/redis.js';
import { startTask, request } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { testScope } from '../helpers/scope.js';
import type { Scope } from '../helpers/processes.js';
import { clusterClient, testCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { eventIds, keysOfTask, pendingCount, waitForEnd } from '../helpers/task-log.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';
import { feedUrl, followFeed } from '../helpers/feed-client.js';
import { watchSse } from '../helpers/sse-client.js';
import { FEED_RESET_SHORT_REASON, type FeedEntry } from '../../src/wire/feed.js';
import { FeedWatcher } from '../../src/client/feed-watcher.js';


/** Per master: how many of `keys` it holds (another node's key answers MOVED). */
async function keysPerMaster(c: RedisCluster, keys: string[]): Promise<number[]> {
  return Promise.all((await c.masters()).map(async (m) => {
    const node = createRedis(m.url, { name: 'test-count' });
    await ensureConnected(node);
    const held = await Promise.all(keys.map((k) => node.exists(k).catch(() => 0)));
    await closeRedis(node);
    return held.reduce((a, b) => a + b, 0);
  }));
}

test('cluster: tasks spread over every master; each task\'s keys share one slot; watchers that resume elsewhere get exactly XRANGE', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateways = [await startGatewayInProcess(t, c), await startGatewayInProcess(t, c)] as const;
  await startWorkerInProcess(t, c, { WORKER_CONCURRENCY: '32' });
  await startWorkerInProcess(t, c, { WORKER_CONCURRENCY: '32' });

  const runs = Array.from({ length: 48 }, async (_, i) => {
    const taskId = await startTask(gateways[i % 2]!.url, { stage_ms: 100 });
    const first = await watchTask(wsUrl(gateways[i % 2]!.url, taskId), { take: 1 + (i % 3) });
    const rest = await watchTask(wsUrl(gateways[(i + 1) % 2]!.url, taskId, first.events.at(-1)!.id));
    assert.equal(rest.code, 1000);
    return { taskId, ids: [...first.events, ...rest.events].map((e) => e.id) };
  });
  const done = await Promise.all(runs);
  for (const { taskId, ids } of done) {
    assert.equal(await waitForEnd(redis, taskId), 'COMPLETED');
    assert.deepEqual(ids, await eventIds(redis, taskId), taskId);
    const { state, events } = keysOfTask(redis, taskId);
    assert.equal(await redis.call('CLUSTER', 'KEYSLOT', state), await redis.call('CLUSTER', 'KEYSLOT', events));
  }
  const partitions = new Set(done.map((d) => CLUSTER_LAYOUT.of(d.taskId).index));
  assert.ok(partitions.size >= 8, `48 tasks in ${partitions.size} of 12 partitions`);
  const shares = await keysPerMaster(c, done.map((d) => keysOfTask(redis, d.taskId).state));
  assert.equal(shares.reduce((a, b) => a + b, 0), 48);
  for (const share of shares) assert.ok(share > 0, `every master holds tasks: ${shares.join(', ')}`);
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING empty on every partition');

  const listed = await request(`${gateways[0].url}/tasks?limit=100`);
  assert.equal(listed.status, 200);
  const ids = (listed.body as { tasks: { task_id: string; created_at: number }[] }).tasks.map((x) => x.task_id);
  assert.deepEqual(new Set(ids), new Set(done.map((d) => d.taskId)), 'GET /tasks merges every partition\'s index');
});

test('cluster: a type with a concurrency limit is pinned to one partition, and its limit holds across workers', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const env = { TASK_CONCURRENCY: 'reference=2' };
  const gateway = await startGatewayInProcess(t, c, env);
  await startWorkerInProcess(t, c, { ...env, WORKER_CONCURRENCY: '4' });
  await startWorkerInProcess(t, c, { ...env, WORKER_CONCURRENCY: '4' });
  const ids = await Promise.all(Array.from({ length: 8 }, () => startTask(gateway.url, { stage_ms: 50 })));
  assert.equal(new Set(ids.map((id) => CLUSTER_LAYOUT.of(id).index)).size, 1, 'one partition');
  let most = 0;
  await waitFor(async () => {
    const statuses = await Promise.all(ids.map((id) => redis.hget(keyIn(CLUSTER_LAYOUT.of(id), taskKey(id)), 'status')));
    most = Math.max(most, statuses.filter((s) => s !== 'PENDING' && s !== 'COMPLETED').length);
    return statuses.every((s) => s === 'COMPLETED');
  }, 'every limited task to complete', 30_000);
  assert.ok(most <= 2, `at most 2 ran at once (saw ${most})`);
});

test('cluster: a tag feed merges every partition under one cursor; a follower that drops and resumes gets exactly each task\'s entries of XRANGE', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayInProcess(t, c);
  await startWorkerInProcess(t, c, { WORKER_CONCURRENCY: '32' });
  let marked!: (id: string) => void;
  const mark = new Promise<string>((resolve) => (marked = resolve));
  const first = followFeed(feedUrl(gateway.url, { tag: 'batch' }), { take: 5, onMark: marked, timeoutMs: 20_000 });
  assert.equal((await mark).split('_').length, CLUSTER_PARTITIONS, 'a cluster\'s cursor has one id per partition');
  const ids = await Promise.all(Array.from({ length: 24 }, () => startTask(gateway.url, { stage_ms: 50, tags: ['batch'] })));
  const entries: FeedEntry[] = [...(await first).entries];
  const ended = () => ids.every((id) => entries.some((e) => e.task_id === id && e.status === 'COMPLETED'));
  for (let attempt = 0; attempt < 100 && !ended(); attempt++) {
    // Each connection drops after 7 entries (a broken network), or ends once every task has ended.
    let done!: () => void;
    const stop = new Promise<void>((resolve) => (done = resolve));
    await followFeed(feedUrl(gateway.url, { tag: 'batch', lastEventId: entries.at(-1)!.id }), {
      take: 7,
      stop,
      timeoutMs: 20_000,
      onEntry: (e) => {
        entries.push(e);
        if (ended()) done();
      },
    });
  }
  assert.ok(ended(), 'every task\'s COMPLETED came');
  // The same entries again over SSE, replayed from the first cursor (Last-Event-ID).
  const replay = await watchSse(`${gateway.url}/sse/feed?tag=batch`, { lastEventId: await mark, take: entries.length });
  const replayed = replay.events as unknown as FeedEntry[];
  assert.equal(replay.ids.at(-1)!.split('_').length, CLUSTER_PARTITIONS);
  for (const id of ids) {
    const stored = await redis.xrange(keyIn(CLUSTER_LAYOUT.of(id), feedKey('batch')), '-', '+');
    const expected = stored.map(([, f]) => f).filter((f) => f[f.indexOf('task_id') + 1] === id).map((f) => f[f.indexOf('status') + 1]);
    assert.deepEqual(entries.filter((e) => e.task_id === id).map((e) => e.status), expected, id);
    assert.deepEqual(replayed.filter((e) => e.task_id === id).map((e) => e.status), expected, `SSE ${id}`);
  }
});

test('cluster: a feed cursor behind the trimming closes /ws/feed with 4410 and the short reason; FeedWatcher opens the feed again from its end', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayInProcess(t, c);
  // Partition 0's feed as its trimming leaves it (XDEL): a cursor from 0 is behind it.
  const key = keyIn(CLUSTER_LAYOUT.partitions[0]!, feedKey());
  await redis.xdel(key, (await redis.xadd(key, '*', 'task_id', 'trimmed'))!);
  const ws = await followFeed(feedUrl(gateway.url, { lastEventId: '0' }));
  assert.deepEqual([ws.code, ws.reason], [4410, FEED_RESET_SHORT_REASON], 'a cluster cursor does not fit a close reason');

  const resets: (string | undefined)[] = [];
  const entries: FeedEntry[] = [];
  let live!: () => void;
  const liveAgain = new Promise<void>((resolve) => (live = resolve));
  const watcher = new FeedWatcher({
    baseUrl: gateway.url,
    lastEventId: '0',
    backoff: { initialMs: 50, maxMs: 400 },
    onEntry: (e) => entries.push(e),
    onReset: (continueFrom) => resets.push(continueFrom),
    onState: (state) => {
      if (state.state === 'live' && resets.length > 0) live();
    },
  });
  t.after(() => watcher.close());
  watcher.start();
  await withTimeout(liveAgain, 'the feed live again after its reset');
  assert.deepEqual(resets, [undefined], 'reset without a cursor: the feed is opened again from its end');
  const taskId = await startTask(gateway.url, { stage_ms: 0 });
  await waitFor(() => entries.some((e) => e.task_id === taskId), 'the new task\'s entry');
  assert.equal(watcher.lastEventId?.split('_').length, CLUSTER_PARTITIONS);
});

test('cluster: a gateway\'s Redis connections depend on the cluster, not on how many tasks are watched', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const gateway = await startGatewayInProcess(t, c);
  await startWorkerInProcess(t, c, { WORKER_CONCURRENCY: '64' });
  const count = async () => (await c.clientNames()).filter((n) => n.startsWith('taskcast:gateway') || n.startsWith('taskcast:hub-reader')).length;
  // One watched task per round: the gateway's cluster client has met every node it reads from.
  const first = await Promise.all(Array.from({ length: 24 }, () => startTask(gateway.url, { stage_ms: 10 })));
  await Promise.all(first.map((id) => watchTask(wsUrl(gateway.url, id))));
  const few = await count();
  const ids = await Promise.all(Array.from({ length: 40 }, () => startTask(gateway.url, { stage_ms: 1000 })));
  const watchers = ids.map((id) => watchTask(wsUrl(gateway.url, id), { timeoutMs: 30_000 }));
  await waitFor(async () => (await Promise.all(ids.map((id) => eventIds(redis, id)))).every((e) => e.length >= 3), 'every watched task running');
  assert.equal(await count(), few, 'the same connections with 40 watched tasks');
  assert.ok(few <= CLUSTER_PARTITIONS + 6, `${few} connections: one hub reader per partition and the client's one per node`);
  for (const w of await Promise.all(watchers)) assert.equal(w.code, 1000);
});

test('cluster: /readyz reports refused writes when any master refuses them (OOM on one of three)', async (t) => {
  const c = await testCluster();
  const gateway = await startGatewayInProcess(t, c);
  assert.equal((await request(`${gateway.url}/readyz`)).status, 200);
  const last = (await c.masters()).at(-1)!;
  const node = createRedis(last.url, { name: 'test-admin' });
  t.after(async () => {
    await node.config('SET', 'maxmemory', '0');
    await closeRedis(node);
  });
  await ensureConnected(node);
  await node.config('SET', 'maxmemory', '1');
  const refused = await waitFor(async () => {
    const res = await request(`${gateway.url}/readyz`);
    return res.status === 503 ? res.body : undefined;
  }, '/readyz to answer 503');
  assert.deepEqual({ writes: refused.checks.writes, refused: refused.checks.refused }, { writes: 'refused', refused: 'OOM' });
  await node.config('SET', 'maxmemory', '0');
  await waitFor(async () => (await request(`${gateway.url}/readyz`)).status === 200, '/readyz to answer 200 again');
});

/** A connection of its own to one node, closed with `scope`. */
async function nodeClient(scope: Scope, url: string): Promise<Redis> {
  const client = createRedis(url, { name: 'test-node' });
  await ensureConnected(client);
  scope.after(() => closeRedis(client));
  return client;
}

/**
 * A copy of `taskId`'s keys under a new id of its partition, on its master alone (a script that
 * does not replicate, redis.set_repl), as a replica that is behind lacks a task; with that master
 * and its replica.
 */
async function ghostOf(c: RedisCluster, redis: Redis, scope: Scope, taskId: string) {
  const partition = CLUSTER_LAYOUT.of(taskId);
  const masters = await c.masters();
  const owner = masters[(await Promise.all(masters.map((m) => c.partitionsOf(m)))).findIndex((ps) => ps.includes(partition.index))]!;
  const master = await nodeClient(scope, owner.url);
  const replica = await nodeClient(scope, (await c.replicaOf(owner))!.url);
  await replica.call('READONLY');
  const ghost = idIn(partition, CLUSTER_PARTITIONS, randomUUID());
  const [from, to] = [keysOfTask(redis, taskId), keysOfTask(redis, ghost)];
  await master.eval(
    "redis.set_repl(redis.REPL_NONE) redis.call('COPY', KEYS[1], KEYS[3]) redis.call('COPY', KEYS[2], KEYS[4])",
    4, from.state, from.events, to.state, to.events,
  );
  assert.equal(await replica.exists(to.state, to.events), 0, 'the replica lacks the task');
  return { ghost, partition, keys: to, ids: await eventIds(redis, ghost), master, replica };
}

// A replica that is behind (resyncing after a failover or a slot move, for seconds) serves what it
// had, an empty dataset even. The gateway reads from replicas (REDIS_CLUSTER_WAIT_REPLICAS > 0), so
// such a replica's "no such task" is asked again of the master before it is an answer. Here a task
// exists on its master alone (ghostOf).
test('cluster: a task its replica lacks (behind) gets no 404, no 4404 at resume or from the hub\'s audit: the master is asked', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const scope = testScope(t);
  const gateway = await startGatewayInProcess(scope, c, { HUB_BLOCK_MS: '200' });
  await startWorkerInProcess(scope, c);
  const done = await startTask(gateway.url, { stage_ms: 0 });
  assert.equal(await waitForEnd(redis, done), 'COMPLETED');
  // Ended: its state, and a resume from its last event, come from the master.
  const ended = await ghostOf(c, redis, scope, done);
  assert.equal(ended.ids.length, 5);
  const state = await request(`${gateway.url}/tasks/${ended.ghost}`);
  assert.deepEqual([state.status, state.body.status], [200, 'COMPLETED']);
  const resumed = await watchTask(wsUrl(gateway.url, ended.ghost, ended.ids.at(-1)));
  assert.deepEqual([resumed.code, resumed.events], [1000, []], 'a resume from its last event ends at once');

  // Running (a copy taken mid-run, which no worker runs): a resume from its last event waits in
  // the hub for live events, and the hub's audits (every HUB_BLOCK_MS, each a TYPE of the task's two
  // keys on the replica) do not end it. Its terminal event, appended on the master, reaches the
  // replica and the watcher.
  const running = await startTask(gateway.url, { stage_ms: 5000 });
  await waitFor(async () => (await eventIds(redis, running)).length >= 2, 'the task running');
  const live = await ghostOf(c, redis, scope, running);
  const audits = async () => Number(/cmdstat_type:calls=(\d+)/.exec(await live.replica.info('commandstats'))?.[1] ?? 0);
  const before = await audits();
  let closed = false;
  const watching = watchTask(wsUrl(gateway.url, live.ghost, live.ids.at(-1)), { timeoutMs: 30_000 });
  void watching.finally(() => (closed = true));
  await waitFor(async () => closed || (await audits()) >= before + 6, 'three audits of the watched task on the replica');
  assert.equal(closed, false, `the watch ended: ${JSON.stringify(closed && (await watching))}`);
  await live.master.xadd(live.keys.events, '*', 'type', 'stage', 'status', 'COMPLETED', 'progress', '100', 'ts', String(Date.now()));
  const watched = await watching;
  assert.equal(watched.code, 1000, `closed ${watched.code} ${watched.reason}`);
  assert.deepEqual(watched.events.map((e) => [e.id, e.status]), [[(await eventIds(redis, live.ghost)).at(-1), 'COMPLETED']]);
});

// The gateway reads task state from the replicas, but replays, event pages, the output and feed
// pages from the masters (TaskStore.rangeAll, FeedStore): a replica that is behind would answer
// them short, or take a cursor from the master for one beyond its feed.
test('cluster: what a replica that is behind would answer short is read on the master: an events page, the output, a watch from the start, a feed cursor', async (t) => {
  const c = await testCluster();
  const redis = await clusterClient(t, c);
  const scope = testScope(t);
  const gateway = await startGatewayInProcess(scope, c);
  await startWorkerInProcess(scope, c);
  const done = await startTask(gateway.url, { type: 'typewriter', params: { words: 12, words_per_s: 1000 } });
  assert.equal(await waitForEnd(redis, done), 'COMPLETED');
  const { ghost, partition, ids, master } = await ghostOf(c, redis, scope, done);

  const pages: string[] = [];
  for (let after = ''; ;) {
    const page = await request(`${gateway.url}/tasks/${ghost}/events?limit=5${after ? `&after=${after}` : ''}`);
    assert.equal(page.status, 200);
    pages.push(...(page.body.events as { id: string }[]).map((e) => e.id));
    if (page.body.next_cursor === null) break;
    after = page.body.next_cursor as string;
  }
  assert.deepEqual(pages, ids, 'the pages hold every event of the master\'s XRANGE');

  const [output, original] = [await fetch(`${gateway.url}/tasks/${ghost}/output`), await fetch(`${gateway.url}/tasks/${done}/output`)];
  assert.equal(output.headers.get('taskcast-last-event-id'), ids.at(-1));
  const text = await output.text();
  assert.equal(text, await original.text());
  assert.equal(text.split(' ').length, 12);

  const watched = await watchTask(wsUrl(gateway.url, ghost));
  assert.equal(watched.code, 1000, `closed ${watched.code} ${watched.reason}`);
  assert.deepEqual(watched.events.map((e) => e.id), ids, 'a watch from the start gets every event at once');

  // A feed cursor from the master, past what its replica has of that partition's feed: followed,
  // not closed as expired (4410).
  const parts = await Promise.all(CLUSTER_LAYOUT.partitions.map(async (p) => (await redis.xrevrange(keyIn(p, feedKey()), '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0'));
  parts[partition.index] = String(await master.eval("redis.set_repl(redis.REPL_NONE) return redis.call('XADD', KEYS[1], '*', 'task_id', ARGV[1])", 1, keyIn(partition, feedKey()), ghost));
  const following = followFeed(feedUrl(gateway.url, { lastEventId: parts.join('_') }), { take: 1 });
  const next = await startTask(gateway.url, { stage_ms: 0 });
  const followed = await following;
  assert.equal(followed.code, 1006, `closed ${followed.code} ${followed.reason}`);
  assert.equal(followed.entries[0]?.task_id, next);
});
