import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { before, describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { ApiClient } from '../../src/client/api-client.js';
import { TaskWatcher, type FinalState, type WatchState } from '../../src/client/task-watcher.js';
import { WatchTokens } from '../../src/client/watch-tokens.js';
import type { TaskEvent } from '../../src/wire/events.js';
import { startRestartableGateway, type RestartableGateway } from '../helpers/gateway-restart.js';
import { API_TOKEN, AUTH_ENV, WATCH_TOKEN_RE } from '../helpers/auth.js';
import { startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { eventIds } from '../helpers/task-log.js';

/** The kill rounds open sockets with `ws` through createSocket; every other watch uses the default, the global WebSocket. */
const createSocket = (url: string) => new WebSocket(url);
const FAST = { initialMs: 100, maxMs: 800 };

/** A watcher that records everything it reports. */
function recorded(options: Omit<ConstructorParameters<typeof TaskWatcher>[0], 'onEvent' | 'onState'>) {
  const events: TaskEvent[] = [];
  const states: WatchState[] = [];
  const watcher = new TaskWatcher({
    ...options,
    onEvent: (e) => events.push(e),
    onState: (s) => states.push(s),
  });
  return { watcher, events, states, kinds: () => states.map((s) => s.state) };
}

/** Runs a watch to its end; a watch that times out is closed so its retries cannot outlive the test. */
const run = (w: TaskWatcher, what = 'watch to end'): Promise<FinalState> =>
  withTimeout(w.start(), what, 60_000).catch(async (err: unknown) => {
    await w.close();
    throw err;
  });

describe('TaskWatcher against a real gateway and worker', () => {
  let gateway: RestartableGateway;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startRestartableGateway(scope, redisUrl);
    await startWorkerInProcess(scope, redisUrl);
  });

  test('a whole task: every event once, in order, equal to XRANGE; connecting, live, finished', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 30 });
    const r = recorded({ baseUrl: gateway.url, taskId });
    assert.deepEqual(await run(r.watcher), { state: 'finished', status: 'COMPLETED' });
    assert.deepEqual(r.events.map((e) => e.id), await eventIds(redis, taskId));
    assert.deepEqual(r.events.map((e) => [e.status, e.progress]), [
      ['PENDING', 0], ['STARTED', 25], ['PROCESSING', 50], ['CONCLUDING', 75], ['COMPLETED', 100],
    ]);
    assert.deepEqual(r.kinds(), ['connecting', 'live', 'finished']);
    assert.equal(r.watcher.lastEventId, r.events.at(-1)!.id);
  });

  test('gateway killed and restarted at random points: delivered events equal XRANGE exactly', async (t) => {
    const redis = await redisFor(t, redisUrl);
    for (let round = 0; round < 4; round++) {
      const taskId = await startTask(gateway.url, { stage_ms: 250 });
      // Kill after a random number of delivered events (0: as soon as the socket is live).
      const killAfter = Math.floor(Math.random() * 4);
      const signal: NodeJS.Signals = Math.random() < 0.5 ? 'SIGKILL' : 'SIGTERM';
      let killing: Promise<void> | undefined;
      const events: TaskEvent[] = [];
      const states: WatchState[] = [];
      const trigger = () => {
        if (!killing && events.length >= killAfter && states.at(-1)?.state === 'live') killing = gateway.kill(signal);
      };
      const watcher = new TaskWatcher({
        createSocket,
        baseUrl: gateway.url,
        taskId,
        backoff: FAST,
        onEvent: (e) => {
          events.push(e);
          trigger();
        },
        onState: (s) => {
          states.push(s);
          trigger();
        },
      });
      const done = run(watcher, `round ${round}`);
      await waitFor(() => killing !== undefined, `round ${round}: kill after ${killAfter} events`, 30_000);
      await killing;
      // While the gateway is down, at least one attempt fails and is rescheduled.
      await waitFor(
        () => states.filter((s) => s.state === 'reconnecting').length >= 2,
        `round ${round}: a failed reconnect attempt`,
        30_000,
      );
      await gateway.restart();
      const final = await done;
      const label = `round ${round} (${signal} after ${killAfter})`;
      assert.deepEqual(final, { state: 'finished', status: 'COMPLETED' }, label);
      assert.deepEqual(events.map((e) => e.id), await eventIds(redis, taskId), label);
      for (const s of states) {
        if (s.state !== 'reconnecting') continue;
        assert.ok(s.delayMs >= FAST.initialMs / 2 && s.delayMs <= FAST.maxMs, `${label}: delay ${s.delayMs}`);
        assert.ok(s.nextAttemptAt > 0);
      }
      assert.equal(states.at(-1)!.state, 'finished');
    }
  });

  test('an unknown task fails with 4404 at once and never retries', async () => {
    const r = recorded({ baseUrl: gateway.url, taskId: '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b' });
    const final = await run(r.watcher);
    assert.equal(final.state, 'failed');
    assert.equal(final.state === 'failed' && final.code, 4404);
    assert.match(final.state === 'failed' ? final.reason : '', /not found/);
    assert.deepEqual(r.kinds(), ['connecting', 'live', 'failed']);
    assert.deepEqual(r.events, []);
  });

  test('a malformed task id fails with 4400 and never retries', async () => {
    const r = recorded({ baseUrl: gateway.url, taskId: 'not-a-task' });
    const final = await run(r.watcher);
    assert.equal(final.state === 'failed' && final.code, 4400);
    assert.equal(r.states.filter((s) => s.state === 'connecting').length, 1);
  });

  test('resuming after a given lastEventId delivers only later events; at the end it just finishes', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const taskId = await startTask(gateway.url, { stage_ms: 0 });
    await run(recorded({ baseUrl: gateway.url, taskId }).watcher);
    const all = await eventIds(redis, taskId);
    const fromTwo = recorded({ baseUrl: gateway.url, taskId, lastEventId: all[1] });
    assert.deepEqual(await run(fromTwo.watcher), { state: 'finished', status: 'COMPLETED' });
    assert.deepEqual(fromTwo.events.map((e) => e.id), all.slice(2));
    const atEnd = recorded({ baseUrl: gateway.url, taskId, lastEventId: all.at(-1) });
    assert.deepEqual(await run(atEnd.watcher), { state: 'finished', status: null });
    assert.deepEqual(atEnd.events, []);
    assert.throws(() => recorded({ baseUrl: gateway.url, taskId, lastEventId: 'abc' }), /invalid lastEventId/);
  });
});

