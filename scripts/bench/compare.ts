import type { Redis } from '../../src/store/redis.js';
import { round, throughput, type ThroughputResult } from './load.js';
import { costDelta, cpuMs, redisCounters, syscalls, type GcTotals, type RedisCost } from './procs.js';

/** A system under the throughput load: where it listens and which processes do its work. */
export interface System {
  name: string;
  port: number;
  /** Its processes, by role; CPU and syscalls are reported per role. */
  pids: Record<string, number>;
  /** Measure its Redis commands and CPU (INFO deltas around its own rounds only). */
  redisCost: boolean;
  /** Its Node processes by role: their allocation and GC pauses are reported per role. */
  gc: Record<string, () => GcTotals>;
  /** Its start body and the events a task then has, when not the load's (e.g. a scheduled start). */
  body?: string;
  expectEvents?: number;
  /**
   * Called just before each of its measured rounds (warm-up excluded); the function it resolves
   * is called just after that round, with the round's result: for counters of its own (e.g. each
   * node of a Redis Cluster).
   */
  sample?: () => Promise<(run: ThroughputResult) => Promise<void>>;
}

export interface SystemResult {
  /** Median over the rounds. */
  tasks_per_s: number;
  rounds_tasks_per_s: number[];
  tasks: number;
  incomplete: number;
  cpu_us_per_task: Record<string, number>;
  rw_syscalls_per_task: Record<string, number>;
  /** V8 heap allocation per task, KB, by Node process role. */
  alloc_kb_per_task: Record<string, number>;
  /** Of that, KB per task the young-generation GC promoted to the old generation, by role. */
  promoted_kb_per_task: Record<string, number>;
  /** Total GC pause per 1000 tasks and the longest single pause, ms, by role. */
  gc_pause_ms_per_1000_tasks: Record<string, number>;
  gc_max_pause_ms: Record<string, number>;
  redis?: RedisCost;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * The same throughput load against each system in turn, `rounds` times (A B C A B C ...), so that
 * a shared machine's drift in speed hits every system alike; ratios are then taken per round.
 * The load generator (this process) is reported as `bench`.
 */
export async function interleaved(
  admin: Redis,
  systems: System[],
  opt: { rounds: number; tasks: number; inFlight: number; body: string },
): Promise<Map<string, SystemResult>> {
  const acc = new Map<string, {
    runs: ThroughputResult[];
    cpu: Record<string, number>;
    io: Record<string, number>;
    alloc: Record<string, number>;
    promoted: Record<string, number>;
    pause: Record<string, number>;
    maxPause: Record<string, number>;
    redis?: RedisCost;
  }>();
  for (const s of systems) {
    await throughput(s.port, Math.min(500, opt.tasks), opt.inFlight, s.body ?? opt.body, s.expectEvents);
    acc.set(s.name, { runs: [], cpu: {}, io: {}, alloc: {}, promoted: {}, pause: {}, maxPause: {} });
  }
  for (let r = 0; r < opt.rounds; r++) {
    for (const s of systems) {
      const a = acc.get(s.name)!;
      const pids = { ...s.pids, bench: process.pid };
      const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)]));
      const ioBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, syscalls(pid)]));
      const gcBefore = Object.fromEntries(Object.entries(s.gc).map(([k, gc]) => [k, gc()]));
      const before = s.redisCost ? await redisCounters(admin) : undefined;
      const sampled = await s.sample?.();
      const run = await throughput(s.port, opt.tasks, opt.inFlight, s.body ?? opt.body, s.expectEvents);
      a.runs.push(run);
      await sampled?.(run);
      if (before) a.redis = add(a.redis, costDelta(before, await redisCounters(admin)));
      for (const [k, pid] of Object.entries(pids)) {
        a.cpu[k] = (a.cpu[k] ?? 0) + cpuMs(pid) - cpuBefore[k]!;
        a.io[k] = (a.io[k] ?? 0) + syscalls(pid) - ioBefore[k]!;
      }
      for (const [k, gc] of Object.entries(s.gc)) {
        const d = gcDelta(gcBefore[k]!, gc());
        a.alloc[k] = (a.alloc[k] ?? 0) + d.allocatedBytes;
        a.promoted[k] = (a.promoted[k] ?? 0) + d.promotedBytes;
        a.pause[k] = (a.pause[k] ?? 0) + d.pauseMs;
        a.maxPause[k] = Math.max(a.maxPause[k] ?? 0, d.maxPauseMs);
      }
    }
  }
  const out = new Map<string, SystemResult>();
  for (const [name, a] of acc) {
    const tasks = a.runs.reduce((n, x) => n + x.tasks, 0);
    const per = (m: Record<string, number>, scale: number) =>
      Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round((v * scale) / tasks)]));
    out.set(name, {
      tasks_per_s: round(median(a.runs.map((x) => x.tasks_per_s))),
      rounds_tasks_per_s: a.runs.map((x) => x.tasks_per_s),
      tasks,
      incomplete: a.runs.reduce((n, x) => n + x.incomplete, 0),
      cpu_us_per_task: per(a.cpu, 1000),
      rw_syscalls_per_task: per(a.io, 1),
      alloc_kb_per_task: per(a.alloc, 1 / 1024),
      promoted_kb_per_task: per(a.promoted, 1 / 1024),
      gc_pause_ms_per_1000_tasks: per(a.pause, 1000),
      gc_max_pause_ms: Object.fromEntries(Object.entries(a.maxPause).map(([k, v]) => [k, round(v)])),
      ...(a.redis ? { redis: a.redis } : {}),
    });
  }
  return out;
}

/** The collections between two snapshots of one process: bytes allocated and promoted, total and longest pause (ms). */
export function gcDelta(before: GcTotals, after: GcTotals): { allocatedBytes: number; promotedBytes: number; pauseMs: number; maxPauseMs: number } {
  const pauses = after.pausesMs.slice(before.pausesMs.length);
  return {
    allocatedBytes: after.allocatedBytes - before.allocatedBytes,
    promotedBytes: after.promotedBytes - before.promotedBytes,
    pauseMs: pauses.reduce((x, y) => x + y, 0),
    maxPauseMs: Math.max(0, ...pauses),
  };
}

/** Per-round ratios of system a to system b, and their median. */
export function ratios(a: SystemResult, b: SystemResult): { median: number; rounds: number[] } {
  const rounds = a.rounds_tasks_per_s.map((x, i) => round(x / b.rounds_tasks_per_s[i]!));
  return { median: round(median(rounds)), rounds };
}

function add(x: RedisCost | undefined, y: RedisCost): RedisCost {
  if (!x) return y;
  const sum = (p: Record<string, number>, q: Record<string, number>) => {
    const o = { ...p };
    for (const [k, v] of Object.entries(q)) o[k] = (o[k] ?? 0) + v;
    return o;
  };
  return {
    commands: x.commands + y.commands,
    by_command: sum(x.by_command, y.by_command),
    usec_by_command: sum(x.usec_by_command, y.usec_by_command),
    cpu_us: x.cpu_us + y.cpu_us,
    aof_bytes: x.aof_bytes + y.aof_bytes,
    forks: x.forks + y.forks,
  };
}
