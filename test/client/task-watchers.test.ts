import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { TaskWatch } from '../../src/client/task-watch.js';
import { TaskWatchers } from '../../src/client/task-watchers.js';
import type { WatchState } from '../../src/client/task-watcher.js';
import type { TaskEvent } from '../../src/wire/events.js';
import type { MuxClientMessage } from '../../src/wire/mux.js';
import { parseClientMessage } from '../../src/wire/mux-messages.js';
import { startRestartableGateway } from '../helpers/gateway-restart.js';
import { request } from '../helpers/http.js';
import { startWorkerProc } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { eventIds } from '../helpers/task-log.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { FEED_STREAM, taskKey } from '../../src/store/keys.js';
import { TaskStore } from '../../src/store/task-store.js';
import type { FeedEntry } from '../../src/wire/feed.js';

const FAST = { initialMs: 100, maxMs: 800 };
const UNKNOWN = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';

/** Sockets through `ws`, so the test can drop one from the client side; counts how many are open at once. */
function countedSockets() {
  const sockets: WebSocket[] = [];
  let open = 0;
  let maxOpen = 0;
  const createSocket = (url: string) => {
    const ws = new WebSocket(url);
    sockets.push(ws);
    let opened = false;
    ws.on('open', () => {
      opened = true;
      maxOpen = Math.max(maxOpen, ++open);
    });
    ws.on('close', () => opened && open--);
    return ws;
  };
  return { createSocket, sockets, get maxOpen() { return maxOpen; }, get open() { return open; } };
}

