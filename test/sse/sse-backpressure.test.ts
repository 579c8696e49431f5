import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { bigReplay } from '../helpers/big-replay.js';
import { sseUrl, watchSse } from '../helpers/sse-client.js';
import { withTimeout } from '../helpers/wait.js';

test('SSE: a replay far larger than WS_MAX_BUFFERED_BYTES is written as the reader takes it; a reader that stops is cut, then resumes exactly', async (t) => {
  const { gateway, taskId, all } = await bigReplay(t);

  const fast = await watchSse(sseUrl(gateway.url, taskId), { timeoutMs: 60_000 });
  assert.deepEqual([fast.status, fast.ids], [200, all]);

  // A raw HTTP client that stops reading after the first bytes, as a stuck browser tab would.
  const socket = connect(gateway.port, '127.0.0.1');
  t.after(() => socket.destroy());
  let raw = '';
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  socket.on('data', (d: Buffer) => {
    if (raw === '') socket.pause();
    raw += d.toString('latin1');
  });
  socket.write(`GET /sse/task/${taskId} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n`);
  await gateway.waitForLog((l) => l.msg === 'slow SSE consumer; ending the stream' && l.taskId === taskId, 'the slow cut', 30_000);
  socket.resume();
  await withTimeout(ended, 'the cut stream to end', 60_000);
  const got = [...raw.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]!);
  assert.ok(got.length > 0 && got.length < all.length, `the stopped reader got ${got.length} of ${all.length}`);
  assert.deepEqual(got, all.slice(0, got.length));

  const rest = await watchSse(sseUrl(gateway.url, taskId), { lastEventId: got.at(-1)!, timeoutMs: 60_000 });
  assert.deepEqual([...got, ...rest.ids], all);
});
