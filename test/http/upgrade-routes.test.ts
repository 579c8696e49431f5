import assert from 'node:assert/strict';
import { test } from 'node:test';
import { API_TOKEN, AUTH_ENV } from '../helpers/auth.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { rawHttp, upgrade } from '../helpers/raw.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { eventIds } from '../helpers/task-log.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

const TASK_ID = '6f1c2a4e-8b7d-4c3e-9f10-2a3b4c5d6e7f';
const WS_PATHS = [`/ws/task/${TASK_ID}`, '/ws/feed', '/ws/feed?tag=invoices', '/ws'];

test('a plain GET of a WebSocket endpoint answers 426 UPGRADE_REQUIRED with Upgrade: websocket; the WebSocket on the same path still works', async (t) => {
  const redisUrl = await testRedisUrl();
  const gateway = await startGatewayInProcess(t, redisUrl);
  await startWorkerInProcess(t, redisUrl);
  for (const path of WS_PATHS) {
    const res = await request(`${gateway.url}${path}`);
    assert.equal(res.status, 426, path);
    assert.equal(res.headers.get('upgrade'), 'websocket', path);
    assert.equal(res.body.error.code, 'UPGRADE_REQUIRED', path);
    assert.match(res.body.error.message, /WebSocket endpoint: open it with a WebSocket client \(wscat -c ws:\/\/<gateway>\/ws/, path);
  }
  const raw = await rawHttp(gateway.port, `GET /ws/feed HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  assert.deepEqual([raw.status, raw.headers.upgrade, raw.headers.connection], [426, 'websocket', 'Upgrade']);
  // Paths that are no endpoint stay 404, matched as the WebSocket server matches them (exactly: a
  // trailing slash or another case is another path); another method is 405 naming GET.
  const notEndpoints = ['/ws/task', '/ws/task/a/b', '/ws/feeds', '/wss', '/ws/', '/WS', '/ws/Feed', '/ws/feed/', `/ws/task/${TASK_ID}/`, `/Ws/Task/${TASK_ID}`];
  for (const path of notEndpoints) {
    assert.equal((await request(`${gateway.url}${path}`)).status, 404, path);
    assert.equal((await upgrade(`${gateway.url.replace('http', 'ws')}${path}`)).status, 404, `${path} (handshake)`);
  }
  const post = await request(`${gateway.url}/ws`, { method: 'POST', body: {} });
  assert.equal(post.status, 405);
  assert.match(post.headers.get('allow') ?? '', /\bGET\b/);

  const redis = await redisFor(t, redisUrl);
  const taskId = await startTask(gateway.url, { stage_ms: 0 });
  const watch = await watchTask(wsUrl(gateway.url, taskId));
  assert.equal(watch.code, 1000);
  assert.deepEqual(watch.events.map((e) => e.id), await eventIds(redis, taskId));
});

test('auth on: a plain GET of a WebSocket endpoint is refused 401 without a token, as its handshake would be; with one, 426', async (t) => {
  const gateway = await startGatewayInProcess(t, await testRedisUrl(), AUTH_ENV);
  for (const path of [`/ws/task/${TASK_ID}`, '/ws/feed']) {
    const refused = await request(`${gateway.url}${path}`);
    assert.equal(refused.status, 401, path);
    assert.equal(refused.body.error.code, 'UNAUTHORIZED', path);
    const res = await request(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(res.status, 426, path);
    assert.equal(res.body.error.code, 'UPGRADE_REQUIRED', path);
  }
  // `/ws` checks each subscription, not the handshake: its plain GET needs no token.
  assert.equal((await request(`${gateway.url}/ws`)).status, 426);
});