describe('TaskWatchers against a real gateway and worker', () => {
  test('500 tasks over one connection across a client drop, a SIGKILL and a SIGTERM of the gateway: each watch equals XRANGE exactly', async (t) => {
    const redisUrl = await testRedisUrl();
    const redis = await redisFor(t, redisUrl);
    const gateway = await startRestartableGateway(t, redisUrl, { START_BURST: '1000' });
    await startWorkerProc(t, redisUrl, { WORKER_CONCURRENCY: '500' });
    const tasks: string[] = [];
    for (let i = 0; i < 500; i += 50) {
      const page = await Promise.all(Array.from({ length: 50 }, () => request(`${gateway.url}/tasks`, { method: 'POST', body: { stage_ms: 9000 } })));
      for (const res of page) {
        assert.equal(res.status, 202);
        tasks.push(res.body.task_id as string);
      }
    }
    const sockets = countedSockets();
    const watchers = new TaskWatchers({ baseUrl: gateway.url, createSocket: sockets.createSocket, backoff: FAST });
    t.after(() => watchers.close());
    const got = new Map<string, TaskEvent[]>(tasks.map((id) => [id, []]));
    const states = new Map<string, WatchState[]>(tasks.map((id) => [id, []]));
    const watches: TaskWatch[] = tasks.map((id) =>
      watchers.watch(id, { onEvent: (e) => got.get(id)!.push(e), onState: (s) => states.get(id)!.push(s) }),
    );
    const unknown = watchers.watch(UNKNOWN);
    const delivered = () => [...got.values()].reduce((n, events) => n + events.length, 0);
    const live = () => watches.every((w) => w.state.state === 'live' || w.isFinal);

    // A client-side drop (no close handshake), once every watch is live and events flow.
    await waitFor(() => live() && delivered() >= 1000, 'every watch live, 1000 events', 60_000);
    sockets.sockets.at(-1)!.terminate();
    // The gateway killed outright, then stopped with SIGTERM (1001): each time every watch resumes from its cursor.
    await waitFor(() => sockets.sockets.length >= 2 && live(), 'resumed after the drop', 60_000);
    await gateway.kill('SIGKILL');
    await waitFor(() => states.get(tasks[0]!)!.filter((s) => s.state === 'reconnecting').length >= 3, 'a failed attempt while down', 30_000);
    await gateway.restart();
    await waitFor(() => states.get(tasks[0]!)!.filter((s) => s.state === 'live').length >= 3 && live(), 'resumed after SIGKILL', 60_000);
    assert.ok(!watches[0]!.isFinal, 'the SIGTERM must come while the tasks run');
    await gateway.kill('SIGTERM');
    await gateway.restart();

    const finals = await withTimeout(Promise.all(watches.map((w) => w.done)), 'every watch to finish', 90_000);
    for (const [i, id] of tasks.entries()) {
      assert.deepEqual(finals[i], { state: 'finished', status: 'COMPLETED' }, id);
      assert.deepEqual(got.get(id)!.map((e) => e.id), await eventIds(redis, id), id);
      assert.equal(watches[i]!.lastEventId, got.get(id)!.at(-1)!.id);
    }
    assert.deepEqual(await unknown.done, { state: 'failed', code: 4404, reason: `task ${UNKNOWN} not found` });
    const closes = states.get(tasks[0]!)!.flatMap((s) => (s.state === 'reconnecting' ? [s.code] : []));
    assert.equal(closes[0], 1006, 'the client drop');
    assert.ok(closes.includes(1001), `the SIGTERM: ${closes.join()}`);
    assert.equal(sockets.maxOpen, 1, 'never more than one socket at a time');
    // Once no watch runs, the socket is closed.
    await waitFor(() => sockets.open === 0, 'the socket closed after the last watch');
  });

  test('a feed followed beside task watches on the same socket: every entry once, in order, equal to XRANGE, across a client drop', async (t) => {
    const redisUrl = await testRedisUrl();
    const redis = await redisFor(t, redisUrl);
    const gateway = await startGatewayInProcess(t, redisUrl, { FEED_PROGRESS_MS: '3600000' });
    await startWorkerInProcess(t, redisUrl, { FEED_PROGRESS_MS: '3600000', WORKER_CONCURRENCY: '20' });
    const sockets = countedSockets();
    const watchers = new TaskWatchers({ baseUrl: gateway.url, createSocket: sockets.createSocket, backoff: FAST });
    t.after(() => watchers.close());
    const entries: FeedEntry[] = [];
    const states: string[] = [];
    const follow = watchers.follow({ onEntry: (e) => entries.push(e), onState: (s) => states.push(s.state) });
    await waitFor(() => follow.lastEventId !== undefined, 'the cursor the feed starts from');
    const start = follow.lastEventId!;
    const store = new TaskStore(redis);
    const tasks = (await Promise.all(Array.from({ length: 20 }, () => store.start('reference', { stage_ms: 100 })))).map((s) => s.state.task_id);
    const watch = watchers.watch(tasks[0]!);
    await waitFor(() => entries.length >= 30, '30 entries');
    sockets.sockets.at(-1)!.terminate();
    assert.equal((await withTimeout(watch.done, 'the watch')).state, 'finished');
    const ended = async () => (await Promise.all(tasks.map((id) => redis.hget(taskKey(id), 'status')))).every((st) => st === 'COMPLETED');
    await waitFor(ended, 'every task ended', 60_000);
    const feed = (await redis.xrange(FEED_STREAM, '-', '+')).map(([id]) => id);
    await waitFor(() => follow.lastEventId === feed.at(-1), 'the whole feed', 30_000);
    assert.deepEqual(entries.map((e) => e.id), feed.slice(feed.indexOf(start) + 1));
    assert.ok(entries.every((e) => !('feed' in e)), 'entries as FeedEntry');
    assert.deepEqual(states, ['connecting', 'live', 'reconnecting', 'connecting', 'live']);
    assert.equal(sockets.sockets.length, 2, 'one socket, then one after the drop');
    assert.equal(sockets.maxOpen, 1);
    assert.deepEqual(await follow.close(), { state: 'closed' });
    await waitFor(() => sockets.open === 0, 'the socket closed after the last follow');
  });
});

