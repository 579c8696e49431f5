import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type WebSocket from 'ws';
import { signWatchToken } from '../../src/auth/tokens.js';
import { WEB_ROOT } from '../../src/http/app.js';
import type { TaskEvent } from '../../src/wire/events.js';
import { FEED_STREAM, PRIORITIES, TASKS_INDEX, commandsStream } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { request } from '../helpers/http.js';
import { startWorkerInProcess } from '../helpers/in-process.js';
import { startGatewayProc, type ServiceProc } from '../helpers/processes.js';
import { closed, rawHttp, upgrade } from '../helpers/raw.js';
import { connectRedis, testRedisUrl } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { watchTask } from '../helpers/ws-client.js';
import { closeRedis } from '../../src/store/redis.js';
import { eventIds } from '../helpers/task-log.js';

/**
 * The bad-input suite: one gateway (auth on) and one worker serve the whole table. Each row sends
 * one bad input and asserts the exact status or close code and error code; after each row a fresh
 * task must complete, and the tasks running throughout must have lost no event and gained none.
 */
const SECRET = 'bad-input-suite-secret-0123456789abcdef';
const MAIN = 'tok-main-6c1f0b7e9d';
const LIMITED = 'tok-limited-2a9e4d11c3';
const BURST = 300;
const PER_IP = 4;
const TOTAL = 8;
/**
 * Concurrent connections of the start flood: few enough that each is answered well within
 * HTTP_REQUEST_TIMEOUT_MS (2 s here) on a machine loaded by the rest of the suite.
 */
const FLOOD_WAVE = 10;
const UNKNOWN_TASK = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';
const STAGES = ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED'];
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const main = bearer(MAIN);
// Fixed names (ignored by git): a killed run leaves at most these, and the next run replaces them.
const DOTFILE = '.probe-bad-input';
const DIR = 'probe-dir-bad-input';

interface Task {
  id: string;
  token: string;
}

/** A watch that stays open for the whole suite, recording every event it gets. */
interface Watcher {
  readonly events: TaskEvent[];
  close?: number;
  reason?: string;
}

interface Ctx {
  gw: ServiceProc;
  redis: Redis;
  /** Runs for about the length of the table (4 stages of 8 s). */
  running: Task;
  /** Stays in STARTED for the whole suite: watches on it stay open (floods, frames). */
  parked: Task;
  /** Finished before the table starts: its events must never change. */
  done: Task & { ids: string[] };
  ws: string;
  /** The sockets open between rows: the parked watch, and the running one until its task ends. */
  steadyOpen(): number;
}

type Outcome = { status: number; code: string | undefined } | { close: number; reason: string };
type Expect = { status: number; code: string } | { close: number; reason: RegExp };

interface Row {
  name: string;
  expect: Expect;
  run(c: Ctx): Promise<Outcome>;
}

const errorCode = (body: any): string | undefined => body?.error?.code;

function http(
  name: string,
  status: number,
  code: string,
  build: (c: Ctx) => { path: string; method?: string; headers?: Record<string, string>; body?: unknown; raw?: string },
  check?: (res: { headers: Headers; body: any }) => void,
): Row {
  return {
    name,
    expect: { status, code },
    async run(c) {
      const { path, ...init } = build(c);
      const res = await request(`${c.gw.url}${path}`, init);
      check?.(res);
      return { status: res.status, code: errorCode(res.body) };
    },
  };
}

