import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { AppError } from '../../src/errors.js';
import { SseStreams, type SseStream } from '../../src/sse/sse-route.js';
import { taskKey } from '../../src/store/keys.js';
import { startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { suiteScope } from '../helpers/scope.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { sseUrl, watchSse } from '../helpers/sse-client.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';
import { eventIds } from '../helpers/task-log.js';
import { launchBrowser } from '../helpers/browser.js';

describe('SSE watch, against a gateway and a worker', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl);
    await startWorkerInProcess(scope, redisUrl);
  });

  test('live: text/event-stream, ids equal XRANGE, data equals the WebSocket JSON, ends after COMPLETED', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 50 });
    const sse = await watchSse(sseUrl(gateway.url, taskId));
    assert.equal(sse.status, 200);
    assert.match(sse.contentType, /^text\/event-stream/);
    const ids = await eventIds(redis, taskId);
    assert.deepEqual(sse.ids, ids);
    assert.deepEqual(sse.events.map((e) => e.id), ids);
    assert.deepEqual(sse.events.map((e) => e.status), ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED']);
    const ws = await watchTask(wsUrl(gateway.url, taskId));
    assert.deepEqual(sse.events, ws.events);
  });

  for (const via of ['Last-Event-ID', '?lastEventId'] as const) {
    test(`exact replay with ${via} while the task runs: each cut point k = 0..4`, async (t) => {
      const redis = await redisFor(t, redisUrl);
      for (let k = 0; k <= 4; k++) {
        const taskId = await startTask(gateway.url, { stage_ms: 150 });
        const first = k === 0 ? { ids: [] as string[] } : await watchSse(sseUrl(gateway.url, taskId), { take: k });
        const last = first.ids.at(-1);
        assert.notEqual(await redis.hget(taskKey(taskId), 'status'), 'COMPLETED', `k=${k}: cut while running`);
        const rest =
          via === 'Last-Event-ID'
            ? await watchSse(sseUrl(gateway.url, taskId), last === undefined ? {} : { lastEventId: last })
            : await watchSse(sseUrl(gateway.url, taskId, last));
        assert.equal(rest.status, 200);
        assert.deepEqual([...first.ids, ...rest.ids], await eventIds(redis, taskId), `k=${k}`);
      }
    });
  }

  test('exact replay after the task finished, 204 from its terminal event, and Last-Event-ID wins over ?lastEventId', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'COMPLETED', 'completion');
    const all = await eventIds(redis, taskId);
    for (let k = 0; k <= 5; k++) {
      const last = k === 0 ? undefined : all[k - 1];
      const status = k === 5 ? 204 : 200;
      const byHeader = await watchSse(sseUrl(gateway.url, taskId), last === undefined ? {} : { lastEventId: last });
      assert.deepEqual([byHeader.status, byHeader.ids], [status, all.slice(k)], `header k=${k}`);
      const byQuery = await watchSse(sseUrl(gateway.url, taskId, last));
      assert.deepEqual([byQuery.status, byQuery.ids], [status, all.slice(k)], `query k=${k}`);
    }
    const both = await watchSse(sseUrl(gateway.url, taskId, all[0]), { lastEventId: all[2]! });
    assert.deepEqual(both.ids, all.slice(3));
    // A repeated parameter counts with its first value, as on the WebSocket route.
    const twice = await watchSse(`${sseUrl(gateway.url, taskId, all[1])}&lastEventId=${all[3]}`);
    assert.deepEqual(twice.ids, all.slice(2));
  });

  test('errors before the stream starts are JSON with an HTTP status', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'COMPLETED', 'completion');
    const [ms, seq] = (await eventIds(redis, taskId)).at(-1)!.split('-');
    const cases: [string, string, string | undefined, number, string][] = [
      ['unknown task', '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b', undefined, 404, 'TASK_NOT_FOUND'],
      ['non-UUID id', 'not-a-uuid', undefined, 400, 'INVALID_TASK_ID'],
      ['bad lastEventId', taskId, 'abc', 400, 'INVALID_EVENT_ID'],
      ['$', taskId, '$', 400, 'INVALID_EVENT_ID'],
      ['beyond the last event', taskId, `${ms}-${Number(seq) + 1}`, 400, 'EVENT_ID_OUT_OF_RANGE'],
      ['the greatest id', taskId, '18446744073709551615-18446744073709551615', 400, 'EVENT_ID_OUT_OF_RANGE'],
    ];
    for (const [name, id, lastEventId, status, code] of cases) {
      const byQuery = await watchSse(sseUrl(gateway.url, id, lastEventId));
      assert.equal(byQuery.status, status, name);
      assert.match(byQuery.contentType, /application\/json/, name);
      assert.equal(byQuery.error?.error.code, code, name);
      if (lastEventId !== undefined) {
        assert.match(byQuery.error!.error.message, /^lastEventId /, name);
        const byHeader = await watchSse(sseUrl(gateway.url, id), { lastEventId });
        assert.equal(byHeader.status, status, `${name} (header)`);
        assert.equal(byHeader.error?.error.code, code, `${name} (header)`);
        // The message names what the client sent: the header, not the query parameter.
        assert.match(byHeader.error!.error.message, /^Last-Event-ID /, `${name} (header)`);
      }
    }
  });

  test('a browser EventSource gets every event once, then stops: its reconnect after the end gets 204', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const context = await launchBrowser(scope);
    const page = await context.newPage();
    await page.goto(`${gateway.url}/`);
    const taskId = await startTask(gateway.url, { stage_ms: 20 });
    const seen = await withTimeout(page.evaluate(
      (url) =>
        new Promise<{ ids: string[]; opens: number }>((resolve) => {
          const ids: string[] = [];
          let opens = 0;
          const source = new EventSource(url);
          source.onopen = () => (opens += 1);
          source.onmessage = (e) => ids.push(e.lastEventId);
          // After the terminal event the server ends the stream and EventSource comes back with
          // Last-Event-ID; the 204 it gets then is what closes it for good.
          source.onerror = () => {
            if (source.readyState === EventSource.CLOSED) resolve({ ids, opens });
          };
        }),
      `/sse/task/${taskId}`,
    ), 'the EventSource to close (EventSource retries after about 3 s)', 20_000);
    assert.deepEqual(seen.ids, await eventIds(redis, taskId));
    assert.equal(seen.opens, 1, 'the one 200 stream; the reconnect was answered 204');
  });
});

test('SseStreams: once closed, a new request is refused with SHUTTING_DOWN (503, Connection: close) and close stays idempotent', async () => {
  const streams = new SseStreams();
  await streams.close();
  await streams.close();
  assert.throws(
    () => streams.add({} as SseStream),
    (err) => err instanceof AppError && err.code === 'SHUTTING_DOWN' && err.status === 503 && err.headers.Connection === 'close',
  );
});
