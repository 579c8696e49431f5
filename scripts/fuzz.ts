/**
 * `npm run fuzz [-- --seconds 60 --seed 1234 --concurrency 8]`
 *
 * Starts its own redis-server, gateway (auth on) and worker processes, then for a bounded time
 * sends random and mutated HTTP requests, raw bytes, task ids, query strings and WebSocket frames
 * at the gateway, while canary tasks run and are watched. It fails (exit 1) when:
 *  - the gateway or worker process exits, or the page stops answering;
 *  - any answer to client input is 5xx, or a WebSocket closes with 1011;
 *  - a request gets no answer at all (the connection hangs past the HTTP timeouts);
 *  - the gateway logs an error (an unexpected exception behind a client's request);
 *  - a canary's watch differs from XRANGE, or any task's events are not the reference stages in order.
 * The seed is printed, and a run with the same seed sends the same inputs (timing still differs).
 */
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { closeRedis, createRedis, ensureConnected } from '../src/store/redis.js';
import { startGatewayProc, startWorkerProc, type Proc, type ServiceProc } from '../test/helpers/processes.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { createInputs } from './fuzz/inputs.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '8' },
  },
});
const SECONDS = Number(args.seconds);
const SEED = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(args.seed);
const CONCURRENCY = Number(args.concurrency);
if (!(SECONDS > 0) || !Number.isInteger(SEED) || !(CONCURRENCY >= 1)) {
  process.stderr.write('usage: npm run fuzz -- [--seconds N] [--seed N] [--concurrency N]\n');
  process.exit(2);
}

const FUZZ_TOKEN = 'fuzz-token-5d2c7e1a90b4';
const CANARY_TOKEN = 'canary-token-3b8f6a2e17c9';
const STAGES = ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED'];
const ANSWER_TIMEOUT_MS = 10_000;

const { rand, int, pick, chance, bytes, knownIds, watchTokens, taskId, eventId, token, httpRequest, mutateText } =
  createInputs(SEED, FUZZ_TOKEN);

const violations: string[] = [];
const stats = { http: 0, raw: 0, ws: 0, statuses: new Map<string, number>() };
function count(key: string): void {
  stats.statuses.set(key, (stats.statuses.get(key) ?? 0) + 1);
}
function violation(what: string): void {
  if (violations.length < 50) violations.push(what);
}

// ---- senders ----------------------------------------------------------------------------------

/** Sends bytes; resolves with the status of the first response line, or null if the server closed without one. */
function sendRaw(port: number, data: Buffer, what: string): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    let settled = false;
    const finish = (status: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => {
      violation(`no answer within ${ANSWER_TIMEOUT_MS} ms to ${what}: ${JSON.stringify(data.subarray(0, 200).toString('latin1'))}`);
      finish(null);
    }, ANSWER_TIMEOUT_MS);
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) finish(Number(m[1]));
    });
    socket.on('error', () => finish(null));
    socket.on('close', () => finish(null));
    socket.write(data);
  });
}

async function fuzzHttp(gw: ServiceProc): Promise<void> {
  const request = httpRequest();
  stats.http += 1;
  const status = await sendRaw(gw.port, request, 'HTTP request');
  count(`http ${status ?? 'closed'}`);
  if (status !== null && status >= 500) {
    violation(`HTTP ${status} for ${JSON.stringify(request.subarray(0, 300).toString('latin1'))}`);
  }
}

async function fuzzRaw(gw: ServiceProc): Promise<void> {
  const seed = httpRequest();
  const data = chance(0.5) ? bytes(1 + int(300)) : Buffer.from(mutateText(seed.toString('latin1')), 'latin1');
  stats.raw += 1;
  const status = await sendRaw(gw.port, Buffer.concat([data, Buffer.from('\r\n\r\n')]), 'raw bytes');
  count(`raw ${status ?? 'closed'}`);
  if (status !== null && status >= 500) violation(`raw bytes answered ${status}: ${JSON.stringify(data.toString('latin1').slice(0, 300))}`);
}