/** The request line and headers exactly as written (Connection: close added). */
function raw(name: string, status: number, code: string, target: string | ((c: Ctx) => string), extra = ''): Row {
  return {
    name,
    expect: { status, code },
    async run(c) {
      const path = typeof target === 'string' ? target : target(c);
      const res = await rawHttp(c.gw.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Connection: close\r\n\r\n`);
      return { status: res.status, code: errorCode(res.body) };
    },
  };
}

function refusedUpgrade(
  name: string,
  status: number,
  code: string,
  build: (c: Ctx) => { path: string; headers?: Record<string, string>; origin?: string },
  check?: (headers: Record<string, string | string[] | undefined>) => void,
): Row {
  return {
    name,
    expect: { status, code },
    async run(c) {
      const { path, ...options } = build(c);
      const res = await upgrade(`${c.ws}${path}`, options);
      res.ws?.terminate();
      check?.(res.headers);
      return { status: res.status, code: errorCode(res.body) };
    },
  };
}

/** Upgrades with the main API token, optionally acts on the open socket, and reports its close. */
function wsClose(name: string, close: number, reason: RegExp, path: (c: Ctx) => string, act?: (ws: WebSocket) => void): Row {
  return {
    name,
    expect: { close, reason },
    async run(c) {
      const res = await upgrade(`${c.ws}${path(c)}`, { headers: main });
      assert.equal(res.status, 101, `${name}: upgrade ${JSON.stringify(res.body)}`);
      const ws = res.ws!;
      const done = closed(ws);
      act?.(ws);
      const { code, reason } = await done;
      return { close: code, reason };
    },
  };
}

const frame = (name: string, close: number, reason: RegExp, act: (ws: WebSocket) => void) =>
  wsClose(name, close, reason, (c) => `/ws/task/${c.parked.id}`, act);

const start = (name: string, status: number, code: string, body: unknown, headers: Record<string, string> = main) =>
  http(name, status, code, () => ({ path: '/tasks', method: 'POST', headers, body }));

/** Counts of the gateway's 'watch connected' minus 'watch closed' debug lines: its open sockets. */
function openSockets(gw: ServiceProc): number {
  let open = 0;
  for (const line of gw.logs) {
    if (line.msg === 'watch connected') open += 1;
    if (line.msg === 'watch closed') open -= 1;
  }
  return open;
}

/** Holds `count` sockets on the parked task from `localAddress`. */
async function hold(c: Ctx, count: number, localAddress = '127.0.0.1'): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i++) {
    const res = await upgrade(`${c.ws}/ws/task/${c.parked.id}`, { headers: main, localAddress });
    assert.equal(res.status, 101, `holding socket ${i} from ${localAddress}: ${JSON.stringify(res.body)}`);
    sockets.push(res.ws!);
  }
  return sockets;
}

async function release(c: Ctx, sockets: WebSocket[], openBefore: number): Promise<void> {
  for (const ws of sockets) ws.terminate();
  await waitFor(() => openSockets(c.gw) === openBefore, 'held sockets released by the gateway');
}

function flood(name: string, which: 'per-ip' | 'total'): Row {
  return {
    name,
    expect: { status: 503, code: 'TOO_MANY_CONNECTIONS' },
    async run(c) {
      const baseline = c.steadyOpen();
      await waitFor(() => openSockets(c.gw) === baseline, 'only the long watches open');
      const sockets: WebSocket[] = [];
      let from = '127.0.0.1';
      if (which === 'per-ip') {
        sockets.push(...(await hold(c, PER_IP - baseline)));
      } else {
        for (let i = 0; baseline + sockets.length < TOTAL; i++) {
          sockets.push(...(await hold(c, 1, `127.0.0.${2 + Math.floor(i / PER_IP)}`)));
        }
        from = '127.0.0.200';
      }
      const res = await upgrade(`${c.ws}/ws/task/${c.parked.id}`, { headers: main, localAddress: from });
      res.ws?.terminate();
      assert.equal(res.headers['retry-after'], '5');
      assert.match(res.body.error.message, which === 'per-ip' ? /client address/ : /gateway/);
      await release(c, sockets, baseline);
      return { status: res.status, code: errorCode(res.body) };
    },
  };
}

const expired = (c: Ctx) => signWatchToken(SECRET, c.running.id, Math.floor(Date.now() / 1000) - 1);
const forged = (c: Ctx) => signWatchToken('another-secret-0123456789abcdef0123', c.running.id, Math.floor(Date.now() / 1000) + 600);
const tampered = (c: Ctx) => c.running.token.slice(0, -2) + (c.running.token.endsWith('AA') ? 'BB' : 'AA');
const challenge = (res: { headers: Headers }) => assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="taskcast"/);

const ROWS: Row[] = [
  // Bodies.
  http('malformed JSON', 400, 'INVALID_BODY', () => ({ path: '/tasks', headers: { ...main, 'content-type': 'application/json' }, raw: '{"stage_ms":' })),
  http('huge body (Content-Length)', 413, 'PAYLOAD_TOO_LARGE', () => ({
    path: '/tasks',
    headers: { ...main, 'content-type': 'application/json' },
    raw: JSON.stringify({ params: { pad: 'x'.repeat(20_000) } }),
  })),
  {
    name: 'huge body (chunked)',
    expect: { status: 413, code: 'PAYLOAD_TOO_LARGE' },
    async run(c) {
      const chunk = 'x'.repeat(8000);
      const chunks = [0, 1, 2].map(() => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('');
      const res = await rawHttp(
        c.gw.port,
        `POST /tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MAIN}\r\nContent-Type: application/json\r\n` +
          `Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks}0\r\n\r\n`,
      );
      return { status: res.status, code: errorCode(res.body) };
    },
  },
  http('wrong content type (text/plain)', 415, 'UNSUPPORTED_MEDIA_TYPE', () => ({ path: '/tasks', headers: { ...main, 'content-type': 'text/plain' }, raw: '{}' })),
  http('form-encoded body', 415, 'UNSUPPORTED_MEDIA_TYPE', () => ({
    path: '/tasks',
    headers: { ...main, 'content-type': 'application/x-www-form-urlencoded' },
    raw: 'stage_ms=1',
  })),
  start('JSON array body', 400, 'INVALID_BODY', []),
  start('JSON null body', 400, 'INVALID_BODY', null),
  start('JSON string body', 400, 'INVALID_BODY', 'start'),
  start('deeply nested JSON', 400, 'INVALID_BODY', JSON.parse('['.repeat(3000) + ']'.repeat(3000))),
  start('negative stage_ms', 400, 'INVALID_PARAMS', { stage_ms: -1 }),
  start('fractional stage_ms', 400, 'INVALID_PARAMS', { stage_ms: 1.5 }),
  start('huge stage_ms', 400, 'INVALID_PARAMS', { stage_ms: 1e12 }),
  http('infinite stage_ms (1e400)', 400, 'INVALID_PARAMS', () => ({ path: '/tasks', headers: { ...main, 'content-type': 'application/json' }, raw: '{"stage_ms":1e400}' })),
  start('stage_ms as a string', 400, 'INVALID_PARAMS', { stage_ms: '50' }),
  start('unknown top-level field', 400, 'INVALID_BODY', { stage_ms: 0, urgency: 'high' }),
  start('unknown params field', 400, 'INVALID_PARAMS', { params: { stage_ms: 0, shell: 'rm -rf /' } }),
  http('__proto__ field', 400, 'INVALID_BODY', () => ({
    path: '/tasks',
    headers: { ...main, 'content-type': 'application/json' },
    raw: '{"__proto__":{"admin":true}}',
  })),
  start('unknown task type', 400, 'UNKNOWN_TASK_TYPE', { type: 'task:*' }),
  // Task ids with Redis glob and key characters.
  http('id *', 400, 'INVALID_TASK_ID', () => ({ path: '/tasks/*', headers: main })),
  http('id ? (encoded)', 400, 'INVALID_TASK_ID', () => ({ path: '/tasks/%3F', headers: main })),
  http('id with : suffix', 400, 'INVALID_TASK_ID', (c) => ({ path: `/tasks/${c.running.id}:events`, headers: main })),
  http('id in { } hash tag', 400, 'INVALID_TASK_ID', (c) => ({ path: `/tasks/%7B${c.running.id}%7D`, headers: main })),
  http('id with a space', 400, 'INVALID_TASK_ID', () => ({ path: '/tasks/a%20b', headers: main })),
  http('id with NUL', 400, 'INVALID_TASK_ID', (c) => ({ path: `/tasks/${c.running.id}%00`, headers: main })),
  http('events of id *', 400, 'INVALID_TASK_ID', () => ({ path: '/tasks/*/events', headers: main })),
  wsClose('WS id *', 4400, /UUID/, () => '/ws/task/*'),
  wsClose('WS id with : and glob', 4400, /UUID/, (c) => `/ws/task/${c.running.id}:events*`),
  wsClose('WS id with NUL', 4400, /UUID/, (c) => `/ws/task/${c.running.id}%00`),
  wsClose('WS unknown task', 4404, /not found/, () => `/ws/task/${UNKNOWN_TASK}`),
  // lastEventId variants.
  wsClose('lastEventId $', 4400, /lastEventId/, (c) => `/ws/task/${c.running.id}?lastEventId=$`),
  wsClose('lastEventId -1', 4400, /lastEventId/, (c) => `/ws/task/${c.running.id}?lastEventId=-1`),
  wsClose('lastEventId 1-', 4400, /lastEventId/, (c) => `/ws/task/${c.running.id}?lastEventId=1-`),
  wsClose('lastEventId u64 overflow', 4400, /lastEventId/, (c) => `/ws/task/${c.running.id}?lastEventId=18446744073709551616-0`),
  wsClose('feed tag with a glob', 4400, /tag must be/, () => '/ws/feed?tag=a*'),
  wsClose('feed tag too long', 4400, /tag must be/, () => `/ws/feed?tag=${'t'.repeat(65)}`),
  wsClose('feed lastEventId $', 4400, /lastEventId/, () => '/ws/feed?lastEventId=$'),
  wsClose('feed cursor beyond its end', 4410, /continue from \d+-\d+$/, () => '/ws/feed?lastEventId=99999999999999-0'),
  http('SSE feed tag with a space', 400, 'INVALID_QUERY', () => ({ path: '/sse/feed?tag=a%20b', headers: main })),
  http('SSE feed Last-Event-ID -1', 400, 'INVALID_EVENT_ID', () => ({ path: '/sse/feed', headers: { ...main, 'last-event-id': '-1' } })),
  http('feed token for a malformed tag', 400, 'INVALID_BODY', () => ({ path: '/feed-tokens', method: 'POST', headers: main, body: { tag: '' } })),
  wsClose('lastEventId invalid percent-encoding', 4400, /lastEventId/, (c) => `/ws/task/${c.running.id}?lastEventId=%FF`),
  wsClose('lastEventId beyond the stream', 4400, /beyond/, (c) => `/ws/task/${c.running.id}?lastEventId=99999999999999-0`),
  http('events ?after=abc', 400, 'INVALID_EVENT_ID', (c) => ({ path: `/tasks/${c.running.id}/events?after=abc`, headers: main })),
  // Percent-encoding tricks and traversal (raw, so no client normalizes the path).
  raw('traversal /../', 404, 'NOT_FOUND', '/../package.json'),
  raw('traversal %2e%2e', 404, 'NOT_FOUND', '/%2e%2e/package.json'),
  raw('traversal %2e%2e%2f', 404, 'NOT_FOUND', '/%2e%2e%2fpackage.json'),
  raw('double-encoded traversal', 404, 'NOT_FOUND', '/%252e%252e/package.json'),
  raw('deep traversal', 404, 'NOT_FOUND', '/app.js/../../../../etc/passwd'),
  raw('NUL in a static path', 404, 'NOT_FOUND', '/app.js%00.html'),
  raw('invalid percent-encoding', 404, 'NOT_FOUND', '/%E0%A4%A'),
  raw('dotfile', 404, 'NOT_FOUND', `/${DOTFILE}`),
  {
    name: 'directory listing',
    expect: { status: 404, code: 'NOT_FOUND' },
    async run(c) {
      const file = await request(`${c.gw.url}/${DIR}/file.txt`);
      assert.equal(file.status, 200, 'files inside the directory are served');
      const res = await rawHttp(c.gw.port, `GET /${DIR}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      return { status: res.status, code: errorCode(res.body) };
    },
  },
  raw('traversal in a task id', 400, 'INVALID_TASK_ID', '/tasks/..%2f..%2fpackage.json', `Authorization: Bearer ${MAIN}\r\n`),
  http('method not allowed', 405, 'METHOD_NOT_ALLOWED', (c) => ({ path: `/tasks/${c.running.id}`, method: 'DELETE', headers: main })),
  http('unknown method', 405, 'METHOD_NOT_ALLOWED', () => ({ path: '/tasks', method: 'PROPFIND', headers: main })),
  // WebSocket frames: clients have nothing to send.
  frame('text message', 4400, /must not send/, (ws) => ws.send('hello')),
  frame('binary frame', 4400, /must not send/, (ws) => ws.send(Buffer.from([1, 2, 3]))),
  frame('oversized frame', 1009, /^$/, (ws) => ws.send('x'.repeat(5000))),
  frame('oversized fragmented message', 1009, /^$/, (ws) => {
    ws.send('x'.repeat(3000), { fin: false });
    ws.send('x'.repeat(3000), { fin: true });
  }),
  frame('invalid UTF-8 text', 1007, /^$/, (ws) => ws.send(Buffer.from([0xc3, 0x28]), { binary: false })),
  frame('unmasked frame', 1002, /^$/, (ws) => (ws as unknown as { _socket: import('node:net').Socket })._socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]))),
  // Origin.
  refusedUpgrade('foreign Origin', 403, 'FORBIDDEN_ORIGIN', (c) => ({ path: `/ws/task/${c.running.id}`, headers: main, origin: 'https://evil.example' })),
  refusedUpgrade('Origin null', 403, 'FORBIDDEN_ORIGIN', (c) => ({ path: `/ws/task/${c.running.id}`, headers: main, origin: 'null' })),
  refusedUpgrade('look-alike Origin', 403, 'FORBIDDEN_ORIGIN', (c) => ({
    path: `/ws/task/${c.running.id}`,
    headers: main,
    origin: 'http://127.0.0.1.evil.example',
  })),
  // Tokens.
  start('start without a token', 401, 'UNAUTHORIZED', {}, {}),
  http('start with a wrong token', 401, 'UNAUTHORIZED', () => ({ path: '/tasks', method: 'POST', headers: bearer('nope'), body: {} }), challenge),
  start('start with Basic auth', 401, 'UNAUTHORIZED', {}, { authorization: `Basic ${Buffer.from(`x:${MAIN}`).toString('base64')}` }),
  http('start with a watch token', 401, 'UNAUTHORIZED', (c) => ({ path: '/tasks', method: 'POST', headers: bearer(c.running.token), body: {} })),
  http('start at /TASKS (routes match case-insensitively, so do guards)', 401, 'UNAUTHORIZED', () => ({ path: '/TASKS', method: 'POST', body: {} })),
  http('start at /start-task/ (trailing slash)', 401, 'UNAUTHORIZED', () => ({ path: '/start-task/', method: 'POST', body: {} })),
  http('GET /Tasks/<id> without a token', 401, 'UNAUTHORIZED', (c) => ({ path: `/Tasks/${c.running.id}/` })),
  http('start with ?token=', 401, 'UNAUTHORIZED', () => ({ path: `/start-task?token=${MAIN}`, method: 'POST', body: {} })),
  http('cancel without a token', 401, 'UNAUTHORIZED', (c) => ({ path: `/tasks/${c.running.id}/cancel`, method: 'POST' }), challenge),
  http('cancel with the task’s own watch token', 401, 'UNAUTHORIZED', (c) => ({
    path: `/tasks/${c.running.id}/cancel`,
    method: 'POST',
    headers: bearer(c.running.token),
  })),
  http('cancel id *', 400, 'INVALID_TASK_ID', () => ({ path: '/tasks/*/cancel', method: 'POST', headers: main })),
  http('GET without a token', 401, 'UNAUTHORIZED', (c) => ({ path: `/tasks/${c.running.id}` }), challenge),
  http('GET with another task’s token', 401, 'UNAUTHORIZED', (c) => ({ path: `/tasks/${c.running.id}`, headers: bearer(c.done.token) })),
  http('GET with an expired token', 401, 'UNAUTHORIZED', (c) => ({ path: `/tasks/${c.running.id}`, headers: bearer(expired(c)) })),
  http('GET with a forged token', 401, 'UNAUTHORIZED', (c) => ({ path: `/tasks/${c.running.id}`, headers: bearer(forged(c)) })),
  http('GET with the token in the query', 401, 'UNAUTHORIZED', (c) => ({ path: `/tasks/${c.running.id}?token=${c.running.token}` })),
  http('events without a token', 401, 'UNAUTHORIZED', (c) => ({ path: `/tasks/${c.running.id}/events` })),
  refusedUpgrade('WS without a token', 401, 'UNAUTHORIZED', (c) => ({ path: `/ws/task/${c.running.id}` }), (h) =>
    assert.equal(h['www-authenticate'], 'Bearer realm="taskcast"'),
  ),
  refusedUpgrade('WS with another task’s token', 401, 'UNAUTHORIZED', (c) => ({ path: `/ws/task/${c.running.id}?token=${c.done.token}` })),
  refusedUpgrade('WS with an expired token', 401, 'UNAUTHORIZED', (c) => ({ path: `/ws/task/${c.running.id}?token=${expired(c)}` })),
  refusedUpgrade('WS with a tampered token', 401, 'UNAUTHORIZED', (c) => ({ path: `/ws/task/${c.running.id}?token=${tampered(c)}` })),
  refusedUpgrade('WS with a wrong header token', 401, 'UNAUTHORIZED', (c) => ({ path: `/ws/task/${c.running.id}`, headers: bearer('nope') })),
  http('list without a token', 401, 'UNAUTHORIZED', () => ({ path: '/tasks' }), challenge),
  http('list with a watch token', 401, 'UNAUTHORIZED', (c) => ({ path: '/tasks?limit=5', headers: bearer(c.running.token) })),
  http('list with a bad cursor', 400, 'INVALID_QUERY', () => ({ path: '/tasks?cursor=*%00', headers: main })),
  http('list with a huge limit', 400, 'INVALID_QUERY', () => ({ path: '/tasks?limit=1e9', headers: main })),
  http('SSE without a token', 401, 'UNAUTHORIZED', (c) => ({ path: `/sse/task/${c.running.id}` }), challenge),
  {
    name: 'SSE with another task’s token',
    expect: { status: 401, code: 'UNAUTHORIZED' },
    async run(c) {
      const own = await fetch(`${c.gw.url}/sse/task/${c.done.id}?token=${encodeURIComponent(c.done.token)}`);
      assert.equal(own.status, 200, 'its own token in ?token= opens the stream');
      assert.equal((await own.text()).match(/^id: /gm)?.length, 5);
      const res = await request(`${c.gw.url}/sse/task/${c.running.id}?token=${encodeURIComponent(c.done.token)}`);
      return { status: res.status, code: errorCode(res.body) };
    },
  },
  // Floods.
  flood('WebSocket flood over WS_MAX_PER_IP', 'per-ip'),
  flood('WebSocket flood over WS_MAX_TOTAL', 'total'),
  {
    name: 'start flood over the rate limit',
    expect: { status: 429, code: 'RATE_LIMITED' },
    async run(c) {
      // Invalid bodies: the limiter runs first, so this flood creates no task. Sent back to back
      // in waves of FLOOD_WAVE connections: on a loaded machine, hundreds of connections at once
      // would leave the last ones past HTTP_REQUEST_TIMEOUT_MS (408) before they reach the limiter.
      const results: Awaited<ReturnType<typeof request>>[] = [];
      const floodStart = Date.now();
      for (let sent = 0; sent < BURST + 20; sent += FLOOD_WAVE) {
        const wave = Math.min(FLOOD_WAVE, BURST + 20 - sent);
        results.push(...(await Promise.all(Array.from({ length: wave }, () => request(`${c.gw.url}/tasks`, { headers: bearer(LIMITED), body: { stage_ms: -1 } })))));
      }
      const limited = results.filter((r) => r.status === 429);
      const rest = results.filter((r) => r.status !== 429);
      assert.ok(limited.length >= 10, `${limited.length} refused; statuses ${results.map((r) => r.status).join(' ')}`);
      assert.ok(rest.length >= BURST, 'the burst passed');
      for (const r of rest) assert.equal(errorCode(r.body), 'INVALID_PARAMS');
      // The next token is at most 50 s away (START_REFILL_PER_S), and at least 50 s less the time
      // the flood has taken since the bucket ran dry (a loaded machine takes longer than 10 s).
      const floodS = Math.ceil((Date.now() - floodStart) / 1000);
      for (const r of limited) {
        const retryAfterS = Number(r.headers.get('retry-after'));
        assert.ok(Number.isInteger(retryAfterS) && retryAfterS <= 50 && retryAfterS >= 50 - floodS, `Retry-After ${r.headers.get('retry-after')} after a ${floodS} s flood`);
      }
      const again = await request(`${c.gw.url}/tasks`, { headers: bearer(LIMITED), body: {} });
      return { status: again.status, code: errorCode(again.body) };
    },
  },
  // Slow and malformed HTTP.
  {
    name: 'slowloris headers',
    expect: { status: 408, code: 'REQUEST_TIMEOUT' },
    async run(c) {
      const res = await rawHttp(c.gw.port, 'GET / HTTP/1.1\r\nHost: x\r\n', { trickle: { everyMs: 100, piece: 'X-Slow: 1\r\n' } });
      return { status: res.status, code: errorCode(res.body) };
    },
  },
  {
    name: 'slow body',
    expect: { status: 408, code: 'REQUEST_TIMEOUT' },
    async run(c) {
      const head = `POST /tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MAIN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`;
      const res = await rawHttp(c.gw.port, head, { trickle: { everyMs: 100, piece: ' ' } });
      return { status: res.status, code: errorCode(res.body) };
    },
  },
  raw('oversized headers', 431, 'HEADERS_TOO_LARGE', '/', `X-Big: ${'a'.repeat(20_000)}\r\n`),
  {
    name: 'not HTTP at all',
    expect: { status: 400, code: 'BAD_REQUEST' },
    async run(c) {
      const res = await rawHttp(c.gw.port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
      return { status: res.status, code: errorCode(res.body) };
    },
  },
];

