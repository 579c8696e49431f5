import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { request } from '../helpers/http.js';
import { startGatewayProc, type ServiceProc } from '../helpers/processes.js';
import { rawHttpNeverClosing, upgrade, upgradeRequest } from '../helpers/raw.js';
import { testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';

const API = 'tok-raw-response-5d1e';

/**
 * Answers written on a bare socket (refused upgrades, requests Node's parser rejects) close the
 * connection from the server's side, even when the peer never closes its own.
 */
describe('raw responses, to a peer that never closes', () => {
  let gw: ServiceProc;
  let taskId: string;
  let token: string;
  const scope = suiteScope();

  before(async () => {
    const redisUrl = await testRedisUrl();
    gw = await startGatewayProc(scope, redisUrl, {
      API_TOKENS: API,
      TOKEN_SECRET: 'raw-response-suite-secret-0123456789abcdef',
      WS_MAX_TOTAL: '1',
    });
    // No worker: the task stays PENDING, so its one watch holds the only slot.
    const res = await request(`${gw.url}/tasks`, { headers: { authorization: `Bearer ${API}` }, body: { stage_ms: 0 } });
    assert.equal(res.status, 202);
    taskId = res.body.task_id;
    token = res.body.watch_token;
    const holder = await upgrade(`${gw.url.replace('http', 'ws')}/ws/task/${taskId}?token=${encodeURIComponent(token)}`);
    assert.equal(holder.status, 101);
    scope.after(() => holder.ws!.terminate());
  });

  const cases: [string, () => string, number, string][] = [
    ['upgrade over WS_MAX_TOTAL', () => upgradeRequest(gw.port, `/ws/task/${taskId}?token=${encodeURIComponent(token)}`), 503, 'TOO_MANY_CONNECTIONS'],
    ['upgrade from a foreign origin', () => upgradeRequest(gw.port, `/ws/task/${taskId}`, { Origin: 'https://evil.example' }), 403, 'FORBIDDEN_ORIGIN'],
    ['upgrade without a token', () => upgradeRequest(gw.port, `/ws/task/${taskId}`), 401, 'UNAUTHORIZED'],
    ['upgrade of an unknown path', () => upgradeRequest(gw.port, '/ws/nope'), 404, 'NOT_FOUND'],
    ['a request that is not HTTP', () => 'NOT HTTP AT ALL\r\n\r\n', 400, 'BAD_REQUEST'],
  ];
  test('a HEAD upgrade is refused with the status and headers alone: no body, its Content-Length kept', async () => {
    for (const [path, status] of [[`/ws/task/${taskId}`, 401], ['/ws/nope', 404]] as const) {
      const res = await rawHttpNeverClosing(gw.port, upgradeRequest(gw.port, path).replace(/^GET /, 'HEAD '));
      assert.equal(res.status, status, path);
      assert.equal(res.body, '', path);
      assert.ok(Number(res.headers['content-length']) > 0, path);
    }
  });

  for (const [name, build, status, code] of cases) {
    test(`${name}: ${status} ${code}, then the server closes the connection`, async () => {
      const res = await rawHttpNeverClosing(gw.port, build());
      assert.equal(res.status, status);
      assert.equal(res.body.error.code, code);
    });
  }
});
