import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { eventsKey } from '../../src/store/keys.js';
import { BATCH_MAX_BYTES } from '../../src/wire/frames.js';
import { MUX_MAX_MESSAGE_BYTES, MUX_MAX_STRIKES } from '../../src/wire/mux.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { MuxClient } from '../helpers/mux-client.js';
import { upgrade } from '../helpers/raw.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { suiteScope, testScope } from '../helpers/scope.js';
import { eventIds, waitForEnd } from '../helpers/task-log.js';

const UNKNOWN = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';
const STAGES = ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED'];

describe('multiplexed /ws against a gateway and a worker', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl);
    await startWorkerInProcess(scope, redisUrl);
  });

  test('many tasks on one connection, each from its own cursor: subscribed, events equal XRANGE after it, ended 1000; the connection stays', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const finished = await startTask(gateway.url, { stage_ms: 0 });
    await waitForEnd(redis, finished);
    const all = await eventIds(redis, finished);
    const running = await Promise.all([0, 1, 2].map(() => startTask(gateway.url, { stage_ms: 60 })));
    const client = await MuxClient.open(testScope(t), gateway.url);
    client.send({ type: 'subscribe', task: finished, lastEventId: all[1]! });
    for (const task of running) client.send({ type: 'subscribe', task: task.toUpperCase() });
    for (const task of [finished, ...running]) assert.equal((await client.ended(task)).code, 1000, task);
    assert.deepEqual(client.events(finished).map((e) => e.id), all.slice(2));
    assert.deepEqual(client.trace(finished), ['subscribed', 'event PROCESSING', 'event CONCLUDING', 'event COMPLETED', 'ended 1000']);
    for (const task of running) {
      assert.deepEqual(client.events(task).map((e) => e.id), await eventIds(redis, task));
      assert.deepEqual(client.trace(task), ['subscribed', ...STAGES.map((s) => `event ${s}`), 'ended 1000']);
    }
    // At the end of the log there is nothing to send but the end; the same task again from 0 gets it all.
    client.send({ type: 'subscribe', task: finished, lastEventId: all.at(-1)! });
    await client.waitFor(() => client.controls(finished).filter((c) => c.type === 'ended').length === 2, 'the second end');
    client.send({ type: 'subscribe', task: finished });
    await client.waitFor(() => client.controls(finished).filter((c) => c.type === 'ended').length === 3, 'the third end');
    assert.deepEqual(client.events(finished).map((e) => e.id), [...all.slice(2), ...all]);
    assert.equal(client.ws.readyState, client.ws.OPEN);
    assert.deepEqual(client.errors(), []);
  });

  test('per-subscription refusals: 4404 unknown, 4400 bad id or cursor, 4409 corrupted; the connection and its other subscriptions go on', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const done = await startTask(gateway.url, { stage_ms: 0 });
    await waitForEnd(redis, done);
    const last = (await eventIds(redis, done)).at(-1)!;
    const [ms, seq] = last.split('-');
    const corrupted = await startTask(gateway.url, { stage_ms: 0 });
    await waitForEnd(redis, corrupted);
    await redis.set(eventsKey(corrupted), 'not a stream');
    const running = await startTask(gateway.url, { stage_ms: 100 });
    const client = await MuxClient.open(testScope(t), gateway.url);
    client.send({ type: 'subscribe', task: running });
    client.send({ type: 'subscribe', task: UNKNOWN });
    client.send({ type: 'subscribe', task: 'not-a-uuid' });
    client.send({ type: 'subscribe', task: done, lastEventId: 'abc' });
    client.send({ type: 'subscribe', task: corrupted });
    await client.ended(done);
    // A subscription occupies its task until it is answered: the next one for it goes after.
    client.send({ type: 'subscribe', task: done, lastEventId: `${ms}-${Number(seq) + 1}` });
    const unknown = await client.ended(UNKNOWN);
    assert.equal(unknown.code, 4404);
    assert.match(unknown.reason, /not found/);
    assert.deepEqual(client.trace(UNKNOWN), ['ended 4404']);
    const bad = await client.ended('not-a-uuid');
    assert.deepEqual([bad.code, bad.reason], [4400, 'task id must be a UUID']);
    await client.waitFor(() => client.controls(done).length === 2, 'both refusals of the bad cursors');
    assert.deepEqual(client.controls(done).map((c) => c.type === 'ended' && [c.code, /lastEventId/.test(c.reason)]), [[4400, true], [4400, true]]);
    const bad4409 = await client.ended(corrupted);
    assert.equal(bad4409.code, 4409);
    assert.match(bad4409.reason, /corrupted: WRONGTYPE/);
    assert.equal((await client.ended(running, 30_000)).code, 1000);
    assert.deepEqual(client.events(running).map((e) => e.id), await eventIds(redis, running));
    assert.equal(client.ws.readyState, client.ws.OPEN);
  });

  test('unsubscribe: answered, nothing more of it follows; a new subscribe from the cursor gets exactly the rest', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const task = await startTask(gateway.url, { stage_ms: 150 });
    const client = await MuxClient.open(testScope(t), gateway.url);
    client.send({ type: 'subscribe', task });
    await client.waitFor(() => client.events(task).length >= 2, 'two events');
    client.send({ type: 'unsubscribe', task });
    await client.waitFor(() => client.controls(task).some((c) => c.type === 'unsubscribed'), 'unsubscribed');
    const before = client.events(task);
    const at = client.messages.length;
    // An unsubscribe of something not subscribed is answered too.
    client.send({ type: 'unsubscribe', task: UNKNOWN });
    await client.waitFor(() => client.controls(UNKNOWN).length === 1, 'the second unsubscribed');
    client.send({ type: 'subscribe', task, lastEventId: before.at(-1)!.id });
    assert.equal((await client.ended(task, 30_000)).code, 1000);
    const after = client.messages.slice(at).flatMap((m) => ('event' in m ? [m.event] : []));
    assert.deepEqual([...before, ...after].map((e) => e.id), await eventIds(redis, task));
    const trace = client.trace(task);
    assert.deepEqual(trace.slice(0, trace.indexOf('unsubscribed') + 1).filter((m) => !m.startsWith('event')), ['subscribed', 'unsubscribed']);
  });

  test('a subscribe followed at once by its unsubscribe is still answered: subscribed, then unsubscribed, and nothing of it after', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const task = await startTask(gateway.url, { stage_ms: 150 });
    const client = await MuxClient.open(testScope(t), gateway.url);
    client.send({ type: 'subscribe', task });
    client.send({ type: 'unsubscribe', task });
    await client.waitFor(() => client.controls(task).some((c) => c.type === 'unsubscribed'), 'unsubscribed');
    await waitForEnd(redis, task);
    const other = await startTask(gateway.url, { stage_ms: 0 });
    client.send({ type: 'subscribe', task: other });
    assert.equal((await client.ended(other, 30_000)).code, 1000, 'the connection goes on');
    assert.deepEqual(client.trace(task).filter((m) => !m.startsWith('event')), ['subscribed', 'unsubscribed']);
    assert.ok(client.trace(task).indexOf('unsubscribed') === client.trace(task).length - 1, 'nothing of it after its unsubscribed');
  });

  test('malformed messages get an error each and change nothing; repeated ones close the connection with 4400', async (t) => {
    const task = await startTask(gateway.url, { stage_ms: 0 });
    const client = await MuxClient.open(testScope(t), gateway.url);
    client.send({ type: 'subscribe', task, lastEventId: '0' });
    await client.ended(task);
    const cases: [string | Buffer, RegExp][] = [
      ['not json', /must be JSON/],
      ['[1,2]', /JSON object/],
      ['{"type":"hello"}', /type must be "subscribe" or "unsubscribe"/],
      ['{"type":"subscribe"}', /needs "task"/],
      [`{"type":"subscribe","task":"${task}","lastEventId":5}`, /lastEventId must be a string/],
      [`{"type":"subscribe","task":"${task}","token":false}`, /token must be a string/],
      [`{"type":"subscribe","task":"${task}","extra":1}`, /unknown field "extra"/],
      [Buffer.from('{"type":"subscribe"}'), /JSON text frames/],
    ];
    for (const [i, [message, reason]] of cases.entries()) {
      if (typeof message === 'string') client.ws.send(message);
      else client.ws.send(message, { binary: true });
      await client.waitFor(() => client.errors().length === i + 1, `error ${i}`);
      assert.match(client.errors()[i]!, reason);
    }
    // A duplicate subscribe is refused too, and the subscription it duplicates goes on.
    const running = await startTask(gateway.url, { stage_ms: 100 });
    client.send({ type: 'subscribe', task: running });
    client.send({ type: 'subscribe', task: running });
    await client.waitFor(() => client.errors().length === cases.length + 1, 'the duplicate refused');
    assert.match(client.errors().at(-1)!, /already subscribed/);
    assert.equal(client.ws.readyState, client.ws.OPEN);
    for (let i = cases.length + 1; i < MUX_MAX_STRIKES; i++) client.ws.send('{');
    const closed = await client.closed;
    assert.deepEqual(closed, { code: 4400, reason: 'too many invalid or over-rate messages' });
    assert.equal(client.errors().length, MUX_MAX_STRIKES);
  });

  test('?batch=1: every frame is an array of messages, together exactly those of a connection without batches; a replay goes in few frames, at most BATCH_MAX_BYTES of messages each', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const long = await startTask(gateway.url, { type: 'typewriter', params: { words: 2000, words_per_s: 100_000 } });
    await waitForEnd(redis, long);
    const longIds = await eventIds(redis, long);
    const running = await Promise.all([0, 1].map(() => startTask(gateway.url, { stage_ms: 60 })));
    const batched = await MuxClient.open(testScope(t), gateway.url, { query: '?batch=1' });
    const plain = await MuxClient.open(testScope(t), gateway.url);
    for (const client of [batched, plain]) {
      for (const task of [long, ...running]) client.send({ type: 'subscribe', task });
      client.send({ type: 'unsubscribe', task: UNKNOWN });
    }
    for (const client of [batched, plain]) for (const task of [long, ...running]) assert.equal((await client.ended(task)).code, 1000, task);
    for (const client of [batched, plain]) {
      await client.waitFor(() => client.controls(UNKNOWN).length === 1, 'unsubscribed');
      assert.deepEqual(client.controls(UNKNOWN), [{ type: 'unsubscribed', task: UNKNOWN }]);
    }
    for (const task of [long, ...running]) {
      const ids = task === long ? longIds : await eventIds(redis, task);
      for (const client of [batched, plain]) {
        assert.deepEqual(client.events(task).map((e) => e.id), ids, task);
        assert.deepEqual(client.trace(task), ['subscribed', ...client.events(task).map((e) => `event ${e.status}`), 'ended 1000']);
      }
      assert.deepEqual(batched.events(task), plain.events(task));
    }
    assert.ok(plain.frames.every((f) => f.messages === 1));
    const messages = batched.frames.reduce((sum, f) => sum + f.messages, 0);
    assert.equal(messages, batched.messages.length);
    // The replay's pages of 100 events come in a frame or two each, not one frame per event.
    assert.ok(batched.frames.length < longIds.length / 10, `${batched.frames.length} frames for ${messages} messages`);
    for (const f of batched.frames) assert.ok(f.messages === 1 || f.bytes <= BATCH_MAX_BYTES + f.messages + 1, JSON.stringify(f));
  });

  test('?batch= other than 1, true, 0 or false is refused before the upgrade with 400 INVALID_QUERY', async () => {
    for (const value of ['yes', '2', '']) {
      const refused = await upgrade(`${gateway.url.replace(/^http/, 'ws')}/ws?batch=${value}`);
      assert.equal(refused.status, 400, value);
      assert.deepEqual(refused.body, { error: { code: 'INVALID_QUERY', message: 'batch must be 1, true, 0 or false' } });
    }
    const accepted = await upgrade(`${gateway.url.replace(/^http/, 'ws')}/ws?batch=false`);
    assert.equal(accepted.status, 101);
    accepted.ws!.terminate();
  });

  test(`a message over ${MUX_MAX_MESSAGE_BYTES} bytes closes the connection with 1009`, async (t) => {
    const client = await MuxClient.open(testScope(t), gateway.url);
    client.send({ type: 'subscribe', task: UNKNOWN, token: 'x'.repeat(MUX_MAX_MESSAGE_BYTES) });
    assert.equal((await client.closed).code, 1009);
  });
});