describe('bad-input suite: one gateway (auth on) and one worker for the whole table', () => {
  let c: Ctx;
  let running: Watcher;
  let parked: Watcher;
  const known = new Set<string>();
  const tokens = new Set<string>([MAIN, LIMITED]);
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  const scope = { after: (fn: () => unknown) => cleanups.push(fn) };

  async function startOk(gw: ServiceProc, stageMs: number): Promise<Task> {
    const res = await request(`${gw.url}/tasks`, { headers: main, body: { stage_ms: stageMs } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.match(res.body.watch_token, /^\d+\.[A-Za-z0-9_-]{43}$/);
    known.add(res.body.task_id);
    tokens.add(res.body.watch_token);
    return { id: res.body.task_id, token: res.body.watch_token };
  }

  /** A watch through the Authorization header that records events until the server closes it. */
  async function watchThroughout(task: Task): Promise<Watcher> {
    const res = await upgrade(`${c.ws}/ws/task/${task.id}`, { headers: bearer(task.token) });
    assert.equal(res.status, 101);
    const watcher: Watcher = {
      get events() {
        return res.messages.map((m) => JSON.parse(m) as TaskEvent);
      },
    };
    res.ws!.on('close', (code, reason) => {
      watcher.close = code;
      watcher.reason = reason.toString();
    });
    cleanups.push(() => res.ws!.terminate());
    return watcher;
  }

  /** Lost no event, gained none: the watch has exactly what XRANGE has, in order, a prefix of the stages. */
  async function intact(task: Task, watcher: Watcher, what: string): Promise<void> {
    let ids: string[] = [];
    const same = () => JSON.stringify(ids) === JSON.stringify(watcher.events.map((e) => e.id));
    await waitFor(async () => {
      ids = await eventIds(c.redis, task.id);
      return same();
    }, `${what}: the watch equals XRANGE`).catch(() =>
      assert.deepEqual(watcher.events.map((e) => e.id), ids, `${what} (watch closed: ${watcher.close} ${watcher.reason})`),
    );
    assert.deepEqual(watcher.events.map((e) => e.status), STAGES.slice(0, ids.length), what);
  }

  async function healthy(): Promise<void> {
    const fresh = await startOk(c.gw, 0);
    const watch = await watchTask(`${c.ws}/ws/task/${fresh.id}?token=${encodeURIComponent(fresh.token)}`);
    assert.equal(watch.code, 1000, 'fresh task: closed after its terminal event');
    assert.deepEqual(watch.events.map((e) => e.status), STAGES, 'fresh task: every stage');
    assert.deepEqual(watch.events.map((e) => e.id), await eventIds(c.redis, fresh.id), 'fresh task: equals XRANGE');
    const state = await request(`${c.gw.url}/tasks/${fresh.id}`, { headers: bearer(fresh.token) });
    assert.equal(state.status, 200);
    assert.equal(state.body.status, 'COMPLETED');

    await intact(c.running, running, 'running task');
    await intact(c.parked, parked, 'parked task');
    assert.deepEqual(await eventIds(c.redis, c.done.id), c.done.ids, 'finished task unchanged');

    const keys = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await c.redis.scan(cursor, 'COUNT', 1000);
      cursor = next;
      for (const k of batch) keys.add(k);
    } while (cursor !== '0');
    for (const key of keys) {
      const m = /^task:([0-9a-f-]{36})(:events)?$/.exec(key);
      assert.ok(PRIORITIES.some((p) => key === commandsStream(p)) || key === TASKS_INDEX || key === FEED_STREAM || (m && known.has(m[1]!)), `unexpected key ${JSON.stringify(key)}`);
    }
    for (const id of await c.redis.zrange(TASKS_INDEX, '0', '-1')) assert.ok(known.has(id), `unexpected index entry ${JSON.stringify(id)}`);
  }

  before(async () => {
    const redisUrl = await testRedisUrl();
    mkdirSync(join(WEB_ROOT, DIR), { recursive: true });
    writeFileSync(join(WEB_ROOT, DIR, 'file.txt'), 'probe');
    writeFileSync(join(WEB_ROOT, DOTFILE), 'secret');
    cleanups.push(() => {
      rmSync(join(WEB_ROOT, DIR), { recursive: true, force: true });
      rmSync(join(WEB_ROOT, DOTFILE), { force: true });
    });
    const gw = await startGatewayProc(scope, redisUrl, {
      LOG_LEVEL: 'debug',
      API_TOKENS: `${MAIN},${LIMITED}`,
      TOKEN_SECRET: SECRET,
      WS_MAX_PER_IP: String(PER_IP),
      WS_MAX_TOTAL: String(TOTAL),
      START_BURST: String(BURST),
      // One token per 50 s: no token comes back between the flood and the start after it, however slow the machine.
      START_REFILL_PER_S: '0.02',
      HTTP_HEADERS_TIMEOUT_MS: '1000',
      HTTP_REQUEST_TIMEOUT_MS: '2000',
    });
    await startWorkerInProcess(scope, redisUrl, { SHUTDOWN_GRACE_MS: '200' });
    const redis = await connectRedis(redisUrl);
    cleanups.push(() => closeRedis(redis));
    c = {
      gw,
      redis,
      ws: gw.url.replace(/^http/, 'ws'),
      steadyOpen: () => (running.close === undefined ? 2 : 1),
    } as Ctx;
    const done = await startOk(gw, 0);
    await waitFor(async () => (await eventIds(c.redis, done.id)).length === 5, 'the finished task');
    c.done = { ...done, ids: await eventIds(c.redis, done.id) };
    c.running = await startOk(gw, 8000);
    c.parked = await startOk(gw, 600_000);
    running = await watchThroughout(c.running);
    parked = await watchThroughout(c.parked);
    await waitFor(() => parked.events.length === 1, 'the parked watch got PENDING');
  });

  test(`${ROWS.length} rows, each followed by the health checks`, async (t) => {
    assert.ok(ROWS.length >= 40);
    for (const row of ROWS) {
      await t.test(row.name, async () => {
        const got = await row.run(c);
        if ('close' in row.expect) {
          assert.ok('close' in got, `expected a close, got ${JSON.stringify(got)}`);
          assert.equal(got.close, row.expect.close);
          assert.match(got.reason, row.expect.reason);
        } else {
          assert.deepEqual(got, { status: row.expect.status, code: row.expect.code });
        }
        await healthy();
      });
    }
  });

  test('the task running throughout completes with exactly its events, and no token reached the logs', async () => {
    await waitFor(() => running.close !== undefined, 'the running task to finish', 60_000);
    assert.equal(running.close, 1000);
    assert.deepEqual(running.events.map((e) => e.status), STAGES);
    assert.deepEqual(running.events.map((e) => e.id), await eventIds(c.redis, c.running.id));
    assert.equal(parked.close, undefined, 'the parked watch stayed open');
    const logs = c.gw.logs.map((l) => JSON.stringify(l)).join('\n');
    assert.ok(logs.includes('upgrade refused'), 'the refusals were logged');
    for (const token of tokens) assert.ok(!logs.includes(token), 'a token appears in the gateway log');
  });
});
