import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openLiteWs } from '../../scripts/bench/ws-lite.js';
import type { TaskEvent } from '../../src/wire/events.js';
import { appendEvent, appendHistory, burstUntil } from '../helpers/append.js';
import { bigReplay } from '../helpers/big-replay.js';
import { liveBurst } from '../helpers/live-burst.js';
import { startTask } from '../helpers/http.js';
import { startGatewayProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';
import { eventIds } from '../helpers/task-log.js';

test('a client that stops reading is closed with 4008 holding at most WS_MAX_BUFFERED_BYTES plus one event, then resumes exactly from its last id', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  // No worker: the test writes the events (large ones, many) through the production script.
  const gateway = await startGatewayProc(t, url, { WS_MAX_BUFFERED_BYTES: '65536' });
  const taskId = await startTask(gateway.url);

  const got: TaskEvent[] = [];
  let closed!: (c: { code: number; reason: string }) => void;
  const closing = new Promise<{ code: number; reason: string }>((resolve) => (closed = resolve));
  const slow = openLiteWs(gateway.port, `/ws/task/${taskId}`, {
    text: (d) => got.push(JSON.parse(d)),
    close: (code, reason) => closed({ code, reason }),
  });
  t.after(() => slow.destroy());
  await waitFor(() => got.length === 1, 'PENDING');
  slow.socket.pause();

  // Each burst is 64 events of 16 KiB (1 MB) in one hub read, sixteen times the limit; they go
  // on until the loopback buffers are full and the gateway cuts the client, which it does
  // holding at most the limit plus one event, however many events the read brought.
  const cut = gateway.waitForLog((l) => l.msg === 'slow consumer; closing with 4008' && l.taskId === taskId, 'the 4008 close', 60_000);
  await burstUntil(redis, taskId, 'x'.repeat(16 * 1024), cut);
  const { buffered } = await cut;
  assert.ok(Number(buffered) <= 65536 + 17 * 1024, `the gateway held ${String(buffered)} bytes for the client`);
  await appendEvent(redis, taskId, { status: 'COMPLETED', progress: 100, terminal: true });

  slow.socket.resume();
  const { code, reason } = await withTimeout(closing, 'the slow client to read up to the close frame', 60_000);
  assert.equal(code, 4008);
  assert.equal(reason, 'slow consumer');
  const all = await eventIds(redis, taskId);
  assert.ok(got.length > 1 && got.length < all.length, `the slow client got ${got.length} of ${all.length}`);

  const rest = await watchTask(wsUrl(gateway.url, taskId, got.at(-1)!.id), { timeoutMs: 60_000 });
  assert.equal(rest.code, 1000);
  assert.deepEqual([...got, ...rest.events].map((e) => e.id), all);
});

test('a client that keeps up is not cut when one live read brings more than WS_MAX_BUFFERED_BYTES', async (t) => {
  const { watched, all } = await liveBurst(t, (gateway, taskId, onEvent) =>
    watchTask(wsUrl(gateway.url, taskId), { onEvent, timeoutMs: 60_000 }),
  );
  assert.equal(watched.code, 1000);
  assert.deepEqual(watched.events.map((e) => e.id), all);
});

test('a replay far larger than WS_MAX_BUFFERED_BYTES waits for the reader: a fast one gets it all, one that stops is closed with 4008', async (t) => {
  const { gateway, taskId, all } = await bigReplay(t);

  const fast = await watchTask(wsUrl(gateway.url, taskId), { timeoutMs: 60_000 });
  assert.deepEqual([fast.code, fast.events.map((e) => e.id)], [1000, all]);

  const got: string[] = [];
  let closed!: (c: { code: number; reason: string }) => void;
  const closing = new Promise<{ code: number; reason: string }>((resolve) => (closed = resolve));
  const stalled = openLiteWs(gateway.port, `/ws/task/${taskId}`, {
    text: (d) => {
      got.push((JSON.parse(d) as TaskEvent).id);
      if (got.length === 1) stalled.socket.pause();
    },
    close: (code, reason) => closed({ code, reason }),
  });
  t.after(() => stalled.destroy());
  await gateway.waitForLog((l) => l.msg === 'slow consumer; closing with 4008' && l.taskId === taskId, 'the 4008 close', 30_000);
  stalled.socket.resume();
  const { code, reason } = await withTimeout(closing, 'the stalled client to read up to the close frame', 60_000);
  assert.deepEqual([code, reason], [4008, 'slow consumer']);
  assert.ok(got.length < all.length, `the stalled client got ${got.length} of ${all.length}`);
  const rest = await watchTask(wsUrl(gateway.url, taskId, got.at(-1)), { timeoutMs: 60_000 });
  assert.deepEqual([rest.code, [...got, ...rest.events.map((e) => e.id)]], [1000, all]);
});