describe('multiplexed /ws limits', () => {
  test('WS_MAX_SUBSCRIPTIONS: one more ends with 4429 until one ends; the message rate: subscribes over it end with 1013 and count as strikes', async (t) => {
    const redisUrl = await testRedisUrl();
    const redis = await redisFor(t, redisUrl);
    const gateway = await startGatewayInProcess(t, redisUrl, { WS_MAX_SUBSCRIPTIONS: '3', WS_MESSAGE_BURST: '8', WS_MESSAGES_PER_S: '0.001' });
    // No worker: these tasks stay PENDING, so their subscriptions stay open.
    const tasks = await Promise.all([0, 1, 2, 3].map(() => startTask(gateway.url)));
    const client = await MuxClient.open(testScope(t), gateway.url);
    for (const task of tasks) client.send({ type: 'subscribe', task });
    const refused = await client.ended(tasks[3]!);
    assert.deepEqual([refused.code, refused.reason], [4429, 'at most 3 subscriptions per connection']);
    for (const task of tasks.slice(0, 3)) await client.waitFor(() => client.trace(task).join() === 'subscribed,event PENDING', `${task} open`);
    // One ends (its task is cancelled): room for another.
    assert.equal((await request(`${gateway.url}/tasks/${tasks[0]}/cancel`, { method: 'POST' })).status, 202);
    await client.ended(tasks[0]!);
    client.send({ type: 'subscribe', task: tasks[3]! });
    await client.waitFor(() => client.trace(tasks[3]!).includes('event PENDING'), 'the fourth subscribed');
    assert.deepEqual(client.events(tasks[3]!).map((e) => e.id), await eventIds(redis, tasks[3]!));
    for (const task of tasks.slice(1)) client.send({ type: 'unsubscribe', task });
    // Five subscribes so far, a burst of 8: three more are taken, the next ends with 1013 and strikes;
    // unsubscribes are always honoured.
    const unknown = [0, 1, 2, 3].map(() => randomUUID());
    for (const task of unknown.slice(0, 3)) client.send({ type: 'subscribe', task });
    for (const task of unknown.slice(0, 3)) assert.equal((await client.ended(task)).code, 4404);
    for (let i = 0; i < 2; i++) client.send({ type: 'unsubscribe', task: unknown[0]! });
    client.send({ type: 'subscribe', task: unknown[3]! });
    const over = await client.ended(unknown[3]!);
    assert.deepEqual([over.code, over.reason], [1013, 'message rate exceeded, subscribe again after a backoff']);
    await client.waitFor(() => client.controls(unknown[0]!).length === 3, 'both unsubscribes answered');
    assert.deepEqual(client.trace(unknown[0]!), ['ended 4404', 'unsubscribed', 'unsubscribed']);
    for (let i = 1; i < MUX_MAX_STRIKES; i++) client.send({ type: 'subscribe', task: UNKNOWN });
    assert.deepEqual(await client.closed, { code: 4400, reason: 'too many invalid or over-rate messages' });
  });

  test('auth on: each subscription needs its task watch token or an API token; another task\'s token is refused with 4401; tokens never logged', async (t) => {
    const redisUrl = await testRedisUrl();
    const redis = await redisFor(t, redisUrl);
    const gateway = await startGatewayInProcess(t, redisUrl, { API_TOKENS: 'api-secret-1', TOKEN_SECRET: 's'.repeat(32), LOG_LEVEL: 'debug' });
    await startWorkerInProcess(t, redisUrl, { STAGE_MS: '0' });
    const started = await Promise.all([0, 1].map(async () => {
      const res = await request(`${gateway.url}/tasks`, { method: 'POST', body: { stage_ms: 0 }, headers: { authorization: 'Bearer api-secret-1' } });
      assert.equal(res.status, 202);
      return res.body as { task_id: string; watch_token: string };
    }));
    const [a, b] = started as [typeof started[0], typeof started[0]];
    for (const task of [a, b]) await waitForEnd(redis, task.task_id);
    // The upgrade needs no token: each subscription brings its own.
    const client = await MuxClient.open(testScope(t), gateway.url);
    client.send({ type: 'subscribe', task: a.task_id, token: b.watch_token });
    client.send({ type: 'subscribe', task: b.task_id });
    const wrong = await client.ended(a.task_id);
    assert.deepEqual([wrong.code, wrong.reason], [4401, 'invalid or expired token for this task']);
    assert.equal((await client.ended(b.task_id)).code, 4401);
    assert.deepEqual(client.events(a.task_id), []);
    client.send({ type: 'subscribe', task: b.task_id, token: b.watch_token });
    await client.waitFor(() => client.controls(b.task_id).length === 3, 'b with its own token');
    assert.deepEqual(client.events(b.task_id).map((e) => e.id), await eventIds(redis, b.task_id));
    // The connection's own token (here an API token in the query) covers subscribes without one.
    const withApi = await MuxClient.open(testScope(t), gateway.url, { query: '?token=api-secret-1' });
    withApi.send({ type: 'subscribe', task: a.task_id });
    assert.equal((await withApi.ended(a.task_id)).code, 1000);
    assert.deepEqual(withApi.events(a.task_id).map((e) => e.id), await eventIds(redis, a.task_id));
    const logs = JSON.stringify(gateway.logs);
    for (const secret of [a.watch_token, b.watch_token]) assert.ok(!logs.includes(secret), 'a token was logged');
  });
});
