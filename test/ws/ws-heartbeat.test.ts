import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startTask } from '../helpers/http.js';
import { startGatewayProc } from '../helpers/processes.js';
import { testRedisUrl } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { wsUrl } from '../helpers/ws-client.js';

const PING_MS = 150;

/**
 * A client that counts the server's pings; with autoPong false it never answers them. `dialedAt`
 * is taken before it connects, so no delay of this process's event loop makes it later than the
 * moment the gateway took the socket.
 */
function client(url: string, autoPong: boolean) {
  const state = { pings: 0, messages: 0, dialedAt: Date.now(), closedAt: 0, code: 0 };
  const ws = new WebSocket(url, { autoPong });
  ws.on('ping', () => (state.pings += 1));
  ws.on('message', () => (state.messages += 1));
  const closed = new Promise<void>((resolve) =>
    ws.on('close', (code) => {
      state.closedAt = Date.now();
      state.code = code;
      resolve();
    }),
  );
  return { ws, state, closed };
}

test('pings every WS_PING_MS; a socket that misses its pong is terminated, one that answers stays', async (t) => {
  const gateway = await startGatewayProc(t, await testRedisUrl(), { WS_PING_MS: String(PING_MS) });
  // No worker runs: the task stays PENDING, so nothing but the heartbeat ends a socket.
  const taskId = await startTask(gateway.url, { stage_ms: 0 });
  const live = client(wsUrl(gateway.url, taskId), true);
  const mute = client(wsUrl(gateway.url, taskId), false);
  t.after(() => {
    live.ws.terminate();
    mute.ws.terminate();
  });

  await withTimeout(mute.closed, 'the silent socket to be terminated', 10_000);
  assert.equal(mute.state.code, 1006, 'terminated without a close frame');
  assert.ok(mute.state.pings >= 1, `pinged before being cut (${mute.state.pings})`);
  assert.equal(mute.state.messages, 1, 'it had its PENDING event');
  assert.ok(mute.state.closedAt - mute.state.dialedAt >= PING_MS, 'not before a ping interval passed');

  await waitFor(() => live.state.pings >= mute.state.pings + 3, 'the answering socket to go on being pinged');
  assert.equal(live.ws.readyState, WebSocket.OPEN, 'a socket that answers its pings stays open');
  assert.equal(live.state.messages, 1);
});
