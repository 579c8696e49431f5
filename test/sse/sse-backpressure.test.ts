import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendEvent, burstUntil } from '../helpers/append.js';
import { bigReplay } from '../helpers/big-replay.js';
import { liveBurst } from '../helpers/live-burst.js';
import { startTask } from '../helpers/http.js';
import { startGatewayProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { eventIds } from '../helpers/task-log.js';
import { sseUrl, stuckReader, watchSse } from '../helpers/sse-client.js';
import { withTimeout } from '../helpers/wait.js';

test('SSE: a replay far larger than WS_MAX_BUFFERED_BYTES is written as the reader takes it; a reader that stops is cut, then resumes exactly', async (t) => {
  const { gateway, taskId, all } = await bigReplay(t);

  const fast = await watchSse(sseUrl(gateway.url, taskId), { timeoutMs: 60_000 });
  assert.deepEqual([fast.status, fast.ids], [200, all]);

  const stuck = stuckReader(t, gateway.port, taskId);
  await gateway.waitForLog((l) => l.msg === 'slow SSE consumer; ending the stream' && l.taskId === taskId, 'the slow cut', 30_000);
  const { ids: got } = await stuck.resume();
  assert.ok(got.length > 0 && got.length < all.length, `the stopped reader got ${got.length} of ${all.length}`);
  assert.deepEqual(got, all.slice(0, got.length));

  const rest = await watchSse(sseUrl(gateway.url, taskId), { lastEventId: got.at(-1)!, timeoutMs: 60_000 });
  assert.deepEqual([...got, ...rest.ids], all);
});

test('SSE: a reader that keeps up is not cut when one live read brings more than WS_MAX_BUFFERED_BYTES', async (t) => {
  const { gateway, watched, all } = await liveBurst(t, (gw, taskId, onEvent) =>
    watchSse(sseUrl(gw.url, taskId), { onEvent, timeoutMs: 60_000 }),
  );
  assert.deepEqual(watched.ids, all);
  assert.ok(!gateway.logs.some((l) => l.msg === 'slow SSE consumer; ending the stream'));
});

test('SSE: a reader that stops while live events keep coming is cut holding at most WS_MAX_BUFFERED_BYTES plus one event, then resumes exactly', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayProc(t, url, { WS_MAX_BUFFERED_BYTES: '65536' });
  const taskId = await startTask(gateway.url);
  const stuck = stuckReader(t, gateway.port, taskId);
  // Its first bytes carry the replayed PENDING: what comes after is live.
  await withTimeout(stuck.started, 'the first bytes');

  // Each burst is 64 events of 16 KiB (1 MB) in one hub read, sixteen times the limit; they go
  // on until the loopback buffers are full and the gateway ends the stream.
  const cut = gateway.waitForLog((l) => l.msg === 'slow SSE consumer; ending the stream' && l.taskId === taskId, 'the slow cut', 60_000);
  await burstUntil(redis, taskId, 'x'.repeat(16 * 1024), cut);
  const { buffered } = await cut;
  assert.ok(Number(buffered) <= 65536 + 17 * 1024, `the gateway held ${String(buffered)} bytes for the reader`);

  await appendEvent(redis, taskId, { status: 'COMPLETED', progress: 100, terminal: true });
  // The gateway closed the connection at the cut, kept-alive as it was: no waiting for a reader
  // that does not read to take the response's last chunk.
  const { ids: got, lastChunk } = await stuck.resume();
  assert.equal(lastChunk, false);
  const all = await eventIds(redis, taskId);
  assert.ok(got.length > 1 && got.length < all.length, `the stopped reader got ${got.length} of ${all.length}`);
  assert.deepEqual(got, all.slice(0, got.length));

  const rest = await watchSse(sseUrl(gateway.url, taskId), { lastEventId: got.at(-1)!, timeoutMs: 60_000 });
  assert.deepEqual([...got, ...rest.ids], all);
});
