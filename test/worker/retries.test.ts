import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { request, startTask } from '../helpers/http.js';
import { startGatewayProc, startWorkerProc, testTasksEnv, type ServiceProc } from '../helpers/processes.js';
import { suiteScope } from '../helpers/scope.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { assertEventLog, assertNothingPending, waitForEnd } from '../helpers/task-log.js';

const TEST_TASKS = testTasksEnv();

describe('retries of a throwing handler, and task params', () => {
  let gateway: ServiceProc;
  let redisUrl: string;
  const scope = suiteScope();
  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayProc(scope, redisUrl, TEST_TASKS);
    await startWorkerProc(scope, redisUrl, { ...TEST_TASKS, MAX_ATTEMPTS: '3', RETRY_BASE_MS: '50' });
  });

  test('a handler that always throws: RETRYING twice with attempt and error, then FAILED with the error', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { type: 'flaky', params: {} });
    assert.equal(await waitForEnd(redis, taskId), 'FAILED');
    const events = await assertEventLog(redis, taskId, ['PENDING', 'STARTED', 'RETRYING', 'RETRYING', 'FAILED']);
    assert.deepEqual(
      events.slice(2).map((e) => [e.status, e.attempt, e.error, e.progress]),
      [
        ['RETRYING', 2, 'boom on attempt 1', 25],
        ['RETRYING', 3, 'boom on attempt 2', 25],
        ['FAILED', 3, 'boom on attempt 3', 25],
      ],
    );
    await assertNothingPending(redis);
    const state = await request(`${gateway.url}/tasks/${taskId}`);
    assert.equal(state.body.status, 'FAILED');
    assert.equal(state.body.error, 'boom on attempt 3');
    assert.equal(state.body.attempt, 3);
  });

  test('a handler that throws once: one RETRYING, the recorded stage is not repeated, then COMPLETED', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { type: 'flaky', params: { fail_attempts: 1 } });
    assert.equal(await waitForEnd(redis, taskId), 'COMPLETED');
    const events = await assertEventLog(redis, taskId, ['PENDING', 'STARTED', 'RETRYING', 'PROCESSING', 'COMPLETED']);
    assert.equal(events[2]!.attempt, 2);
    assert.equal(events[2]!.error, 'boom on attempt 1');
    await assertNothingPending(redis);
  });

  test('invalid params answer 400 INVALID_PARAMS listing every issue; nothing is created', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const before = await redis.dbsize();
    const bad = await request(`${gateway.url}/tasks`, {
      body: { type: 'flaky', params: { fail_attempts: -1, stage_ms: 'slow', extra: true } },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_PARAMS');
    const paths = (bad.body.error.details as { path: string[] }[]).map((i) => i.path.join('.')).sort();
    assert.deepEqual(paths, ['', 'fail_attempts', 'stage_ms']);
    const ref = await request(`${gateway.url}/tasks`, { body: { type: 'reference', params: { stage_ms: 1.5 } } });
    assert.equal(ref.status, 400);
    assert.equal(ref.body.error.code, 'INVALID_PARAMS');
    assert.deepEqual(ref.body.error.details.map((i: { path: string[] }) => i.path), [['stage_ms']]);
    const unknown = await request(`${gateway.url}/tasks`, { body: { type: 'nope' } });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.code, 'UNKNOWN_TASK_TYPE');
    assert.ok(unknown.body.error.details.known.includes('flaky'));
    assert.equal(await redis.dbsize(), before, 'no key was written');
  });

  test('valid params are stored with their defaults filled in', async () => {
    const res = await request(`${gateway.url}/tasks`, { body: { type: 'reference', params: { stage_ms: 0 } } });
    assert.equal(res.status, 202);
    assert.deepEqual(res.body.params, { stage_ms: 0 });
    const flaky = await request(`${gateway.url}/tasks`, { body: { type: 'flaky', params: { fail_attempts: 0 } } });
    assert.equal(flaky.status, 202);
    assert.deepEqual(flaky.body.params, { fail_attempts: 0, stage_ms: 0 });
  });
});
