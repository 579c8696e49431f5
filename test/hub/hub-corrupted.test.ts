import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventsKey, taskKey } from '../../src/store/keys.js';
import { TaskStore } from '../../src/store/task-store.js';
import type { TaskEvent } from '../../src/wire/events.js';
import { appendEvent } from '../helpers/append.js';
import { startGatewayInProcess } from '../helpers/in-process.js';
import { scrape } from '../helpers/metrics.js';
import { MuxClient } from '../helpers/mux-client.js';
import { startGatewayProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { sseUrl, watchSse } from '../helpers/sse-client.js';
import { eventIds } from '../helpers/task-log.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

test("a watched task whose stream is corrupted is closed with 4409; the gateway's other watchers never notice", async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const store = new TaskStore(redis);
  const gateway = await startGatewayProc(t, url);
  const start = async () => (await store.start('reference', {})).state.task_id;
  const [bad, a, b] = [await start(), await start(), await start()];

  // The keys of every XREAD the gateway's hub sends, seen through MONITOR.
  const reads: string[][] = [];
  const monitor = await redis.monitor();
  t.after(() => monitor.disconnect());
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() !== 'xread') return;
    const rest = args.slice(args.findIndex((x) => x.toUpperCase() === 'STREAMS') + 1);
    reads.push(rest.slice(0, rest.length / 2));
  });

  const seen = new Map<string, { id: string; at: number }[]>([[a, []], [b, []]]);
  const watch = (taskId: string) =>
    watchTask(wsUrl(gateway.url, taskId), { timeoutMs: 60_000, onEvent: (e: TaskEvent) => seen.get(taskId)?.push({ id: e.id, at: Date.now() }) });
  const watches = { bad: watch(bad), a: watch(a), b: watch(b) };
  const all = [eventsKey(bad), eventsKey(a), eventsKey(b)];
  await waitFor(() => reads.some((keys) => all.every((k) => keys.includes(k))), 'one hub read of all three streams');

  await redis.set(eventsKey(bad), 'not a stream');

  // Live events of a and b, one pair at a time: each arrives promptly, whatever the hub's read of
  // the corrupted stream does meanwhile.
  const lags: number[] = [];
  for (let i = 0; i < 6; i++) {
    const last = i === 5;
    const e = { status: last ? 'COMPLETED' : 'PROCESSING', progress: last ? 100 : 50, terminal: last };
    const sentAt = Date.now();
    const ids = [await appendEvent(redis, a, e), await appendEvent(redis, b, e)];
    await waitFor(() => seen.get(a)!.some((s) => s.id === ids[0]) && seen.get(b)!.some((s) => s.id === ids[1]), `event ${i} of a and b`, 5000);
    for (const [k, taskId] of [a, b].entries()) lags.push(seen.get(taskId)!.find((s) => s.id === ids[k])!.at - sentAt);
  }
  assert.ok(Math.max(...lags) < 1000, `every live event arrives promptly (lags ${lags.join(', ')} ms)`);

  const [ra, rb] = await Promise.all([watches.a, watches.b]);
  assert.equal(ra.code, 1000);
  assert.equal(rb.code, 1000);
  assert.deepEqual(ra.events.map((e) => e.id), await eventIds(redis, a), 'a got every event exactly once, in order');
  assert.deepEqual(rb.events.map((e) => e.id), await eventIds(redis, b), 'b got every event exactly once, in order');

  // The corrupted watch ends at the hub's next read, at the latest when its block (10 s) runs out.
  const rbad = await withTimeout(watches.bad, 'the corrupted watch to close', 20_000);
  assert.equal(rbad.code, 4409);
  assert.match(rbad.reason, /^task \S+ is corrupted: WRONGTYPE/);
  assert.deepEqual(rbad.events.map((e) => e.status), ['PENDING'], 'its replay, then nothing');
  const isolated = gateway.logs.filter((l) => l.msg === 'corrupted stream left the read set; its watchers are ended');
  assert.deepEqual(isolated.map((l) => l.taskId), [bad]);
  assert.deepEqual(gateway.logs.filter((l) => l.msg === 'hub read failed; backing off'), [], 'no backoff: the others were read again at once');
});

test('watched tasks whose keys vanish end with 4404 (WebSocket, /ws, SSE), one whose hash turns into a set with 4409; a new task is watched as usual', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const store = new TaskStore(redis);
  // No worker: the tasks stay PENDING, so their watchers wait on the hub. The audit runs every HUB_BLOCK_MS.
  const gateway = await startGatewayInProcess(t, url, { HUB_BLOCK_MS: '300' });
  const start = async () => (await store.start('reference', {})).state.task_id;
  const [deleted, flushed, corrupted] = [await start(), await start(), await start()];

  const ws = watchTask(wsUrl(gateway.url, deleted), { timeoutMs: 20_000 });
  const sse = watchSse(sseUrl(gateway.url, deleted), { timeoutMs: 20_000 });
  const mux = await MuxClient.open(t, gateway.url);
  mux.send({ type: 'subscribe', task: flushed });
  const bad = watchTask(wsUrl(gateway.url, corrupted), { timeoutMs: 20_000 });
  await waitFor(async () => (await scrape(gateway.url)).get('taskcast_hub_streams') === 3, 'the hub to read the three streams');

  await redis.del(taskKey(deleted), eventsKey(deleted));
  await redis.del(taskKey(flushed), eventsKey(flushed));
  // In one transaction: an audit that met the hash absent in between would say gone, not corrupted.
  await redis.multi().del(taskKey(corrupted)).sadd(taskKey(corrupted), 'x').exec();

  const gone = await ws;
  assert.deepEqual([gone.events.map((e) => e.status), gone.code, gone.reason], [['PENDING'], 4404, `task ${deleted} not found: its keys are gone`]);
  const sseResult = await sse;
  assert.deepEqual([sseResult.status, sseResult.events.map((e) => e.status)], [200, ['PENDING']], 'the SSE stream ends after its replay');
  assert.equal((await watchSse(sseUrl(gateway.url, deleted, sseResult.ids.at(-1)))).status, 404, 'and its resume is told the task is gone');
  const ended = await mux.ended(flushed);
  assert.deepEqual([mux.trace(flushed), ended.reason], [['subscribed', 'event PENDING', 'ended 4404'], `task ${flushed} not found: its keys are gone`]);
  const wrong = await bad;
  assert.equal(wrong.code, 4409);
  assert.match(wrong.reason, /holds a set/);
  assert.ok(`task ${corrupted} is corrupted: WRONGTYPE ${taskKey(corrupted)} holds a set, not a hash`.startsWith(wrong.reason.replace(/\.\.\.$/, '')), wrong.reason);
  assert.deepEqual(
    gateway.logs.filter((l) => l.msg === 'watched task is gone or corrupted; its watchers are ended').map((l) => l.taskId).sort(),
    [deleted, flushed, corrupted].sort(),
  );

  const next = await start();
  const live = watchTask(wsUrl(gateway.url, next), { timeoutMs: 20_000 });
  await waitFor(async () => (await scrape(gateway.url)).get('taskcast_hub_streams') === 1, 'the hub to read the new stream');
  await appendEvent(redis, next, { status: 'COMPLETED', progress: 100, terminal: true });
  const done = await live;
  assert.deepEqual([done.events.map((e) => e.id), done.code], [await eventIds(redis, next), 1000]);
});
