import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { TaskEvent } from '../../src/wire/events.js';
import { eventsKey, taskKey } from '../../src/store/keys.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { suiteScope } from '../helpers/scope.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import WebSocket from 'ws';
import type { FeedEntry } from '../../src/wire/feed.js';
import { feedUrl, followFeed } from '../helpers/feed-client.js';
import { rawHttp, upgrade, upgradeRequest } from '../helpers/raw.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';
import { eventIds } from '../helpers/task-log.js';

const STAGES = [
  ['PENDING', 0],
  ['STARTED', 25],
  ['PROCESSING', 50],
  ['CONCLUDING', 75],
  ['COMPLETED', 100],
];

const summary = (events: TaskEvent[]) => events.map((e) => [e.status, e.progress]);

describe('WebSocket watch, against a gateway and a worker', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    // One gateway and worker for the whole file: each test uses its own tasks.
    gateway = await startGatewayInProcess(scope, redisUrl);
    await startWorkerInProcess(scope, redisUrl);
  });

  test('full flow: every stage in order, ids equal XRANGE, final hash, close 1000', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 50 });
    const result = await watchTask(wsUrl(gateway.url, taskId));
    assert.deepEqual(summary(result.events), STAGES);
    assert.equal(result.code, 1000);
    assert.deepEqual(result.events.map((e) => e.id), await eventIds(redis, taskId));
    for (const e of result.events) {
      assert.equal(e.task_id, taskId);
      assert.equal(typeof e.ts, 'number');
    }
    const hash = await redis.hgetall(taskKey(taskId));
    assert.equal(hash.status, 'COMPLETED');
    assert.equal(hash.progress, '100');
    assert.equal(hash.last_event_id, result.events.at(-1)!.id);
    assert.ok(Number(hash.updated_at) >= Number(hash.created_at));
    const ttl = await redis.ttl(taskKey(taskId));
    assert.ok(ttl > 0 && ttl <= 86400, `hash ttl ${ttl}`);
    assert.ok((await redis.ttl(eventsKey(taskId))) > 0);
  });

  test('exact replay after a finished task: each cut point k = 0..5', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'COMPLETED', 'completion');
    const all = await eventIds(redis, taskId);
    assert.equal(all.length, 5);
    for (let k = 0; k <= 5; k++) {
      const first = await watchTask(wsUrl(gateway.url, taskId), { take: k });
      const last = first.events.at(-1)?.id;
      const rest = await watchTask(wsUrl(gateway.url, taskId, last));
      assert.equal(rest.code, 1000, `k=${k}`);
      assert.deepEqual([...first.events, ...rest.events].map((e) => e.id), all, `k=${k}`);
    }
  });

  test('exact replay while the task is still running: each cut point k = 0..4', async (t) => {
    const redis = await redisFor(t, redisUrl);
    for (let k = 0; k <= 4; k++) {
      const taskId = await startTask(gateway.url, { stage_ms: 150 });
      const first = await watchTask(wsUrl(gateway.url, taskId), { take: k });
      const last = first.events.at(-1)?.id;
      const status = await redis.hget(taskKey(taskId), 'status');
      assert.notEqual(status, 'COMPLETED', `k=${k}: the cut must happen while the task runs`);
      const rest = await watchTask(wsUrl(gateway.url, taskId, last));
      assert.equal(rest.code, 1000);
      const got = [...first.events, ...rest.events];
      assert.deepEqual(got.map((e) => e.id), await eventIds(redis, taskId), `k=${k}`);
      assert.deepEqual(summary(got), STAGES, `k=${k}`);
    }
  });

  test('many reconnects: the concatenation across every reconnection equals XRANGE', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 40 });
    const got: TaskEvent[] = [];
    for (let round = 0; round < 50; round++) {
      const r = await watchTask(wsUrl(gateway.url, taskId, got.at(-1)?.id), { take: 1 });
      got.push(...r.events);
      if (got.at(-1)?.status === 'COMPLETED') break;
    }
    assert.deepEqual(got.map((e) => e.id), await eventIds(redis, taskId));
  });

  test('lastEventId 0-0, a bare <ms> id and a repeated lastEventId are accepted', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'COMPLETED', 'completion');
    const all = await eventIds(redis, taskId);
    assert.deepEqual((await watchTask(wsUrl(gateway.url, taskId, '0-0'))).events.map((e) => e.id), all);
    assert.deepEqual((await watchTask(wsUrl(gateway.url, taskId, '0'))).events.map((e) => e.id), all);
    const ms = all[2]!.split('-')[0]!;
    const after = (await watchTask(wsUrl(gateway.url, taskId, ms))).events.map((e) => e.id);
    assert.deepEqual(after, all.filter((id) => id > `${ms}-0`));
    const atEnd = await watchTask(wsUrl(gateway.url, taskId, all.at(-1)));
    assert.deepEqual(atEnd.events, []);
    assert.equal(atEnd.code, 1000);
    // A repeated parameter counts with its first value, as on the SSE route.
    const twice = await watchTask(`${wsUrl(gateway.url, taskId, all[1])}&lastEventId=${all[3]}`);
    assert.deepEqual(twice.events.map((e) => e.id), all.slice(2));
  });

  test('bad input gets its close code and the gateway serves the next client normally', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'COMPLETED', 'completion');
    const last = (await eventIds(redis, taskId)).at(-1)!;
    const [ms, seq] = last.split('-');
    const cases: [string, string | undefined, number, RegExp][] = [
      ['unknown task', undefined, 4404, /not found/],
      ['non-UUID id', undefined, 4400, /UUID/],
      ['abc', 'abc', 4400, /lastEventId/],
      ['$', '$', 4400, /lastEventId/],
      ['+', '+', 4400, /lastEventId/],
      ['-', '-', 4400, /lastEventId/],
      ['1-', '1-', 4400, /lastEventId/],
      ['overlong', '99999999999999999999999', 4400, /lastEventId/],
      ['u64 overflow', '18446744073709551616-0', 4400, /lastEventId/],
      ['beyond the last entry', `${ms}-${Number(seq) + 1}`, 4400, /beyond/],
      // Redis refuses it as an exclusive range start: it must still be a 4400, not a 1011.
      ['the greatest id', '18446744073709551615-18446744073709551615', 4400, /lastEventId is beyond/],
    ];
    for (const [name, lastEventId, code, reason] of cases) {
      const id = name === 'unknown task' ? '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b' : name === 'non-UUID id' ? 'not-a-uuid' : taskId;
      const started = Date.now();
      const r = await watchTask(wsUrl(gateway.url, id, lastEventId));
      assert.equal(r.code, code, name);
      assert.match(r.reason, reason, name);
      assert.deepEqual(r.events, [], name);
      assert.ok(Date.now() - started < 1000, `${name}: closed within a second`);
      const next = await watchTask(wsUrl(gateway.url, taskId));
      assert.equal(next.code, 1000, `${name}: next client`);
      assert.equal(next.events.length, 5, `${name}: next client`);
    }
  });

  test('?batch=1 on /ws/task and /ws/feed: every frame is a JSON array, the messages together exactly those one per frame; a bad value is 400', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { type: 'typewriter', params: { words: 600, words_per_s: 100_000 } });
    await waitFor(async () => (await redis.hget(taskKey(taskId), 'status')) === 'COMPLETED', 'completion');
    const all = await eventIds(redis, taskId);
    const batched = await frames(`${wsUrl(gateway.url, taskId)}?batch=1`);
    assert.equal(batched.code, 1000);
    assert.ok(batched.frames.every((f) => f.startsWith('[')));
    const events = batched.frames.flatMap((f) => JSON.parse(f) as TaskEvent[]);
    assert.deepEqual(events.map((e) => e.id), all);
    assert.deepEqual(events, (await watchTask(wsUrl(gateway.url, taskId))).events);
    assert.ok(batched.frames.length < all.length / 10, `${batched.frames.length} frames for ${all.length} events`);

    const plain = await followFeed(feedUrl(gateway.url, { lastEventId: '0' }), { take: 20 });
    const feed = await frames(`${feedUrl(gateway.url, { lastEventId: '0' })}&batch=true`, 20);
    assert.ok(feed.frames.every((f) => f.startsWith('[')));
    assert.deepEqual(feed.frames.flatMap((f) => JSON.parse(f) as FeedEntry[]).slice(0, 20), plain.entries);

    for (const path of [`/ws/task/${taskId}?batch=yes`, '/ws/feed?batch=']) {
      const refused = await upgrade(`${gateway.url.replace(/^http/, 'ws')}${path}`);
      assert.deepEqual([refused.status, refused.body], [400, { error: { code: 'INVALID_QUERY', message: 'batch must be 1, true, 0 or false' } }], path);
    }
  });

  test('a malformed handshake is refused with a JSON error: 405 with Allow for a method, 400 naming the header otherwise', async () => {
    const path = '/ws/task/00000000-0000-4000-8000-000000000000';
    const cases: [string, number, string, string][] = [
      [upgradeRequest(gateway.port, path).replace('GET', 'POST'), 405, 'METHOD_NOT_ALLOWED', 'POST cannot open a WebSocket; use GET'],
      [upgradeRequest(gateway.port, path, { 'Sec-WebSocket-Key': 'short' }), 400, 'BAD_REQUEST', 'Missing or invalid Sec-WebSocket-Key header'],
      [upgradeRequest(gateway.port, path, { 'Sec-WebSocket-Version': '99' }), 400, 'BAD_REQUEST', 'Missing or invalid Sec-WebSocket-Version header'],
    ];
    for (const [raw, status, code, message] of cases) {
      const res = await rawHttp(gateway.port, raw);
      assert.deepEqual([res.status, res.body], [status, { error: { code, message } }], raw);
      assert.match(res.headers['content-type']!, /^application\/json/);
    }
    assert.equal((await rawHttp(gateway.port, cases[0]![0])).headers.allow, 'GET');
    assert.equal((await rawHttp(gateway.port, cases[2]![0])).headers['sec-websocket-version'], '13, 8');
    const head = await rawHttp(gateway.port, upgradeRequest(gateway.port, path).replace('GET', 'HEAD'));
    assert.deepEqual([head.status, head.headers.allow, head.body], [405, 'GET', ''], 'a HEAD is answered without a body');
    const next = await watchTask(wsUrl(gateway.url, await startTask(gateway.url, { stage_ms: 0 })));
    assert.deepEqual([summary(next.events), next.code], [STAGES, 1000], 'the next client is served');
  });

  test('an upgrade to another protocol (h2c, as curl --http2 asks for) is served as the plain HTTP/1.1 request it also is', async () => {
    const h2c = (method: string, path: string, body = '') =>
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\n` +
      `HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const list = await rawHttp(gateway.port, h2c('GET', '/tasks?limit=1'));
    assert.deepEqual([list.status, Array.isArray(list.body.tasks)], [200, true]);
    const started = await rawHttp(gateway.port, h2c('POST', '/tasks', JSON.stringify({ stage_ms: 0 })));
    assert.deepEqual([started.status, started.body.status], [202, 'PENDING']);
    // Not a WebSocket upgrade: a plain GET of a watch path, told to use a WebSocket client.
    const watchPath = await rawHttp(gateway.port, h2c('GET', `/ws/task/${started.body.task_id}`));
    assert.deepEqual([watchPath.status, watchPath.body.error.code], [426, 'UPGRADE_REQUIRED']);
  });

  test('a path that is not a watch endpoint is refused at the upgrade with 404', async () => {
    const res = await request(`${gateway.url}/ws/nope`);
    assert.equal(res.status, 404);
  });
});

/** The text frames a socket gets until the server closes it, or until `messages` messages came in them. */
function frames(url: string, messages?: number): Promise<{ frames: string[]; code: number }> {
  const ws = new WebSocket(url);
  const got: string[] = [];
  let count = 0;
  const done = new Promise<{ frames: string[]; code: number }>((resolve, reject) => {
    ws.on('message', (data) => {
      got.push(String(data));
      count += (JSON.parse(String(data)) as unknown[]).length;
      if (messages !== undefined && count >= messages) resolve({ frames: got, code: 0 });
    });
    ws.on('close', (code) => resolve({ frames: got, code }));
    ws.on('error', reject);
  });
  return withTimeout(done, `frames of ${url}`).finally(() => ws.terminate());
}
