import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redisTrouble, refusalReason } from '../../src/store/unavailable.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayProc, startWorkerProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { REFERENCE_STATUSES, assertEventLog, assertNothingPending, taskEvents, waitForEnd } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';

describe('Redis trouble', () => {
  test('one classifier: no answer is down; an answer that refuses for now is refused; anything else is neither', () => {
    const cases: [string, string | null][] = [
      ['Connection is closed.', 'down'],
      ['connect ECONNREFUSED 127.0.0.1:6379', 'down'],
      ["Stream isn't writeable and enableOfflineQueue options is false", 'down'],
      ['Command timed out', 'down'],
      ['Reached the max retries per request limit (which is 0). Refer to "maxRetriesPerRequest" option for details.', 'down'],
      ["OOM command not allowed when used memory > 'maxmemory'.", 'refused'],
      ["ERR Error running script (call to f_1): @user_script:12: OOM command not allowed when used memory > 'maxmemory'.", 'refused'],
      ["READONLY You can't write against a read only replica.", 'refused'],
      ['LOADING Redis is loading the dataset in memory', 'refused'],
      ['MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.', 'refused'],
      ['BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.', 'refused'],
      ['WRONGTYPE Operation against a key holding the wrong kind of value', null],
      ['BUSYGROUP Consumer Group name already exists', null],
      ['ERR syntax error', null],
    ];
    for (const [message, kind] of cases) assert.equal(redisTrouble(new Error(message)), kind, message);
    assert.equal(redisTrouble('not an error'), null);
    assert.equal(refusalReason(new Error("ERR Error running script: OOM command not allowed when used memory > 'maxmemory'.")), 'OOM');
  });

  test('Redis out of memory: starts and cancels answer 503 REDIS_WRITE_REFUSED, /readyz says OOM, running tasks wait and then complete exactly', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const gateway = await startGatewayProc(t, url);
    const worker = await startWorkerProc(t, url, { CLAIM_IDLE_MS: '300', LOG_LEVEL: 'debug' });
    const ids = await Promise.all([1, 2, 3].map(() => startTask(gateway.url, { stage_ms: 300 })));
    await waitFor(async () => (await Promise.all(ids.map((id) => redis.hget(`task:${id}`, 'step')))).every((s) => Number(s) >= 1), 'every task running');

    await redis.config('SET', 'maxmemory-policy', 'noeviction');
    await redis.config('SET', 'maxmemory', '1');
    const start = await request(`${gateway.url}/tasks`, { method: 'POST', body: {} });
    assert.equal(start.status, 503);
    assert.equal(start.body.error.code, 'REDIS_WRITE_REFUSED');
    assert.deepEqual(start.body.error.details, { reason: 'OOM' });
    assert.equal(start.headers.get('retry-after'), '5');
    const cancel = await request(`${gateway.url}/tasks/${ids[0]}/cancel`, { method: 'POST' });
    assert.deepEqual([cancel.status, cancel.body.error.code], [503, 'REDIS_WRITE_REFUSED']);
    const ready = await request(`${gateway.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual([ready.body.checks.writes, ready.body.checks.refused], ['refused', 'OOM']);

    // Long past CLAIM_IDLE_MS several times over: the worker keeps its commands and retries.
    await worker.waitForLog((l) => l.msg === 'redis unavailable; retrying' && Number(l.attempt) >= 6, 'the worker to retry its writes a while');
    // Each held-up write is warned once, at its first failure; its retries are debug lines.
    const retries = worker.logs.filter((l) => l.msg === 'redis unavailable; retrying');
    assert.deepEqual([...new Set(retries.filter((l) => l.level === 40).map((l) => l.attempt))], [0]);
    assert.deepEqual([...new Set(retries.filter((l) => Number(l.attempt) > 0).map((l) => l.level))], [20]);
    await redis.config('SET', 'maxmemory', '0');
    for (const id of ids) assert.equal(await waitForEnd(redis, id), 'COMPLETED');
    for (const id of ids) {
      await assertEventLog(redis, id, REFERENCE_STATUSES);
      assert.ok((await taskEvents(redis, id)).every((e) => e.type === 'stage' && e.attempt === undefined), 'no attempt spent, no redelivery');
    }
    await assertNothingPending(redis);
    assert.equal((await request(`${gateway.url}/readyz`)).status, 200);
    assert.ok(!worker.logs.some((l) => l.msg === 'poison command dead-lettered' || l.msg === 'task handler failed'));
  });
});