for (const path of ['/ws', '/ws?batch=1']) test(`multiplexed ${path}: the whole connection is judged; a client that stops reading is closed with 4008 and each subscription resumes exactly from its cursor`, async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayProc(t, url, { WS_MAX_BUFFERED_BYTES: '65536' });
  const tasks = [await startTask(gateway.url), await startTask(gateway.url)];
  const got = new Map<string, string[]>(tasks.map((id) => [id, []]));
  let closed!: (c: { code: number; reason: string }) => void;
  const closing = new Promise<{ code: number; reason: string }>((resolve) => (closed = resolve));
  const slow = openLiteWs(gateway.port, path, {
    open: () => {
      for (const task of tasks) slow.send(JSON.stringify({ type: 'subscribe', task }));
    },
    text: (d) => {
      for (const m of [JSON.parse(d) as unknown].flat() as { id?: string; task_id?: string }[]) if (m.id !== undefined) got.get(m.task_id!)!.push(m.id);
    },
    close: (code, reason) => closed({ code, reason }),
  });
  t.after(() => slow.destroy());
  await waitFor(() => tasks.every((id) => got.get(id)!.length === 1), 'both PENDING events');
  slow.socket.pause();
  // Bursts on one task only: the connection's buffer is what counts.
  const cut = gateway.waitForLog((l) => l.msg === 'slow consumer; closing with 4008' && l.mux === true, 'the 4008 close', 60_000);
  await burstUntil(redis, tasks[0]!, 'x'.repeat(16 * 1024), cut);
  const { buffered } = await cut;
  assert.ok(Number(buffered) <= 65536 + 17 * 1024, `the gateway held ${String(buffered)} bytes for the client`);
  for (const task of tasks) await appendEvent(redis, task, { status: 'COMPLETED', progress: 100, terminal: true });
  slow.socket.resume();
  assert.deepEqual(await withTimeout(closing, 'the slow client to read up to the close frame', 60_000), { code: 4008, reason: 'slow consumer' });
  for (const task of tasks) {
    const rest = await watchTask(wsUrl(gateway.url, task, got.get(task)!.at(-1)!), { timeoutMs: 60_000 });
    assert.equal(rest.code, 1000);
    assert.deepEqual([...got.get(task)!, ...rest.events.map((e) => e.id)], await eventIds(redis, task));
  }
});

test('multiplexed /ws: live events of one task while another replays into a reader slower than the replay (but far faster than the live events) do not close it', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayProc(t, url, { WS_MAX_BUFFERED_BYTES: '262144', WS_REPLAY_STALL_MS: '5000' });
  const [long, live] = [await startTask(gateway.url), await startTask(gateway.url)];
  // 20 MB of history: more than loopback's socket buffers hold, so the replay fills the gateway's side.
  await appendHistory(redis, long, 1200, { note: 'x'.repeat(16 * 1024) });
  const got = new Map<string, string[]>([[long, []], [live, []]]);
  const ended = new Map<string, number>();
  let closed: { code: number; reason: string } | undefined;
  const reader = openLiteWs(gateway.port, '/ws?batch=1', {
    open: () => {
      for (const task of [live, long]) reader.send(JSON.stringify({ type: 'subscribe', task }));
    },
    text: (d) => {
      for (const m of JSON.parse(d) as { id?: string; task_id?: string; type?: string; task?: string; code?: number }[]) {
        if (m.id !== undefined) got.get(m.task_id!)!.push(m.id);
        else if (m.type === 'ended') ended.set(m.task!, m.code!);
      }
    },
    close: (code, reason) => (closed = { code, reason }),
  });
  t.after(() => reader.destroy());
  // Reads in bursts: 10 ms of every 50.
  const pacing = setInterval(() => {
    reader.socket.resume();
    setTimeout(() => reader.socket.pause(), 10);
  }, 50);
  t.after(() => clearInterval(pacing));
  await waitFor(() => got.get(live)!.length === 1 && got.get(long)!.length > 0, 'both subscriptions under way');
  while (!ended.has(long) && closed === undefined) {
    await appendEvent(redis, live, { status: 'PROCESSING', progress: 50 });
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await appendEvent(redis, live, { status: 'COMPLETED', progress: 100, terminal: true });
  await waitFor(() => ended.size === 2 || closed !== undefined, 'both subscriptions ended', 60_000);
  assert.equal(closed, undefined, `the connection was closed: ${JSON.stringify(closed)}`);
  assert.deepEqual([ended.get(long), ended.get(live)], [1000, 1000]);
  for (const task of [long, live]) assert.deepEqual(got.get(task), await eventIds(redis, task));
});
