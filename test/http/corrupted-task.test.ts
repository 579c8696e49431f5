import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { eventsKey, taskKey } from '../../src/store/keys.js';
import { TaskStore } from '../../src/store/task-store.js';
import { request } from '../helpers/http.js';
import { startGatewayProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { watchSse, sseUrl } from '../helpers/sse-client.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

/** The documented answer for a task whose keys hold the wrong type: 409 TASK_CORRUPTED, naming it. */
function assertCorrupted(res: { status: number; body: any }, taskId: string, what: string): void {
  assert.equal(res.status, 409, `${what}: ${JSON.stringify(res.body)}`);
  assert.equal(res.body.error.code, 'TASK_CORRUPTED', what);
  assert.match(res.body.error.message, new RegExp(`^task ${taskId} is corrupted: WRONGTYPE task:${taskId}`), what);
  assert.deepEqual(res.body.error.details, { task_id: taskId }, what);
}

describe('every route answers 409 TASK_CORRUPTED (close 4409) for a task whose keys hold the wrong type, never 500', () => {
  test('event stream replaced by a string; state hash replaced by a string', async (t) => {
    const url = await testRedisUrl();
    const redis = await redisFor(t, url);
    const store = new TaskStore(redis);
    const gateway = await startGatewayProc(t, url);
    const healthy = (await store.start('reference', {})).state;
    const badEvents = (await store.start('reference', {})).state;
    const badHash = (await store.start('reference', {})).state;
    await redis.set(eventsKey(badEvents.task_id), 'not a stream');
    await redis.set(taskKey(badHash.task_id), 'not a hash');

    for (const { task_id: id, last_event_id: last } of [badEvents, badHash]) {
      const base = `${gateway.url}/tasks/${id}`;
      if (id === badHash.task_id) assertCorrupted(await request(base), id, 'GET /tasks/<id>');
      assertCorrupted(await request(`${base}/events`), id, 'GET /tasks/<id>/events');
      assertCorrupted(await request(`${base}/output`), id, 'GET /tasks/<id>/output');
      assertCorrupted(await request(`${base}/cancel`, { method: 'POST' }), id, 'POST /tasks/<id>/cancel');
      // The hash alone is corrupted: a watch from the start replays the healthy stream; one that
      // resumes at its end reads the hash.
      const from = id === badHash.task_id ? last : undefined;
      const sse = await watchSse(sseUrl(gateway.url, id, from));
      assertCorrupted({ status: sse.status, body: sse.error }, id, 'GET /sse/task/<id>');
      const ws = await watchTask(wsUrl(gateway.url, id, from));
      assert.equal(ws.code, 4409, 'WebSocket watch');
      assert.match(ws.reason, /^task \S+ is corrupted: WRONGTYPE/);
      assert.deepEqual(ws.events, []);
    }

    // The event stream alone is corrupted: the state still reads.
    assert.equal((await request(`${gateway.url}/tasks/${badEvents.task_id}`)).status, 200);
    // A corrupted task is left out of the list rather than failing it.
    const list = await request(`${gateway.url}/tasks`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.tasks.map((s: { task_id: string }) => s.task_id).sort(), [healthy.task_id, badEvents.task_id].sort());
    assert.deepEqual(gateway.logs.filter((l) => l.msg === 'request failed'), [], 'no request failed as an internal error');
    assert.equal(await redis.get(taskKey(badHash.task_id)), 'not a hash', 'nothing was written by the cancel');
  });
});
