import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openLiteWs } from '../../scripts/bench/ws-lite.js';
import { loadConfig } from '../../src/config.js';
import { startGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import { createRegistry } from '../../src/tasks/builtin/index.js';
import { appendHistory } from '../helpers/append.js';
import { startTask } from '../helpers/http.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { sseUrl, watchSse } from '../helpers/sse-client.js';
import { oneShot, waitFor, withTimeout } from '../helpers/wait.js';

test('close ends SSE streams at once, while a WebSocket that does not read still waits for its cut', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', WS_REPLAY_STALL_MS: '600000', WS_MAX_BUFFERED_BYTES: '65536' });
  const gateway = await startGateway({ redis, config, logger: createLogger('silent', 'test'), registry: createRegistry(config) });
  t.after(() => gateway.close());

  // A WebSocket stuck in the replay of 19 MB, far more than loopback buffers hold.
  const stuckTask = await startTask(gateway.url);
  await appendHistory(redis, stuckTask, 300, { note: 'x'.repeat(64 * 1024), complete: false });
  let frames = 0;
  const stuck = openLiteWs(gateway.port, `/ws/task/${stuckTask}`, { text: () => (frames += 1), close: () => undefined });
  t.after(() => stuck.destroy());
  await waitFor(() => frames > 0, 'the first replayed frame');
  stuck.socket.pause();

  const liveTask = await startTask(gateway.url);
  const first = oneShot();
  const reading = watchSse(sseUrl(gateway.url, liveTask), { onEvent: first.fire, timeoutMs: 60_000 });
  await withTimeout(first.fired, 'the PENDING event');

  void gateway.close();
  const watched = await reading;
  assert.deepEqual(watched.events.map((e) => e.status), ['PENDING']);
  // The stuck socket is cut 2 s after its 1001; the SSE stream did not wait for that.
  assert.equal(gateway.ws.connections, 1, 'the stuck WebSocket is still there when the SSE stream ends');
});