describe('TaskWatcher against a gateway with auth on', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();
  const api = () => new ApiClient(gateway.url, { token: API_TOKEN });

  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl, AUTH_ENV);
    await startWorkerInProcess(scope, redisUrl);
  });

  test('Node: the API token, or the start\'s watch token, goes as an Authorization header; the URL holds no token', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const started = await api().start({ params: { stage_ms: 20 } });
    const urls: string[] = [];
    const headers: (Record<string, string> | undefined)[] = [];
    for (const token of [API_TOKEN, started.watch_token!]) {
      const r = recorded({
        baseUrl: gateway.url,
        taskId: started.task_id,
        token,
        createSocket: (url, h) => {
          urls.push(url);
          headers.push(h);
          return new WebSocket(url, { headers: h });
        },
      });
      assert.deepEqual(await run(r.watcher), { state: 'finished', status: 'COMPLETED' });
      assert.deepEqual(r.events.map((e) => e.id), await eventIds(redis, started.task_id));
    }
    assert.deepEqual(headers, [{ authorization: `Bearer ${API_TOKEN}` }, { authorization: `Bearer ${started.watch_token}` }]);
    for (const url of urls) assert.ok(!url.includes('token'), url);

    // The default socket (Node's global WebSocket) sends the header too.
    const r = recorded({ baseUrl: gateway.url, taskId: started.task_id, token: API_TOKEN });
    assert.deepEqual(await run(r.watcher), { state: 'finished', status: 'COMPLETED' });
    assert.equal(r.events.length, 5);
  });

  test('browser style: urlToken (WatchTokens) puts a watch token in the URL, never the API token', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const { task_id: taskId } = await api().start({ params: { stage_ms: 20 } });
    const urls: string[] = [];
    const tokens = new WatchTokens(api());
    const r = recorded({
      baseUrl: gateway.url,
      taskId,
      token: API_TOKEN,
      urlToken: tokens.get,
      createSocket: (url, h) => {
        assert.equal(h, undefined, 'no headers: a browser cannot send them');
        urls.push(url);
        return new WebSocket(url);
      },
    });
    assert.deepEqual(await run(r.watcher), { state: 'finished', status: 'COMPLETED' });
    assert.deepEqual(r.events.map((e) => e.id), await eventIds(redis, taskId));
    assert.equal(urls.length, 1);
    const query = new URL(urls[0]!).searchParams;
    assert.match(query.get('token')!, WATCH_TOKEN_RE);
    assert.ok(!urls[0]!.includes(API_TOKEN));
  });

  test('no token, a wrong token or another task\'s watch token: failed with 4401 and the gateway\'s reason, no endless retries', async () => {
    const { task_id: taskId } = await api().start({ params: { stage_ms: 20 } });
    const { watch_token: otherWatch } = await api().start({ params: { stage_ms: 0 } });
    const cases = [
      { options: {}, reason: 'a watch token or API token is required' },
      { options: { token: 'wrong-token' }, reason: 'invalid or expired token for this task' },
      { options: { token: otherWatch! }, reason: 'invalid or expired token for this task' },
      { options: { token: otherWatch!, urlToken: () => Promise.resolve(otherWatch) }, reason: 'invalid or expired token for this task' },
    ];
    for (const { options, reason } of cases) {
      let sockets = 0;
      const r = recorded({
        baseUrl: gateway.url,
        taskId,
        ...options,
        backoff: FAST,
        createSocket: (url, h) => {
          sockets++;
          return new WebSocket(url, { headers: h });
        },
      });
      assert.deepEqual(await run(r.watcher), { state: 'failed', code: 4401, reason });
      assert.equal(sockets, 1, 'one refused connection, then the check');
      assert.deepEqual(r.kinds(), ['connecting', 'failed']);
    }
  });

  test('a urlToken source that is refused (a wrong API token) fails the watch with 4401 before any socket', async () => {
    const { task_id: taskId } = await api().start({ params: { stage_ms: 0 } });
    const tokens = new WatchTokens(new ApiClient(gateway.url, { token: 'wrong-token' }));
    let sockets = 0;
    const r = recorded({
      baseUrl: gateway.url,
      taskId,
      token: 'wrong-token',
      urlToken: tokens.get,
      createSocket: (url) => {
        sockets++;
        return new WebSocket(url);
      },
    });
    assert.deepEqual(await run(r.watcher), { state: 'failed', code: 4401, reason: 'invalid API token' });
    assert.equal(sockets, 0);
  });
});

