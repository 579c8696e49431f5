import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { validate as isUuid } from 'uuid';
import { request, startTask } from '../helpers/http.js';
import { startWorkerInProcess } from '../helpers/in-process.js';
import { startGatewayProc, type ServiceProc } from '../helpers/processes.js';
import { suiteScope } from '../helpers/scope.js';
import { testRedisUrl } from '../helpers/redis.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

describe('request ids and log lines, against a gateway process', () => {
  let gateway: ServiceProc;
  const scope = suiteScope();

  before(async () => {
    const redisUrl = await testRedisUrl();
    gateway = await startGatewayProc(scope, redisUrl, { LOG_LEVEL: 'debug' });
    await startWorkerInProcess(scope, redisUrl);
  });

  const requestLine = (requestId: string) =>
    gateway.waitForLog((l) => l.msg === 'request' && l.requestId === requestId, `request line of ${requestId}`);

  test('a request without X-Request-Id gets a new one, returned and logged with route and taskId', async () => {
    const id = crypto.randomUUID();
    const res = await request(`${gateway.url}/tasks/${id}`);
    assert.equal(res.status, 404);
    const requestId = res.headers.get('x-request-id')!;
    assert.ok(isUuid(requestId), requestId);
    const line = await requestLine(requestId);
    assert.equal(line.taskId, id);
    assert.equal(line.route, '/tasks/:id');
    assert.equal(line.path, `/tasks/${id}`);
    assert.equal(line.status, 404);
    assert.equal(line.method, 'GET');
  });

  test('an incoming X-Request-Id is honoured and returned; a bad one is replaced', async () => {
    const mine = `trace-${crypto.randomUUID()}`;
    const res = await request(`${gateway.url}/tasks`, { body: { stage_ms: 0 }, headers: { 'x-request-id': mine } });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('x-request-id'), mine);
    const line = await requestLine(mine);
    assert.equal(line.taskId, res.body.task_id, 'the start request line carries the new task id');
    assert.equal(line.status, 202);

    for (const bad of ['has space', 'x'.repeat(129)]) {
      const r = await request(`${gateway.url}/nowhere`, { headers: { 'x-request-id': bad } });
      const given = r.headers.get('x-request-id')!;
      assert.ok(isUuid(given), `${JSON.stringify(bad.slice(0, 20))} replaced by ${given}`);
      assert.equal((await requestLine(given)).route, '(unmatched)');
    }
  });

  test('Authorization and query tokens never reach the logs', async () => {
    const secret = `s3cret-${crypto.randomUUID()}`;
    const requestId = crypto.randomUUID();
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await request(`${gateway.url}/tasks/${taskId}?token=${secret}&after=nope`, {
      headers: { authorization: `Bearer ${secret}`, 'x-request-id': requestId },
    });
    const result = await watchTask(`${wsUrl(gateway.url, taskId)}?token=${secret}`);
    assert.equal(result.code, 1000);
    await requestLine(requestId);
    await gateway.waitForLog((l) => l.msg === 'watch closed' && l.taskId === taskId, 'watch closed');
    const all = JSON.stringify(gateway.logs);
    assert.ok(!all.includes(secret), 'the secret appears in a log line');
  });

  test('WebSocket log lines carry taskId and connId', async () => {
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await watchTask(wsUrl(gateway.url, taskId));
    const opened = await gateway.waitForLog((l) => l.msg === 'watch connected' && l.taskId === taskId, 'watch connected');
    const closed = await gateway.waitForLog((l) => l.msg === 'watch closed' && l.taskId === taskId, 'watch closed');
    assert.equal(typeof opened.connId, 'string');
    assert.equal(closed.connId, opened.connId);
    assert.equal(closed.code, 1000);
  });
});