function fuzzWs(gw: ServiceProc): Promise<void> {
  stats.ws += 1;
  const id = taskId();
  const query = [chance(0.5) ? `lastEventId=${encodeURIComponent(eventId())}` : '', chance(0.5) ? `token=${encodeURIComponent(token() ?? '')}` : '']
    .filter(Boolean)
    .join('&');
  const url = `ws://127.0.0.1:${gw.port}/ws/task/${id}${query ? `?${query}` : ''}`;
  const headers: Record<string, string> = {};
  const t = token();
  if (t !== undefined && chance(0.5)) headers.authorization = `Bearer ${t}`;
  const origin = chance(0.2) ? pick(['https://evil.example', 'null', `http://127.0.0.1:${gw.port}`]) : undefined;
  return new Promise((resolve) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, { headers, ...(origin ? { origin } : {}) });
    } catch {
      count('ws invalid url');
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 3000);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    ws.on('unexpected-response', (_req, res) => {
      count(`ws upgrade ${res.statusCode}`);
      if ((res.statusCode ?? 0) >= 500) violation(`upgrade answered ${res.statusCode} for ${url}`);
      res.resume();
      ws.terminate();
      done();
    });
    ws.on('error', () => done());
    ws.on('close', (code) => {
      count(`ws close ${code}`);
      if (code === 1011) violation(`socket closed 1011 for ${url}`);
      done();
    });
    ws.on('open', () => {
      const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
      switch (int(7)) {
        case 0:
          ws.send(mutateText('{"hello":1}'));
          break;
        case 1:
          ws.send(bytes(int(100)));
          break;
        case 2:
          ws.send('x'.repeat(4000 + int(4000)));
          break;
        case 3:
          socket.write(bytes(1 + int(20)));
          break;
        case 4:
          ws.ping(bytes(int(125)));
          break;
        case 5:
          ws.close(pick([1000, 1001, 3000, 4000, 4999]), 'bye');
          break;
        default:
          setTimeout(() => ws.terminate(), int(300));
      }
    });
  });
}

// ---- canaries ---------------------------------------------------------------------------------

interface Canary {
  id: string;
  events: { id: string; status: string }[];
  close: Promise<number>;
}

