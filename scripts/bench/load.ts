import { performance } from 'node:perf_hooks';
import { LiteHttp } from './http-lite.js';
import { openLiteWs, type LiteWs } from './ws-lite.js';

/** Task bodies: stages of 0 ms (throughput, fan-out) and of 10 ms (latency: every stage is live). */
export const STAGE0 = JSON.stringify({ stage_ms: 0 });
export const STAGE10 = JSON.stringify({ stage_ms: 10 });

/** Wall clock with sub-millisecond resolution, comparable with the events' `ts` (epoch ms). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export interface Watched {
  ws: LiteWs;
  /** Raw JSON of each message, in arrival order. */
  messages: string[];
  openedAt: number;
  closed: Promise<number>;
}

/** One watcher: collects messages until the server closes (or the socket drops). */
export function watch(port: number, taskId: string, lastEventId?: string, onText?: (data: string, at: number) => void): Watched {
  let done!: (code: number) => void;
  const closed = new Promise<number>((resolve) => (done = resolve));
  const query = lastEventId === undefined ? '' : `?lastEventId=${lastEventId}`;
  const w: Watched = {
    messages: [],
    openedAt: 0,
    closed,
    ws: openLiteWs(port, `/ws/task/${taskId}${query}`, {
      open: () => (w.openedAt = nowMs()),
      text: (data) => {
        w.messages.push(data);
        onText?.(data, nowMs());
      },
      close: (code) => done(code),
    }),
  };
  return w;
}

/** POST /tasks, then watch the task to its end. Resolves with the messages and close code. */
async function runOne(
  http: LiteHttp,
  port: number,
  body: string,
  onText?: (data: string, at: number, w: Watched) => void,
): Promise<{ messages: number; code: number }> {
  const res = await http.post('/tasks', body);
  if (res.status !== 202) throw new Error(`POST /tasks answered ${res.status}: ${res.body}`);
  const taskId = (JSON.parse(res.body) as { task_id: string }).task_id;
  const w: Watched = watch(port, taskId, undefined, onText && ((d, at) => onText(d, at, w)));
  const code = await w.closed;
  return { messages: w.messages.length, code };
}

export interface ThroughputResult {
  tasks: number;
  elapsed_ms: number;
  tasks_per_s: number;
  /** Tasks whose socket did not end with 1000 after `expectEvents` messages. */
  incomplete: number;
}

/** N tasks, `inFlight` at a time, each POSTed and watched to COMPLETED over its own socket. */
export async function throughput(port: number, n: number, inFlight: number, body: string, expectEvents = 5): Promise<ThroughputResult> {
  let next = 0;
  let incomplete = 0;
  const started = nowMs();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, n) }, async () => {
      const http = new LiteHttp(port);
      try {
        while (next < n) {
          next += 1;
          const r = await runOne(http, port, body);
          if (r.code !== 1000 || r.messages !== expectEvents) incomplete += 1;
        }
      } finally {
        http.close();
      }
    }),
  );
  const elapsed = nowMs() - started;
  return { tasks: n, elapsed_ms: Math.round(elapsed), tasks_per_s: round((n / elapsed) * 1000), incomplete };
}

export interface LatencyResult {
  offered_per_s: number;
  tasks: number;
  /** Stage events appended after their watcher's socket was open: the live ones. */
  samples: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /**
   * Where a live event's time went, when its message carries a stream entry id (taskcast's do):
   * from its `ts` to Redis's XADD (the id's time) and from there to the watcher, p50 and p99, ms.
   * The id's time has whole milliseconds, so each part is off by up to 1 ms (their sum is not).
   */
  split?: { to_redis_p50_ms: number; to_redis_p99_ms: number; from_redis_p50_ms: number; from_redis_p99_ms: number } | undefined;
  incomplete: number;
}

/** Starts tasks on a fixed schedule (open loop) and times each live stage event from its `ts`. */
export async function fixedRate(port: number, rate: number, seconds: number, body: string): Promise<LatencyResult> {
  const total = Math.round(rate * seconds);
  const pool: LiteHttp[] = [];
  const latencies: number[] = [];
  const toRedis: number[] = [];
  const fromRedis: number[] = [];
  let incomplete = 0;
  const onText = (data: string, at: number, w: Watched) => {
    const e = JSON.parse(data) as { status: string; ts: number; id?: string };
    if (e.status === 'PENDING' || w.openedAt === 0 || e.ts < w.openedAt) return;
    latencies.push(at - e.ts);
    if (e.id === undefined) return;
    const appendedAt = Number(e.id.split('-')[0]);
    toRedis.push(appendedAt - e.ts);
    fromRedis.push(at - appendedAt);
  };
  const started = nowMs();
  const runs: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - nowMs();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const http = pool.pop() ?? new LiteHttp(port);
    runs.push(
      runOne(http, port, body, onText).then(
        (r) => {
          pool.push(http);
          if (r.code !== 1000 || r.messages !== 5) incomplete += 1;
        },
        () => {
          http.close();
          incomplete += 1;
        },
      ),
    );
  }
  await Promise.all(runs);
  for (const h of pool) h.close();
  const pct = percentiles(latencies);
  const [to, from] = [percentiles(toRedis), percentiles(fromRedis)];
  return {
    offered_per_s: rate,
    tasks: total,
    samples: latencies.length,
    p50_ms: pct(0.5),
    p99_ms: pct(0.99),
    max_ms: pct(1),
    split: toRedis.length === 0 ? undefined : { to_redis_p50_ms: to(0.5), to_redis_p99_ms: to(0.99), from_redis_p50_ms: from(0.5), from_redis_p99_ms: from(0.99) },
    incomplete,
  };
}

/** Sorts `values`; the function returns the value at fraction p (0 to 1) of them, rounded. */
function percentiles(values: number[]): (p: number) => number {
  values.sort((a, b) => a - b);
  return (p) => round(values[Math.min(values.length - 1, Math.floor(p * values.length))] ?? NaN);
}

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;
