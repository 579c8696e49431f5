import { randomUUID } from 'node:crypto';
import type { Redis } from '../../src/store/redis.js';
import { median } from './compare.js';
import { LiteHttp } from './http-lite.js';
import { STAGE0, nowMs, round } from './load.js';
import { costDelta, cpuMs, redisCounters, type RedisCost, type Service } from './procs.js';

/** One kind of start: its body, its headers for the i-th request, and the status it expects. */
interface StartVariant {
  name: string;
  body: string;
  headers: (i: number) => Record<string, string>;
  status: number;
}

const run = randomUUID();

/**
 * The kinds of start compared, the first being the baseline: plain starts; starts each with a
 * fresh Idempotency-Key (the first-start path: the script also GETs the key, finds none, and SETs
 * it); retries of one started key (answered from the key: no task written).
 */
const VARIANTS: StartVariant[] = [
  { name: 'plain', body: STAGE0, headers: () => ({}), status: 202 },
  { name: 'idempotency_key', body: STAGE0, headers: (i) => ({ 'Idempotency-Key': `bench-${run}-${i}` }), status: 202 },
  { name: 'idempotent_replay', body: STAGE0, headers: () => ({ 'Idempotency-Key': `bench-${run}-replayed` }), status: 200 },
];

interface Round {
  starts_per_s: number;
  refused: number;
  gatewayMs: number;
  redis: RedisCost;
}

/**
 * Start throughput alone: `starts` POST /tasks per round, `inFlight` at a time over keep-alive
 * connections, no watcher and no worker running; each variant in turn, `rounds` times (A B C A B
 * C ...), with the Redis commands (script-internal ones included), Redis CPU and gateway CPU per
 * start. Ratios to plain starts are per round.
 */
export async function startThroughput(
  admin: Redis,
  gateway: Service,
  opt: { starts: number; inFlight: number; rounds: number },
): Promise<Record<string, unknown>> {
  const runs = new Map<string, Round[]>(VARIANTS.map((v) => [v.name, []]));
  const counter = new Map<string, number>(VARIANTS.map((v) => [v.name, 0]));
  const pool = Array.from({ length: opt.inFlight }, () => new LiteHttp(gateway.port));
  try {
    // The replayed key starts its task once, ahead of the rounds.
    await pool[0]!.post('/tasks', VARIANTS[2]!.body, VARIANTS[2]!.headers(0));
    for (let r = 0; r < opt.rounds; r++) {
      for (const v of VARIANTS) {
        const cpuBefore = cpuMs(gateway.child.pid!);
        const before = await redisCounters(admin);
        let next = 0;
        let refused = 0;
        const started = nowMs();
        await Promise.all(pool.map(async (http) => {
          while (next < opt.starts) {
            next += 1;
            const i = counter.get(v.name)!;
            counter.set(v.name, i + 1);
            const res = await http.post('/tasks', v.body, v.headers(i));
            if (res.status !== v.status) refused += 1;
          }
        }));
        const elapsed = nowMs() - started;
        runs.get(v.name)!.push({
          starts_per_s: round((opt.starts / elapsed) * 1000),
          refused,
          gatewayMs: cpuMs(gateway.child.pid!) - cpuBefore,
          redis: costDelta(before, await redisCounters(admin)),
        });
      }
    }
  } finally {
    for (const http of pool) http.close();
  }
  const base = runs.get(VARIANTS[0]!.name)!;
  const out: Record<string, unknown> = { starts_per_round: opt.starts, in_flight: opt.inFlight, rounds: opt.rounds };
  for (const v of VARIANTS) {
    const rs = runs.get(v.name)!;
    const n = opt.starts * rs.length;
    const sum = (f: (x: Round) => number) => rs.reduce((acc, x) => acc + f(x), 0);
    const byCommand: Record<string, number> = {};
    for (const x of rs) for (const [k, c] of Object.entries(x.redis.by_command)) byCommand[k] = (byCommand[k] ?? 0) + c;
    const perRound = rs.map((x, i) => round(x.starts_per_s / base[i]!.starts_per_s));
    out[v.name] = {
      starts_per_s: round(median(rs.map((x) => x.starts_per_s))),
      rounds_starts_per_s: rs.map((x) => x.starts_per_s),
      unexpected_status: sum((x) => x.refused),
      redis_commands_per_start: round(sum((x) => x.redis.commands) / n),
      redis_cpu_us_per_start: round(sum((x) => x.redis.cpu_us) / n),
      gateway_cpu_us_per_start: round((sum((x) => x.gatewayMs) * 1000) / n),
      by_command_per_start: Object.fromEntries(Object.entries(byCommand).sort((a, b) => b[1] - a[1]).map(([k, c]) => [k, round(c / n)])),
      ...(v === VARIANTS[0] ? {} : { vs_plain: { median: round(median(perRound)), rounds: perRound } }),
    };
  }
  return out;
}
