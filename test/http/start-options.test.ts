import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { SCHEDULED_SET, commandsStream, taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { request } from '../helpers/http.js';
import { startGatewayInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { connectRedis, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';

describe('start options: priority, run_at, delay_ms', () => {
  let gw: InProcessGateway;
  let redis: Redis;
  const scope = suiteScope();

  before(async () => {
    const url = await testRedisUrl();
    gw = await startGatewayInProcess(scope, url, { SCHEDULE_MAX_AHEAD_S: '3600' });
    redis = await connectRedis(url);
    scope.after(() => redis.quit());
  });

  test('priority puts the command on its priority stream; the state says it', async () => {
    for (const priority of ['high', 'normal', 'low'] as const) {
      const res = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, priority } });
      assert.equal(res.status, 202);
      assert.equal(res.body.priority, priority);
      const hash = await redis.hgetall(taskKey(res.body.task_id));
      const [entry] = await redis.xrange(commandsStream(priority), hash.command_id!, hash.command_id!);
      assert.equal(entry?.[1][1], res.body.task_id);
      assert.equal((await request(`${gw.url}/tasks/${res.body.task_id}`)).body.priority, priority);
    }
    const plain = await request(`${gw.url}/tasks`, { body: { stage_ms: 0 } });
    assert.equal(plain.body.priority, 'normal');
  });

  test('delay_ms and run_at (RFC 3339 or epoch ms) answer SCHEDULED with the due time, and GET shows it', async () => {
    const before = Date.now();
    const delayed = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, delay_ms: 60_000 } });
    assert.equal(delayed.status, 202);
    assert.equal(delayed.body.status, 'SCHEDULED');
    assert.ok(delayed.body.run_at >= before + 60_000 && delayed.body.run_at <= Date.now() + 60_000);

    const iso = new Date(Date.now() + 120_000).toISOString().replace('Z', '+00:00');
    const byIso = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, run_at: iso } });
    assert.equal(byIso.status, 202, JSON.stringify(byIso.body));
    assert.equal(byIso.body.run_at, Date.parse(iso));
    const runAt = Date.now() + 30_000;
    const byMs = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, run_at: runAt, priority: 'high' } });
    assert.equal(byMs.status, 202);
    assert.equal(byMs.body.run_at, runAt);

    const got = await request(`${gw.url}/tasks/${byMs.body.task_id}`);
    assert.equal(got.body.status, 'SCHEDULED');
    assert.equal(got.body.run_at, byMs.body.run_at);
    assert.equal(got.body.priority, 'high');
    assert.equal(await redis.zscore(SCHEDULED_SET, byMs.body.task_id), String(byMs.body.run_at));
    const events = await request(`${gw.url}/tasks/${byMs.body.task_id}/events`);
    assert.deepEqual(events.body.events.map((e: { status: string; run_at?: number }) => [e.status, e.run_at]), [['SCHEDULED', byMs.body.run_at]]);
  });

  test('a scheduled task cancelled before it is due ends CANCELLED and leaves the scheduled set', async () => {
    const started = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, delay_ms: 30_000 } });
    const cancelled = await request(`${gw.url}/tasks/${started.body.task_id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 202);
    assert.equal(cancelled.body.status, 'CANCELLED');
    assert.equal(await redis.zscore(SCHEDULED_SET, started.body.task_id), null);
    const again = await request(`${gw.url}/tasks/${started.body.task_id}/cancel`, { method: 'POST' });
    assert.equal(again.body.error.code, 'TASK_ALREADY_FINISHED');
  });

  test('bad priority, run_at or delay_ms: 400 INVALID_BODY naming the problem, nothing written', async () => {
    const keysBefore = await redis.dbsize();
    const now = Date.now();
    const cases: [string, unknown, RegExp | null][] = [
      ['unknown priority', { priority: 'urgent' }, null],
      ['both run_at and delay_ms', { run_at: now + 1000, delay_ms: 1000 }, /not both/],
      ['negative delay', { delay_ms: -1 }, null],
      ['fractional delay', { delay_ms: 1.5 }, null],
      ['delay too far ahead', { delay_ms: 3_601_000 }, /SCHEDULE_MAX_AHEAD_S/],
      ['run_at too far ahead', { run_at: now + 3_700_000 }, /SCHEDULE_MAX_AHEAD_S/],
      ['run_at two minutes ago', { run_at: now - 120_000 }, /in the past/],
      ['run_at not a time', { run_at: 'tomorrow' }, null],
      ['run_at without offset', { run_at: '2030-01-01T00:00:00' }, null],
      ['run_at a boolean', { run_at: true }, null],
      ['concurrency_key with a lone surrogate', { concurrency_key: 'acme-\ud800' }, null],
    ];
    for (const [name, body, message] of cases) {
      const res = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, ...(body as object) } });
      assert.equal(res.status, 400, name);
      assert.equal(res.body.error.code, 'INVALID_BODY', name);
      if (message) assert.match(res.body.error.message, message, name);
    }
    assert.equal(await redis.dbsize(), keysBefore, 'no key written');
    const lone = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, concurrency_key: '\udc00' } });
    assert.deepEqual(lone.body.error.details.map((i: { path: string[]; message: string }) => [i.path, i.message]), [
      [['concurrency_key'], 'must be well-formed Unicode (no lone surrogate)'],
    ]);
  });

  test('run_at up to a minute in the past is accepted (due at once)', async () => {
    const res = await request(`${gw.url}/tasks`, { body: { stage_ms: 0, run_at: Date.now() - 30_000 } });
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'SCHEDULED');
  });
});