/** A `/ws` peer that runs one script per connection and records what the client sends. */
async function scriptedMuxPeer(t: { after(fn: () => unknown): void }, onMessage: (ws: WebSocket, m: MuxClientMessage, n: number) => void) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const received: MuxClientMessage[][] = [];
  wss.on('connection', (ws) => {
    const mine: MuxClientMessage[] = [];
    received.push(mine);
    const n = received.length;
    ws.on('message', (data) => {
      const m = parseClientMessage(String(data));
      if ('error' in m) throw new Error(m.error);
      mine.push(m);
      onMessage(ws, m, n);
    });
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  t.after(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, received };
}

const T1 = '00000000-0000-4000-8000-000000000001';
const ev = (task: string, n: number, status = 'PROCESSING') => JSON.stringify({ id: `100-${n}`, task_id: task, type: 'stage', status, progress: n, ts: 1 });

describe('TaskWatchers rules, against a scripted peer', () => {
  test('a follow: subscribe with its own token, the cursor from subscribed, 4410 reported and resubscribed at once from the given id, resumed from its cursor after a drop, duplicates dropped', async (t) => {
    const feedEntry = (n: number) => JSON.stringify({ feed: 'tag:red', id: `100-${n}`, task_id: T1, type: 'reference', status: 'PENDING', progress: 0, tags: ['red'], ts: n });
    const peer = await scriptedMuxPeer(t, (ws, m, n) => {
      if (m.type !== 'subscribe' || !('feed' in m)) return;
      if (n === 1 && m.lastEventId === undefined) {
        ws.send(JSON.stringify({ type: 'subscribed', feed: m.feed, id: '100-1' }));
        ws.send(feedEntry(2));
        ws.send(JSON.stringify({ type: 'ended', feed: m.feed, code: 4410, reason: 'entries after the cursor are gone: reload the list, then continue from 100-5' }));
      } else if (n === 1) {
        ws.send(JSON.stringify({ type: 'subscribed', feed: m.feed }));
        ws.send(feedEntry(6));
        ws.terminate();
      } else {
        ws.send(JSON.stringify({ type: 'subscribed', feed: m.feed }));
        ws.send(feedEntry(6));
        ws.send(feedEntry(7));
      }
    });
    const watchers = new TaskWatchers({ baseUrl: peer.url, token: 'conn-token', backoff: { initialMs: 40, maxMs: 100 }, random: () => 0 });
    const got: string[] = [];
    const follow = watchers.follow({ tag: 'red', token: 'tag-token', onEntry: (e) => got.push(e.id), onReset: (id) => got.push(`reset ${id}`) });
    assert.throws(() => watchers.follow({ tag: 'red' }), /already followed/);
    assert.throws(() => watchers.follow({ tag: 'no spaces' }), /invalid tag/);
    await waitFor(() => follow.lastEventId === '100-7', 'the last entry');
    assert.deepEqual(got, ['100-2', 'reset 100-5', '100-6', '100-7']);
    assert.deepEqual(peer.received, [
      [
        { type: 'subscribe', feed: 'tag:red', token: 'tag-token' },
        { type: 'subscribe', feed: 'tag:red', lastEventId: '100-5', token: 'tag-token' },
      ],
      [{ type: 'subscribe', feed: 'tag:red', lastEventId: '100-6', token: 'tag-token' }],
    ]);
    assert.equal(follow.state.state, 'live');
    // A follow never ends by itself: closed here, before the peer (which waits for its sockets) is.
    assert.deepEqual(await follow.close(), { state: 'closed' });
  });

  test('a subscription ended with a code meaning "resume" is subscribed again after its backoff, from its cursor; a token rides in the message', async (t) => {
    let subscribes = 0;
    const peer = await scriptedMuxPeer(t, (ws, m) => {
      if (m.type !== 'subscribe' || !('task' in m)) return;
      subscribes++;
      ws.send(JSON.stringify({ type: 'subscribed', task: m.task }));
      if (subscribes === 1) {
        ws.send(ev(m.task, 1));
        ws.send(ev(m.task, 2));
        ws.send(JSON.stringify({ type: 'ended', task: m.task, code: 1013, reason: 'feed interrupted' }));
      } else {
        ws.send(ev(m.task, 2));
        ws.send(ev(m.task, 3, 'COMPLETED'));
        ws.send(JSON.stringify({ type: 'ended', task: m.task, code: 1000, reason: 'task finished' }));
      }
    });
    const watchers = new TaskWatchers({ baseUrl: peer.url, token: 'conn-token', backoff: { initialMs: 40, maxMs: 100 }, random: () => 0 });
    const events: string[] = [];
    const states: string[] = [];
    const watch = watchers.watch(T1, { onEvent: (e) => events.push(e.id), onState: (s) => states.push(s.state) });
    assert.deepEqual(await withTimeout(watch.done, 'the watch'), { state: 'finished', status: 'COMPLETED' });
    assert.deepEqual(events, ['100-1', '100-2', '100-3']);
    assert.deepEqual(states, ['connecting', 'live', 'reconnecting', 'connecting', 'live', 'finished']);
    assert.deepEqual(peer.received, [[
      { type: 'subscribe', task: T1, token: 'conn-token' },
      { type: 'subscribe', task: T1, lastEventId: '100-2', token: 'conn-token' },
    ]]);
  });

  test('lingerMs: a watch opened soon after the last one ended shares its socket; once idle that long, the socket closes', async (t) => {
    const closes: number[] = [];
    const peer = await scriptedMuxPeer(t, (ws, m) => {
      ws.once('close', (code) => closes.push(code));
      if (m.type !== 'subscribe' || !('task' in m)) return;
      ws.send(JSON.stringify({ type: 'subscribed', task: m.task }));
      ws.send(ev(m.task, 1, 'COMPLETED'));
      ws.send(JSON.stringify({ type: 'ended', task: m.task, code: 1000, reason: 'task finished' }));
    });
    const watchers = new TaskWatchers({ baseUrl: peer.url, lingerMs: 300 });
    t.after(() => watchers.close());
    assert.deepEqual(await withTimeout(watchers.watch(T1).done, 'the first watch'), { state: 'finished', status: 'COMPLETED' });
    const second = watchers.watch('00000000-0000-4000-8000-000000000002');
    assert.deepEqual(await withTimeout(second.done, 'the second watch'), { state: 'finished', status: 'COMPLETED' });
    assert.equal(peer.received.length, 1, 'one socket for both');
    assert.deepEqual(closes, []);
    // One listener per subscribe on the one socket: each sees its close.
    await waitFor(() => closes.length === 2, 'the idle socket closed', 5000);
    assert.deepEqual(closes, [1000, 1000]);
  });

  test('a watch of a task just unwatched waits for the unsubscribed answer; what belongs to the old subscription is not given to it', async (t) => {
    let connection: WebSocket | undefined;
    const peer = await scriptedMuxPeer(t, (ws, m) => {
      connection = ws;
      if (m.type === 'subscribe' && 'task' in m) {
        ws.send(JSON.stringify({ type: 'subscribed', task: m.task }));
        ws.send(ev(m.task, 1));
      }
    });
    const watchers = new TaskWatchers({ baseUrl: peer.url });
    const first = watchers.watch(T1, {});
    await waitFor(() => first.lastEventId === '100-1', 'the first event');
    const other = watchers.watch('00000000-0000-4000-8000-000000000002', {});
    assert.deepEqual(await first.close(), { state: 'closed' });
    const events: string[] = [];
    const second = watchers.watch(T1, { lastEventId: '100-1', onEvent: (e) => events.push(e.id), onState: (s) => s.state === 'failed' && events.push('failed') });
    await waitFor(() => peer.received[0]!.length === 3, 'subscribe, subscribe, unsubscribe');
    // The old subscription's messages in flight: not the new watch's, nor is its end.
    connection!.send(ev(T1, 2));
    connection!.send(JSON.stringify({ type: 'ended', task: T1, code: 4404, reason: 'gone' }));
    connection!.send(JSON.stringify({ type: 'unsubscribed', task: T1 }));
    await waitFor(() => peer.received[0]!.length === 4, 'the new subscribe, after the answer');
    assert.deepEqual(peer.received[0]![3], { type: 'subscribe', task: T1, lastEventId: '100-1' });
    connection!.send(ev(T1, 3, 'COMPLETED'));
    assert.deepEqual(await withTimeout(second.done, 'the second watch'), { state: 'finished', status: 'COMPLETED' });
    assert.deepEqual(events, ['100-3']);
    assert.equal(second.state.state, 'finished');
    await other.close();
    await waitFor(() => connection!.readyState === WebSocket.CLOSED, 'the socket closed after the last watch');
  });
});
