import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openLiteWs } from '../../scripts/bench/ws-lite.js';
import type { TaskEvent } from '../../src/store/events.js';
import { appendEvent, appendHistory, burstUntil } from '../helpers/append.js';
import { bigReplay } from '../helpers/big-replay.js';
import { startTask } from '../helpers/http.js';
import { startGatewayProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';
import { eventIds } from '../helpers/task-log.js';

test('a client that stops reading is closed with 4008, then resumes exactly from its last id', async (t) => {
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

  // ~24 MB: more than the loopback socket buffers hold, so the gateway's send buffer must grow.
  await appendHistory(redis, taskId, 1500, { note: 'x'.repeat(16 * 1024), complete: false });
  await gateway.waitForLog((l) => l.msg === 'slow consumer; closing with 4008' && l.taskId === taskId, 'the 4008 close', 60_000);
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

test('a client that stops reading holds at most WS_MAX_BUFFERED_BYTES plus one event, however many events a read brings', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayProc(t, url, { WS_MAX_BUFFERED_BYTES: '65536' });
  const taskId = await startTask(gateway.url);
  let got = 0;
  const slow = openLiteWs(gateway.port, `/ws/task/${taskId}`, { text: () => (got += 1), close: () => undefined });
  t.after(() => slow.destroy());
  await waitFor(() => got === 1, 'PENDING');
  slow.socket.pause();

  // Each burst is 64 events of 16 KiB (1 MB) in one hub read, sixteen times the limit; they go
  // on until the loopback buffers are full and the gateway cuts the client.
  const cut = gateway.waitForLog((l) => l.msg === 'slow consumer; closing with 4008' && l.taskId === taskId, 'the 4008 close', 60_000);
  await burstUntil(redis, taskId, 'x'.repeat(16 * 1024), cut);
  const { buffered } = await cut;
  assert.ok(Number(buffered) <= 65536 + 17 * 1024, `the gateway held ${String(buffered)} bytes for the client`);
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
