import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { startedTaskSchema } from '../../src/http/api-schemas.js';
import { COMMANDS_STREAM, TASKS_INDEX } from '../../src/store/keys.js';
import { request } from '../helpers/http.js';
import { startGatewayInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { startRestartableGateway } from '../helpers/gateway-restart.js';
import { rawHttp } from '../helpers/raw.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { suiteScope, testScope } from '../helpers/scope.js';

const TOKENS = { API_TOKENS: 'token-alpha,token-beta', TOKEN_SECRET: 'x'.repeat(32) };

const post = (base: string, key: string | undefined, body: unknown, headers: Record<string, string> = {}, path = '/tasks') =>
  request(`${base}${path}`, { method: 'POST', body, headers: { ...headers, ...(key === undefined ? {} : { 'Idempotency-Key': key }) } });

describe('POST /tasks with Idempotency-Key', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl, { TASK_TTL_S: '3600', IDEMPOTENCY_TTL_S: '600' });
  });

  test('50 concurrent identical requests start one task; the others answer 200 with it', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const commandsBefore = await redis.xlen(COMMANDS_STREAM);
    const indexBefore = await redis.zcard(TASKS_INDEX);
    const body = { params: { stage_ms: 60_000 }, tags: ['burst'] };
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(gateway.url, 'order-50', body)));

    const created = answers.filter((a) => a.status === 202);
    const replayed = answers.filter((a) => a.status === 200);
    assert.equal(created.length, 1, JSON.stringify(answers.map((a) => a.status)));
    assert.equal(replayed.length, 49);
    const taskId = created[0]!.body.task_id;
    for (const a of answers) {
      assert.equal(a.body.task_id, taskId);
      assert.equal(a.headers.get('location'), `/tasks/${taskId}`);
      startedTaskSchema.parse(a.body);
    }
    assert.equal(created[0]!.headers.get('idempotent-replayed'), null);
    for (const a of replayed) {
      assert.equal(a.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(a.body.tags, ['burst']);
      assert.deepEqual(a.body.params, { stage_ms: 60_000 });
    }
    assert.equal(await redis.xlen(COMMANDS_STREAM), commandsBefore + 1);
    assert.equal(await redis.zcard(TASKS_INDEX), indexBefore + 1);
    const commands = await redis.xrange(COMMANDS_STREAM, '-', '+');
    assert.equal(commands.filter(([, f]) => f[1] === taskId).length, 1);
  });

  test('the same key with a different request is 422 IDEMPOTENCY_KEY_REUSED and writes nothing', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const first = await post(gateway.url, 'reuse-1', { params: { stage_ms: 60_000 }, tags: ['a'] });
    assert.equal(first.status, 202);
    const commands = await redis.xlen(COMMANDS_STREAM);
    for (const other of [
      { params: { stage_ms: 60_001 }, tags: ['a'] },
      { params: { stage_ms: 60_000 }, tags: ['b'] },
      { params: { stage_ms: 60_000 } },
      { params: { stage_ms: 60_000 }, tags: ['a'], priority: 'high' },
      { params: { stage_ms: 60_000 }, tags: ['a'], delay_ms: 60_000 },
      { type: 'typewriter', params: { words: 3 }, tags: ['a'] },
    ]) {
      const res = await post(gateway.url, 'reuse-1', other);
      assert.equal(res.status, 422, JSON.stringify(other));
      assert.equal(res.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
      assert.equal(res.body.error.details.task_id, first.body.task_id);
    }
    assert.equal(await redis.xlen(COMMANDS_STREAM), commands);
    // Equal after validation: the top-level shorthand, key order and a default-valued param.
    const a = await post(gateway.url, 'same-meaning', { params: { stage_ms: 5000 } });
    assert.equal(a.status, 202);
    for (const same of [{ stage_ms: 5000 }, {}, { params: {} }, { tags: [] }, { priority: 'normal' }]) {
      const res = await post(gateway.url, 'same-meaning', same);
      assert.equal(res.status, 200, JSON.stringify(same));
      assert.equal(res.body.task_id, a.body.task_id);
    }
    const tagged = await post(gateway.url, 'tags-as-a-set', { tags: ['x', 'y'] });
    assert.equal(tagged.status, 202);
    const swapped = await post(gateway.url, 'tags-as-a-set', { tags: ['y', 'x'] });
    assert.equal(swapped.status, 200, 'tags in another order are the same request');
    assert.equal(swapped.body.task_id, tagged.body.task_id);
    // run_at is the instant it names, however it is written; another instant is another request.
    const due = Date.now() + 3_600_000;
    const scheduled = await post(gateway.url, 'same-instant', { run_at: new Date(due).toISOString() });
    assert.equal(scheduled.status, 202);
    const offset = new Date(due + 3_600_000).toISOString().replace('Z', '+01:00');
    for (const same of [{ run_at: offset }, { run_at: due }]) {
      const res = await post(gateway.url, 'same-instant', same);
      assert.equal(res.status, 200, JSON.stringify(same));
      assert.equal(res.body.task_id, scheduled.body.task_id);
    }
    const later = await post(gateway.url, 'same-instant', { run_at: due + 1 });
    assert.equal(later.status, 422);
    assert.equal(later.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
  });

  test('a replay answers the task as it is now; the legacy route shares the keys', async () => {
    const first = await post(gateway.url, 'state-now', { params: { stage_ms: 60_000 } });
    assert.equal(first.status, 202);
    assert.equal(first.body.status, 'PENDING');
    const cancel = await request(`${gateway.url}/tasks/${first.body.task_id}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 202);
    const again = await post(gateway.url, 'state-now', { params: { stage_ms: 60_000 } }, {}, '/start-task');
    assert.equal(again.status, 200);
    assert.equal(again.body.task_id, first.body.task_id);
    assert.equal(again.body.status, 'CANCELLED');
  });

  test('keys expire after IDEMPOTENCY_TTL_S, capped at TASK_TTL_S; a start without a key sets none', async (t) => {
    const redis = await redisFor(t, redisUrl);
    assert.equal((await post(gateway.url, 'ttl-check', {})).status, 202);
    const ttl = await redis.ttl('tasks:idem:global:ttl-check');
    assert.ok(ttl > 590 && ttl <= 600, `ttl ${ttl}`);
    const before = (await redis.keys('tasks:idem:*')).length;
    assert.equal((await post(gateway.url, undefined, {})).status, 202);
    assert.equal((await redis.keys('tasks:idem:*')).length, before);

    const capped = await startGatewayInProcess(testScope(t), redisUrl, { TASK_TTL_S: '100', IDEMPOTENCY_TTL_S: '600' });
    assert.equal((await post(capped.url, 'ttl-capped', {})).status, 202);
    const cappedTtl = await redis.ttl('tasks:idem:global:ttl-capped');
    assert.ok(cappedTtl > 90 && cappedTtl <= 100, `ttl ${cappedTtl}`);
  });

  test('a key whose task was deleted by hand answers 404 TASK_NOT_FOUND', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const first = await post(gateway.url, 'deleted', {});
    await redis.del(`task:${first.body.task_id}`);
    const res = await post(gateway.url, 'deleted', {});
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'TASK_NOT_FOUND');
  });

  test('malformed keys are 400 INVALID_IDEMPOTENCY_KEY and start nothing', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const commands = await redis.xlen(COMMANDS_STREAM);
    const send = (headerLines: string) => rawHttp(
      gateway.port,
      `POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n${headerLines}Connection: close\r\n\r\n{}`,
    );
    for (const lines of [
      'Idempotency-Key: \r\n',
      `Idempotency-Key: ${'k'.repeat(256)}\r\n`,
      'Idempotency-Key: caf\xe9\r\n',
      'Idempotency-Key: one\r\nIdempotency-Key: two\r\n',
    ]) {
      const res = await send(lines);
      assert.equal(res.status, 400, lines);
      assert.equal(res.body.error.code, 'INVALID_IDEMPOTENCY_KEY', lines);
    }
    assert.equal(await redis.xlen(COMMANDS_STREAM), commands);
    const longest = await post(gateway.url, `${'k'.repeat(254)}~`, {});
    assert.equal(longest.status, 202);
    const spaced = await post(gateway.url, 'a key: with spaces/and:colons', {});
    assert.equal(spaced.status, 202);
    assert.equal((await post(gateway.url, 'a key: with spaces/and:colons', {})).body.task_id, spaced.body.task_id);
  });
});

describe('idempotency keys with auth on', () => {
  test('are scoped per API token: the same key from two tokens starts two tasks', async (t) => {
    const redisUrl = await testRedisUrl();
    const redis = await redisFor(t, redisUrl);
    const gateway = await startGatewayInProcess(testScope(t), redisUrl, TOKENS);
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    const a1 = await post(gateway.url, 'shared-key', {}, as('token-alpha'));
    const b1 = await post(gateway.url, 'shared-key', { params: { stage_ms: 1 } }, as('token-beta'));
    assert.deepEqual([a1.status, b1.status], [202, 202]);
    assert.notEqual(a1.body.task_id, b1.body.task_id);
    const a2 = await post(gateway.url, 'shared-key', {}, as('token-alpha'));
    assert.equal(a2.status, 200);
    assert.equal(a2.body.task_id, a1.body.task_id);
    assert.equal(typeof a2.body.watch_token, 'string');
    const watched = await request(`${gateway.url}/tasks/${a1.body.task_id}`, { headers: as(a2.body.watch_token) });
    assert.equal(watched.status, 200);

    const keys = (await redis.keys('tasks:idem:*')).sort();
    assert.equal(keys.length, 2);
    for (const key of keys) {
      assert.match(key, /^tasks:idem:[A-Za-z0-9_-]{22}:shared-key$/);
      assert.ok(!key.includes('token-'), key);
    }
    // The scope follows the token, not its place in API_TOKENS.
    const swapped = await startGatewayInProcess(testScope(t), redisUrl, { ...TOKENS, API_TOKENS: 'token-beta,token-alpha' });
    const b2 = await post(swapped.url, 'shared-key', { params: { stage_ms: 1 } }, as('token-beta'));
    assert.equal(b2.status, 200);
    assert.equal(b2.body.task_id, b1.body.task_id);
  });
});

describe('idempotency across a gateway restart', () => {
  test('a retry after the gateway was killed and restarted answers the first task', async (t) => {
    const redisUrl = await testRedisUrl();
    const redis = await redisFor(t, redisUrl);
    const gateway = await startRestartableGateway(testScope(t), redisUrl);
    const body = { params: { stage_ms: 60_000 }, tags: ['restart'] };
    const first = await post(gateway.url, 'across-restart', body);
    assert.equal(first.status, 202);
    await gateway.kill('SIGKILL');
    await gateway.restart();
    const again = await post(gateway.url, 'across-restart', body);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.task_id, first.body.task_id);
    assert.equal(await redis.xlen(COMMANDS_STREAM), 1);
    const reused = await post(gateway.url, 'across-restart', {});
    assert.equal(reused.status, 422);
  });
});
