import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { validate as isUuid } from 'uuid';
import { eventsKey, taskKey } from '../../src/store/keys.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { suiteScope } from '../helpers/scope.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { eventIds } from '../helpers/task-log.js';

describe('HTTP API', () => {
  let gw: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    gw = await startGatewayInProcess(scope, redisUrl, { STAGE_MS: '1234' });
    await startWorkerInProcess(scope, redisUrl);
  });

  test('POST /start-task without a body starts the reference task with STAGE_MS', async () => {
    const res = await request(`${gw.url}/start-task`, { method: 'POST' });
    assert.equal(res.status, 202);
    assert.ok(isUuid(res.body.task_id));
    assert.equal(res.body.status, 'PENDING');
    assert.equal(res.body.progress, 0);
    assert.equal(res.body.type, 'reference');
    assert.deepEqual(res.body.params, { stage_ms: 1234 });
    assert.match(res.body.last_event_id, /^\d+-\d+$/);
    assert.equal(res.headers.get('location'), `/tasks/${res.body.task_id}`);
  });

  test('POST /tasks with stage_ms, with type and params, and with an empty JSON object', async () => {
    for (const body of [{ stage_ms: 0 }, { type: 'reference', params: { stage_ms: 600000 } }, {}]) {
      const res = await request(`${gw.url}/tasks`, { body });
      assert.equal(res.status, 202, JSON.stringify(body));
      assert.equal(res.body.status, 'PENDING');
    }
  });

  test('invalid bodies get 400/413/415 with a JSON error code', async () => {
    const cases: [string, { raw?: string; body?: unknown; headers?: Record<string, string> }, number, string][] = [
      ['negative stage_ms', { body: { stage_ms: -1 } }, 400, 'INVALID_PARAMS'],
      ['fractional stage_ms', { body: { stage_ms: 1.5 } }, 400, 'INVALID_PARAMS'],
      ['huge stage_ms', { body: { stage_ms: 600001 } }, 400, 'INVALID_PARAMS'],
      ['string stage_ms', { body: { stage_ms: '100' } }, 400, 'INVALID_PARAMS'],
      ['unknown param', { body: { params: { nope: 1 } } }, 400, 'INVALID_PARAMS'],
      ['unknown field', { body: { stage_ms: 1, extra: true } }, 400, 'INVALID_BODY'],
      ['stage_ms twice', { body: { stage_ms: 2, params: { stage_ms: 1 } } }, 400, 'INVALID_BODY'],
      ['stage_ms twice, equal', { body: { stage_ms: 1, params: { stage_ms: 1 } } }, 400, 'INVALID_BODY'],
      ['array body', { body: [1] }, 400, 'INVALID_BODY'],
      ['unknown type', { body: { type: 'nope' } }, 400, 'UNKNOWN_TASK_TYPE'],
      ['malformed JSON', { raw: '{"stage_ms":', headers: { 'content-type': 'application/json' } }, 400, 'INVALID_BODY'],
      ['wrong content type', { raw: 'stage_ms=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['huge body', { raw: JSON.stringify({ params: { pad: 'x'.repeat(20000) } }), headers: { 'content-type': 'application/json' } }, 413, 'PAYLOAD_TOO_LARGE'],
    ];
    for (const [name, init, status, code] of cases) {
      const res = await request(`${gw.url}/tasks`, { method: 'POST', ...init });
      assert.equal(res.status, status, name);
      assert.equal(res.body.error.code, code, name);
      assert.equal(typeof res.body.error.message, 'string', name);
    }
    const listed = await request(`${gw.url}/tasks`, { body: { stage_ms: -5 } });
    assert.ok(Array.isArray(listed.body.error.details), 'zod issues are listed');
  });

  test('GET /tasks/<id>: state with last_event_id; 404 unknown; 400 not a UUID', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const id = await startTask(gw.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(id), 'status')) === 'COMPLETED', 'completion');
    const res = await request(`${gw.url}/tasks/${id}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'COMPLETED');
    assert.equal(res.body.progress, 100);
    const lastId = (await redis.xrevrange(eventsKey(id), '+', '-', 'COUNT', 1))[0]?.[0];
    assert.equal(res.body.last_event_id, lastId);

    const missing = await request(`${gw.url}/tasks/7d444840-9dc0-4e52-9b3c-1f5a1f0c9a11`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'TASK_NOT_FOUND');
    const bad = await request(`${gw.url}/tasks/abc`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_TASK_ID');
  });

  test('GET /tasks/<id>/events equals XRANGE; ?after is exclusive', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const id = await startTask(gw.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(id), 'status')) === 'COMPLETED', 'completion');
    const ids = await eventIds(redis, id);
    const all = await request(`${gw.url}/tasks/${id}/events`);
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.events.map((e: { id: string }) => e.id), ids);
    assert.deepEqual(all.body.events.map((e: { status: string }) => e.status),
      ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED']);
    const after2 = await request(`${gw.url}/tasks/${id}/events?after=${ids[1]}`);
    assert.deepEqual(after2.body.events.map((e: { id: string }) => e.id), ids.slice(2));
    const afterLast = await request(`${gw.url}/tasks/${id}/events?after=${ids.at(-1)}`);
    assert.deepEqual(afterLast.body.events, []);
    const afterGreatest = await request(`${gw.url}/tasks/${id}/events?after=18446744073709551615-18446744073709551615`);
    assert.deepEqual([afterGreatest.status, afterGreatest.body.events], [200, []]);
    const repeated = await request(`${gw.url}/tasks/${id}/events?after=${ids[2]}&after=${ids[0]}`);
    assert.deepEqual(repeated.body.events.map((e: { id: string }) => e.id), ids.slice(3));
    const bad = await request(`${gw.url}/tasks/${id}/events?after=abc`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_EVENT_ID');
    // A misspelt `after` would otherwise give every event again, as if none had been read.
    for (const query of [`afer=${ids[1]}`, `after=${ids[1]}&token=x`]) {
      const unknown = await request(`${gw.url}/tasks/${id}/events?${query}`);
      assert.deepEqual([unknown.status, unknown.body.error.code], [400, 'INVALID_QUERY'], query);
      assert.match(JSON.stringify(unknown.body.error.details), /unrecognized|afer|token/i, query);
    }
    const missing = await request(`${gw.url}/tasks/7d444840-9dc0-4e52-9b3c-1f5a1f0c9a11/events`);
    assert.equal(missing.status, 404);
  });

  test('GET / serves the page; unknown routes get a JSON 404', async () => {
    const page = await request(`${gw.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(String(page.body), /Start New Task/);
    const nope = await request(`${gw.url}/nope`);
    assert.equal(nope.status, 404);
    assert.equal(nope.body.error.code, 'NOT_FOUND');
    const res = await request(`${gw.url}/start-task`, { method: 'GET' });
    assert.equal(res.status, 405);
    assert.equal(res.body.error.code, 'METHOD_NOT_ALLOWED');
    assert.match(res.headers.get('allow') ?? '', /POST/);
  });
});