async function startCanary(gw: ServiceProc, stageMs: number): Promise<Canary> {
  const res = await fetch(`${gw.url}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CANARY_TOKEN}` },
    body: JSON.stringify({ stage_ms: stageMs }),
  });
  const state = (await res.json()) as { task_id: string; watch_token: string };
  if (res.status !== 202) throw new Error(`canary start failed: ${res.status} ${JSON.stringify(state)}`);
  knownIds.push(state.task_id);
  watchTokens.push(state.watch_token);
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/ws/task/${state.task_id}?token=${encodeURIComponent(state.watch_token)}`);
  const canary: Canary = { id: state.task_id, events: [], close: Promise.resolve(0) };
  ws.on('message', (data) => canary.events.push(JSON.parse(String(data))));
  canary.close = new Promise((resolve) => {
    ws.on('close', (code) => resolve(code));
    ws.on('error', () => resolve(1006));
  });
  return canary;
}

// ---- run --------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const cleanups: (() => unknown)[] = [];
  const scope = { after: (fn: () => unknown) => cleanups.push(fn) };
  const redisServer = await startRedisServer({ appendonly: false });
  cleanups.push(() => redisServer.close());
  try {
    const gw = await startGatewayProc(scope, redisServer.url, {
      API_TOKENS: `${FUZZ_TOKEN},${CANARY_TOKEN}`,
      TOKEN_SECRET: 'fuzz-secret-0123456789abcdef0123456789',
      WS_MAX_PER_IP: String(CONCURRENCY * 4 + 100),
      START_BURST: '200',
      START_REFILL_PER_S: '50',
      HTTP_HEADERS_TIMEOUT_MS: '2000',
      HTTP_REQUEST_TIMEOUT_MS: '3000',
    });
    const worker = await startWorkerProc(scope, redisServer.url, { WORKER_CONCURRENCY: '1000', SHUTDOWN_GRACE_MS: '200' });
    const redis = createRedis(redisServer.url, { name: 'fuzz' });
    await ensureConnected(redis);
    cleanups.push(() => closeRedis(redis));
    process.stdout.write(`fuzzing ${gw.url} for ${SECONDS} s, seed ${SEED}, concurrency ${CONCURRENCY}\n`);

    const deadline = Date.now() + SECONDS * 1000;
    const canaries: Canary[] = [];
    const canaryStageMs = Math.max(10, Math.floor((SECONDS * 1000) / 8));
    canaries.push(await startCanary(gw, canaryStageMs));

    const alive = (proc: Proc, name: string) => {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        violation(`${name} exited (${proc.child.exitCode ?? proc.child.signalCode})`);
        return false;
      }
      return true;
    };

    const loops = Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < deadline && violations.length === 0) {
        const r = rand();
        if (r < 0.55) await fuzzHttp(gw);
        else if (r < 0.75) await fuzzRaw(gw);
        else await fuzzWs(gw);
      }
    });
    const monitor = (async () => {
      let lastCanary = Date.now();
      while (Date.now() < deadline && violations.length === 0) {
        await new Promise((r) => setTimeout(r, 250));
        if (!alive(gw, 'gateway') || !alive(worker, 'worker')) break;
        if (Date.now() - lastCanary > 2000) {
          lastCanary = Date.now();
          canaries.push(await startCanary(gw, int(50)));
        }
      }
    })();
    await Promise.all([...loops, monitor]);

    if (alive(gw, 'gateway') && alive(worker, 'worker')) {
      const page = await fetch(`${gw.url}/`);
      if (page.status !== 200) violation(`the page answers ${page.status} after the run`);
      for (const canary of canaries) {
        const code = await Promise.race([canary.close, new Promise<number>((r) => setTimeout(() => r(-1), canaryStageMs * 4 + 15_000))]);
        const ids = (await redis.xrange(`task:${canary.id}:events`, '-', '+')).map(([id]) => id);
        if (code !== 1000) violation(`canary ${canary.id}: watch closed with ${code}`);
        if (JSON.stringify(canary.events.map((e) => e.id)) !== JSON.stringify(ids)) violation(`canary ${canary.id}: watch differs from XRANGE`);
        const statuses = canary.events.map((e) => e.status);
        if (!wellFormed(statuses) || !['COMPLETED', 'CANCELLED'].includes(statuses.at(-1)!)) {
          violation(`canary ${canary.id}: stages ${statuses.join(',')}`);
        }
      }
      await checkAllStreams(redis);
    }
    for (const line of gw.logs) {
      if (Number(line.level) >= 50) violation(`gateway logged an error: ${JSON.stringify(line).slice(0, 500)}`);
    }

    const histogram = [...stats.statuses.entries()].sort().map(([k, v]) => `  ${k}: ${v}`).join('\n');
    process.stdout.write(
      `sent ${stats.http} HTTP requests, ${stats.raw} raw payloads, ${stats.ws} WebSocket sessions; ` +
        `${canaries.length} canary tasks\n${histogram}\n`,
    );
  } finally {
    for (const fn of cleanups.reverse()) await fn();
  }
  if (violations.length > 0) {
    process.stdout.write(`FAILED (seed ${SEED}):\n${violations.map((v) => `  - ${v}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write('OK: no crash, no 5xx, no corrupted events\n');
  return 0;
}

/**
 * The reference stages in order (a prefix while running), possibly ended by CANCELLED: the fuzzer
 * holds an API token, so cancelling any task, a canary included, is legitimate.
 */
function wellFormed(statuses: (string | undefined)[]): boolean {
  const cancelled = statuses.at(-1) === 'CANCELLED';
  const body = cancelled ? statuses.slice(0, -1) : statuses;
  if (cancelled && body.length === STAGES.length) return false;
  return JSON.stringify(body) === JSON.stringify(STAGES.slice(0, body.length));
}

/** Every task's events, whoever started it: the reference stages in order, a prefix while running. */
async function checkAllStreams(redis: ReturnType<typeof createRedis>): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', 'task:*:events', 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const statuses = (await redis.xrange(key, '-', '+')).map(([, fields]) => fields[fields.indexOf('status') + 1]);
      if (!wellFormed(statuses)) {
        violation(`${key}: events ${statuses.join(',')}`);
      }
    }
  } while (cursor !== '0');
  const known = /^(tasks:commands(:high|:low)?|tasks:index|tasks:feed|task:[0-9a-f-]{36}(:events)?|tasks:tag:[A-Za-z0-9_.:=@/+-]{1,64}|tasks:feed:tag:[A-Za-z0-9_.:=@/+-]{1,64}|tasks:idem:(global|[A-Za-z0-9_-]{22}):[\x20-\x7e]{1,255})$/;
  const stray = (await redis.keys('*')).filter((k) => !known.test(k));
  if (stray.length > 0) violation(`unexpected keys: ${stray.slice(0, 10).join(', ')}`);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`fuzz: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