/** A scripted peer: each connection runs the next script entry; `refuse` answers the upgrade with 503. */
async function scriptedPeer(t: { after(fn: () => unknown): void }, scripts: ('refuse' | ((ws: WebSocket) => void))[]) {
  const urls: string[] = [];
  const clientCloses: number[] = [];
  let n = 0;
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    verifyClient: (info: { req: { url?: string } }, cb: (ok: boolean, code?: number) => void) => {
      urls.push(info.req.url ?? '');
      const script = scripts[n++];
      if (script === 'refuse' || script === undefined) cb(false, 503);
      else cb(true);
    },
  });
  wss.on('connection', (ws) => {
    ws.on('close', (code) => clientCloses.push(code));
    const script = scripts[n - 1];
    if (typeof script === 'function') script(ws);
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  t.after(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, urls, clientCloses };
}

const ev = (n: number, status = 'PROCESSING') =>
  JSON.stringify({ id: `100-${n}`, task_id: 't', status, progress: n * 10, ts: 1 });

describe('TaskWatcher rules, against a scripted peer', () => {
  test('drops replayed events, resumes with the last id, resets the backoff after a connect; frames of one event or batches', async (t) => {
    const peer = await scriptedPeer(t, [
      (ws) => {
        ws.send(ev(1));
        ws.send(ev(2));
        ws.close(1011, 'oops');
      },
      'refuse',
      'refuse',
      (ws) => {
        ws.send(ev(1));
        ws.send(ev(2));
        ws.send(ev(3));
        ws.close(1013, 'try again');
      },
      (ws) => {
        ws.send(`[${ev(3)}]`);
        // Nothing after the terminal event counts, in its batch or after it.
        ws.send(`[${ev(4, 'COMPLETED')},${ev(5)}]`);
      },
    ]);
    const r = recorded({ baseUrl: peer.url, taskId: 't', backoff: { initialMs: 40, maxMs: 1000 }, random: () => 0 });
    assert.deepEqual(await run(r.watcher), { state: 'finished', status: 'COMPLETED' });
    assert.deepEqual(r.events.map((e) => e.id), ['100-1', '100-2', '100-3', '100-4']);
    assert.deepEqual(peer.urls, [
      '/ws/task/t?batch=1',
      '/ws/task/t?lastEventId=100-2&batch=1',
      '/ws/task/t?lastEventId=100-2&batch=1',
      '/ws/task/t?lastEventId=100-2&batch=1',
      '/ws/task/t?lastEventId=100-3&batch=1',
    ]);
    const delays = r.states.flatMap((s) => (s.state === 'reconnecting' ? [s.delayMs] : []));
    assert.deepEqual(delays, [20, 40, 80, 20], 'doubles while attempts fail, back to the first delay after a connect');
    const closes = r.states.flatMap((s) => (s.state === 'reconnecting' ? [s.code] : []));
    assert.deepEqual(closes, [1011, 1006, 1006, 1013]);
    // The terminal event ends the watch: the client closes with 1000 and never comes back.
    await waitFor(() => peer.clientCloses.length === 3, 'the client closes the last socket');
    assert.equal(peer.clientCloses.at(-1), 1000);
    assert.equal(peer.urls.length, 5);
  });

  test('terminal close codes stop it for good; 1000 finishes it', async (t) => {
    for (const code of [4400, 4401, 4403, 4404, 4409, 1000]) {
      const peer = await scriptedPeer(t, [(ws) => ws.close(code, `reason ${code}`), (ws) => ws.close(1000)]);
      const r = recorded({ baseUrl: peer.url, taskId: 't', backoff: { initialMs: 10, maxMs: 10 } });
      const final = await run(r.watcher);
      if (code === 1000) assert.deepEqual(final, { state: 'finished', status: null });
      else assert.deepEqual(final, { state: 'failed', code, reason: `reason ${code}` });
      assert.equal(peer.urls.length, 1, `${code}: no second connection`);
    }
  });

  test('a malformed frame (or batch) fails the watch; close() stops a reconnecting watch', async (t) => {
    for (const frame of ['{"nope":1}', `[${ev(1)},{"nope":1}]`, '[]']) {
      const bad = await scriptedPeer(t, [(ws) => ws.send(frame)]);
      const r = recorded({ baseUrl: bad.url, taskId: 't' });
      assert.deepEqual(await run(r.watcher), { state: 'failed', code: 1002, reason: 'the gateway sent a malformed event' }, frame);
      assert.deepEqual(r.events, [], frame);
    }

    const down = await scriptedPeer(t, ['refuse']);
    const r2 = recorded({ baseUrl: down.url, taskId: 't', backoff: { initialMs: 60_000, maxMs: 60_000 } });
    const done = r2.watcher.start();
    await waitFor(() => r2.watcher.state.state === 'reconnecting', 'reconnecting');
    assert.deepEqual(await r2.watcher.close(), { state: 'closed' });
    assert.deepEqual(await done, { state: 'closed' });
    assert.deepEqual(r2.kinds(), ['connecting', 'reconnecting', 'closed']);
  });
});
