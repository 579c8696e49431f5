import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { TaskWatcher } from '../../src/client/task-watcher.js';
import type { OutputChange } from '../../src/wire/output.js';
import { request, startTask } from '../helpers/http.js';
import { inProcessTestTasksEnv, startGatewayInProcess, startWorkerInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { startWorkerProc, testTasksEnv } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';
import { sseUrl, watchSse } from '../helpers/sse-client.js';
import { assertNothingPending, eventIds, taskEvents } from '../helpers/task-log.js';
import { waitFor } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

/** For the worker processes of the SIGKILL test; the gateway and the other workers run in this process. */
const TEST_TASKS = testTasksEnv();
const IN_PROCESS_TASKS = inProcessTestTasksEnv();
const lines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i}\n`).join('');

/** A TaskWatcher over `ws` that records every output change. */
function watcher(baseUrl: string, taskId: string) {
  const changes: OutputChange['kind'][] = [];
  const w = new TaskWatcher({
    baseUrl,
    taskId,
    createSocket: (url) => new WebSocket(url),
    onOutput: (change) => changes.push(change.kind),
  });
  return { w, changes };
}

describe('output exactly once, whatever stops a run', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();
  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl, IN_PROCESS_TASKS);
  });

  test('a worker SIGKILLed in the middle of a stage\'s output: the client, XRANGE and /output agree on one copy', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const first = await startWorkerProc(t, redisUrl, { ...TEST_TASKS, CLAIM_IDLE_MS: '500' });
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 40, line_ms: 40 } });
    const { w, changes } = watcher(gateway.url, taskId);
    const done = w.start();
    t.after(() => w.close());
    await waitFor(() => w.output.tentative.length >= 10, 'ten tentative lines from the first run');
    first.kill('SIGKILL');
    await first.exited;
    await startWorkerProc(t, redisUrl, { ...TEST_TASKS, CLAIM_IDLE_MS: '500' });

    assert.deepEqual(await done, { state: 'finished', status: 'COMPLETED' });
    assert.equal(w.output.text, lines(40));
    assert.deepEqual(w.result, { lines: 40 });
    assert.ok(changes.includes('discard'), 'the client saw the first run\'s lines voided');
    const events = await taskEvents(redis, taskId);
    assert.equal(events.filter((e) => e.type === 'restart').length, 1, 'one restart event');
    assert.ok(events.filter((e) => e.type === 'output').length > 40, 'the first run\'s lines are in the log too');
    const output = await fetch(`${gateway.url}/tasks/${taskId}/output`);
    assert.equal(output.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(output.headers.get('taskcast-task-status'), 'COMPLETED');
    assert.equal(output.headers.get('taskcast-last-event-id'), events.at(-1)!.id);
    assert.equal(await output.text(), lines(40));
    await assertNothingPending(redis);
  });

  test('a handler that throws half way and is retried: its first attempt\'s lines are voided by RETRYING', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await startWorkerInProcess(t, redisUrl, { ...IN_PROCESS_TASKS, RETRY_BASE_MS: '20' });
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 30, fail_attempts: 1 } });
    const { w, changes } = watcher(gateway.url, taskId);
    t.after(() => w.close());
    assert.deepEqual(await w.start(), { state: 'finished', status: 'COMPLETED' });
    assert.equal(w.output.text, lines(30));
    assert.deepEqual(changes.filter((c) => c !== 'append'), ['discard', 'commit']);
    const statuses = (await taskEvents(redis, taskId)).filter((e) => e.type === 'stage').map((e) => e.status);
    assert.deepEqual(statuses, ['PENDING', 'STARTED', 'RETRYING', 'WRITTEN', 'COMPLETED']);
    assert.equal((await request(`${gateway.url}/tasks/${taskId}/output`)).body, lines(30));
    const state = await request(`${gateway.url}/tasks/${taskId}`);
    assert.deepEqual(state.body.result, { lines: 30 });
  });

  test('a watcher that disconnects again and again during a 10,000-line output resumes exactly, over WebSocket and SSE', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await startWorkerInProcess(t, redisUrl, IN_PROCESS_TASKS);
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 10_000, window: 32 } });
    const resume = async (watch: (last: string | undefined) => Promise<{ ids: string[]; ended: boolean }>) => {
      const got: string[] = [];
      for (let round = 0; round < 500; round++) {
        const part = await watch(got.at(-1));
        got.push(...part.ids);
        if (part.ended) return got;
      }
      throw new Error('the watch did not end within 500 reconnections');
    };
    const [ws, sse] = await Promise.all([
      resume(async (last) => {
        const r = await watchTask(wsUrl(gateway.url, taskId, last), { take: 997, timeoutMs: 60_000 });
        return { ids: r.events.map((e) => e.id), ended: r.code === 1000 };
      }),
      resume(async (last) => {
        const r = await watchSse(sseUrl(gateway.url, taskId), { lastEventId: last, take: 1499, timeoutMs: 60_000 });
        return { ids: r.ids, ended: r.status === 204 || r.ids.length < 1499 };
      }),
    ]);
    const all = await eventIds(redis, taskId);
    assert.ok(all.length > 10_000);
    assert.deepEqual(ws, all);
    assert.deepEqual(sse, all);
  });

  test('SSE names progress, output and restart events after their type; stage events stay unnamed', async (t) => {
    await startWorkerInProcess(t, redisUrl, IN_PROCESS_TASKS);
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 10 } });
    const result = await watchSse(sseUrl(gateway.url, taskId), { timeoutMs: 30_000 });
    assert.deepEqual(
      result.events.map((e, i) => [e.type, result.names[i]]),
      [
        ['stage', null], ['stage', null],
        ...Array.from({ length: 10 }, () => ['output', 'output']),
        ['progress', 'progress'], ['stage', null], ['stage', null],
      ],
    );
    assert.equal(result.events.find((e) => e.type === 'progress')!.message, '10 of 10 lines');
  });

  test('GET /tasks/<id>/events pages with after, limit and next_cursor', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await startWorkerInProcess(t, redisUrl, IN_PROCESS_TASKS);
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 25 } });
    const { w } = watcher(gateway.url, taskId);
    t.after(() => w.close());
    await w.start();
    const all = await eventIds(redis, taskId);
    const pages: string[][] = [];
    let after: string | null = '';
    while (after !== null) {
      const page = await request(`${gateway.url}/tasks/${taskId}/events?limit=10${after ? `&after=${after}` : ''}`);
      assert.equal(page.status, 200);
      pages.push(page.body.events.map((e: { id: string }) => e.id));
      after = page.body.next_cursor;
    }
    assert.deepEqual(pages.flat(), all);
    assert.deepEqual(pages.map((p) => p.length), [10, 10, 10, all.length - 30]);
    // A page that holds exactly the events left is the last one.
    const exact = await request(`${gateway.url}/tasks/${taskId}/events?limit=${all.length - 10}&after=${pages[0]!.at(-1)}`);
    assert.deepEqual([exact.body.events.length, exact.body.next_cursor], [all.length - 10, null]);
    const whole = await request(`${gateway.url}/tasks/${taskId}/events?limit=${all.length}`);
    assert.deepEqual([whole.body.events.length, whole.body.next_cursor], [all.length, null]);
    const bad = await request(`${gateway.url}/tasks/${taskId}/events?limit=0`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_QUERY');
    const tooMany = await request(`${gateway.url}/tasks/${taskId}/events?limit=10001`);
    assert.equal(tooMany.status, 400);
  });
});
