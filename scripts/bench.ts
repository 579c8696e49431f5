/**
 * `npm run bench`: taskcast's benchmark, loopback only and bounded in time. Starts its own
 * redis-server, gateway and worker processes (plus the ceiling server and the BullMQ equivalent),
 * prints one JSON line per measure, then a short human summary. Scale it down with flags, e.g.
 * `npm run bench -- --quick`, or `--tasks 1000 --watchers 2000`; `--only throughput,fanout`;
 * `--only starts` (start throughput, plain and with Idempotency-Key, `--starts N` per round);
 * `--cpu-prof DIR` writes gateway, worker and ceiling-server CPU profiles, `--heap-prof DIR` their
 * allocation profiles (scripts/bench/heap-sampler.ts); both are summarized at the end.
 * `--node-args='<flags>'` starts taskcast's gateways and workers with those Node flags (e.g.
 * `--max-semi-space-size=8`), so that a runtime setting shows in the same figures as the peers'.
 * `--cluster` runs only the Redis Cluster comparison (with `--only`, beside those): the throughput
 * load on one redis-server beside a local cluster of 3 masters with a replica each, in interleaved
 * rounds (`--tasks`, `--in-flight`, `--rounds`); tasks/s, Redis CPU and commands per task, each
 * master's share of the commands and the gateway's and worker's Redis connections
 * (scripts/bench/cluster-measures.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { connectRedis } from '../test/helpers/redis.js';
import { closeRedis } from '../src/store/redis.js';
import { gcDelta, interleaved, ratios, type System } from './bench/compare.js';
import { fixedRate, round, STAGE0, STAGE10 } from './bench/load.js';
import { compiled, costDelta, redisCounters, spawnTs, startServer, waitForClient, type RedisCost, type Service } from './bench/procs.js';
import { summarizeHeapProfiles, summarizeProfiles } from './bench/profile.js';
import { scriptCost } from './bench/script-cost.js';
import { summary, type RedisPerTask } from './bench/summary.js';
import { median } from './bench/compare.js';
import { longReplay, outputThroughput, type OutputRun, type OutputSystem } from './bench/output-measures.js';
import { fanout, storm } from './bench/watch-measures.js';
import { startThroughput } from './bench/start-measures.js';
import { muxFanout } from './bench/mux-measures.js';
import { clusterVsSingle } from './bench/cluster-measures.js';

const { values: a } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tasks: { type: 'string' },
    'in-flight': { type: 'string', default: '50' },
    rounds: { type: 'string' },
    rate: { type: 'string', default: '500' },
    'rate-seconds': { type: 'string' },
    watchers: { type: 'string' },
    'fanout-tasks': { type: 'string' },
    storm: { type: 'string' },
    'storm-tasks': { type: 'string' },
    'mux-clients': { type: 'string' },
    'mux-per-client': { type: 'string' },
    'mux-tasks': { type: 'string' },
    'output-tasks': { type: 'string' },
    'output-chunks': { type: 'string' },
    'replay-events': { type: 'string' },
    starts: { type: 'string' },
    only: { type: 'string' },
    cluster: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'heap-prof': { type: 'string' },
    'node-args': { type: 'string' },
  },
});
const q = a.quick;
const opt = {
  tasks: Number(a.tasks ?? (q ? 1000 : 5000)),
  rounds: Number(a.rounds ?? (q ? 1 : 3)),
  inFlight: Number(a['in-flight']),
  rate: Number(a.rate),
  rateSeconds: Number(a['rate-seconds'] ?? (q ? 3 : 10)),
  watchers: Number(a.watchers ?? (q ? 1000 : 10_000)),
  fanoutTasks: Number(a['fanout-tasks'] ?? (q ? 10 : 100)),
  storm: Number(a.storm ?? (q ? 500 : 5000)),
  stormTasks: Number(a['storm-tasks'] ?? (q ? 10 : 50)),
  muxClients: Number(a['mux-clients'] ?? (q ? 100 : 1000)),
  muxPerClient: Number(a['mux-per-client'] ?? 10),
  muxTasks: Number(a['mux-tasks'] ?? (q ? 100 : 1000)),
  outputTasks: Number(a['output-tasks'] ?? (q ? 20 : 100)),
  outputChunks: Number(a['output-chunks'] ?? (q ? 500 : 2000)),
  replayEvents: Number(a['replay-events'] ?? (q ? 20_000 : 100_000)),
  starts: Number(a.starts ?? (q ? 2000 : 10_000)),
};
const only = new Set((a.only ?? (a.cluster ? 'cluster' : 'throughput,scheduled,latency,output,fanout,storm,mux,replay,starts,ceiling,bullmq,script')).split(','));
if (a.cluster) only.add('cluster');
const results: Record<string, Record<string, unknown>> = {};
const emit = (measure: string, data: Record<string, unknown>) => {
  results[measure] = data;
  process.stdout.write(`${JSON.stringify({ measure, ...data })}\n`);
};

const profArgs = [
  ...(a['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', a['cpu-prof']] : []),
  ...(a['heap-prof'] ? ['--import', compiled('scripts/bench/heap-sampler.ts')] : []),
];
/** Node flags of taskcast's own gateways and workers. */
const taskcastArgs = [...(a['node-args']?.split(/\s+/).filter(Boolean) ?? []), ...profArgs];
for (const dir of [a['cpu-prof'], a['heap-prof']]) if (dir) mkdirSync(dir, { recursive: true });
if (a['heap-prof']) process.env.HEAP_PROFILE_DIR = resolve(a['heap-prof']);

const redisServer = await startRedisServer();
const admin = await connectRedis(redisServer.url, 'bench');
// AOF on, as in production, but no automatic rewrite: its fork would fall into whichever system's
// round crossed the size threshold (the measures print the forks they saw).
await admin.config('SET', 'auto-aof-rewrite-percentage', '0');
const stops: (() => Promise<void>)[] = [];
const cleanup = async () => {
  for (const stop of stops.reverse()) await stop();
  await closeRedis(admin);
  await redisServer.close();
};

try {
  // All load comes from one address: the per-client limits (README "Security") are lifted.
  const limits = { WS_MAX_PER_IP: '1000000', WS_MAX_TOTAL: '10000000', START_BURST: '1000000', START_REFILL_PER_S: '1000000' };
  const env = {
    REDIS_URL: redisServer.url, WORKER_CONCURRENCY: '256', STAGE_MS: '0', HEALTH_PORT: '0',
    TASK_MODULES: compiled('scripts/bench/bench-tasks.ts'), ...limits,
  };
  const gateway = await startServer('gateway', 'src/bin/gateway.ts', env, taskcastArgs);
  stops.push(gateway.stop);
  const worker: Service = spawnTs('worker', 'src/bin/worker.ts', env, taskcastArgs);
  stops.push(worker.stop);
  await waitForClient(admin, 'taskcast:worker-reader', worker);

  if (only.has('cluster')) emit('cluster', await clusterVsSingle({ gateway, worker, redisUrl: redisServer.url }, env, taskcastArgs, opt));
  if (only.has('throughput')) await compareThroughput(gateway, worker);
  if (only.has('scheduled')) await compareScheduled(gateway, worker);
  if (only.has('latency')) {
    // stage_ms 10: the watcher is connected before the stages are appended, so each is a live event.
    emit('latency', await withGc({ gateway, worker }, () => withRedisCost(() => fixedRate(gateway.port, opt.rate, opt.rateSeconds, STAGE10))));
  }
  if (only.has('output')) await compareOutput(gateway, worker);

  let watching = gateway;
  if (only.has('fanout') && (only.has('throughput') || only.has('latency') || only.has('output'))) {
    // A new gateway in place of the first: its RSS per watcher must not depend on what the
    // measures before left in the heap, and its Redis connections are the only gateway ones.
    await gateway.stop();
    watching = await startServer('gateway', 'src/bin/gateway.ts', env, taskcastArgs);
    stops.push(watching.stop);
  }
  if (only.has('fanout')) emit('fanout', await fanout({ port: watching.port, gateway: watching, worker, admin }, opt));
  if (only.has('storm')) emit('storm', await storm({ port: watching.port, admin }, opt));
  if (only.has('mux')) {
    const startGateway = () => startServer('gateway', 'src/bin/gateway.ts', env, taskcastArgs);
    emit('mux', await muxFanout({ startGateway, worker, admin }, opt));
  }

  if (only.has('ceiling')) emit('redis_ceiling', redisBenchmark(redisServer.port));
  // Nothing else running from here on: a live worker would take the measures' commands itself.
  await worker.stop();
  if (only.has('replay')) emit('long_replay', await longReplay(admin, watching, opt.replayEvents));
  if (only.has('starts')) emit('starts', await startThroughput(admin, watching, { starts: opt.starts, inFlight: opt.inFlight, rounds: opt.rounds }));
  if (only.has('script')) {
    await watching.stop();
    const costs = [];
    for (const batch of [1, 8, 64]) costs.push(await scriptCost(admin, q ? 500 : 2000, batch));
    emit('script_cost', { by_batch: costs });
  }
} finally {
  await cleanup();
}
process.stdout.write(summary(results, opt.rounds, a['node-args']));
if (a['cpu-prof']) process.stdout.write(summarizeProfiles(a['cpu-prof']));
if (a['heap-prof']) process.stdout.write(summarizeHeapProfiles(a['heap-prof']));

/**
 * Throughput of taskcast, the do-nothing ceiling and the BullMQ equivalent, interleaved over
 * `--rounds` rounds on the same machine (scripts/bench/compare.ts); ratios are per round.
 */
async function compareThroughput(gateway: Service, worker: Service): Promise<void> {
  const systems: System[] = [
    { name: 'taskcast', port: gateway.port, pids: { gateway: gateway.child.pid!, worker: worker.child.pid!, redis: redisServer.process.pid! }, redisCost: true, gc: { gateway: gateway.gc, worker: worker.gc } },
  ];
  const extra: Service[] = [];
  if (only.has('ceiling')) {
    const ceiling = await startServer('ceiling', 'scripts/bench/ceiling-server.ts', {}, profArgs);
    extra.push(ceiling);
    systems.push({ name: 'ceiling', port: ceiling.port, pids: { server: ceiling.child.pid! }, redisCost: false, gc: { server: ceiling.gc } });
  }
  if (only.has('bullmq')) {
    const env = { BULL_REDIS_PORT: String(redisServer.port), WORKER_CONCURRENCY: '256' };
    const server = await startServer('bullmq-server', 'scripts/bench/bullmq-server.ts', env);
    const bullWorker = spawnTs('bullmq-worker', 'scripts/bench/bullmq-worker.ts', env);
    extra.push(server, bullWorker);
    systems.push({ name: 'bullmq', port: server.port, pids: { server: server.child.pid!, worker: bullWorker.child.pid! }, redisCost: true, gc: { server: server.gc, worker: bullWorker.gc } });
  }
  try {
    const res = await interleaved(admin, systems, { rounds: opt.rounds, tasks: opt.tasks, inFlight: opt.inFlight, body: STAGE0 });
    const tc = res.get('taskcast')!;
    const { redis, ...tcRest } = tc;
    emit('throughput', { system: 'taskcast', ...tcRest, in_flight: opt.inFlight, rounds: opt.rounds });
    emit('redis_cost', { system: 'taskcast', ...redisCost(redis!, tc.tasks) });
    const ceiling = res.get('ceiling');
    if (ceiling) emit('ceiling', { system: 'do-nothing server', ...ceiling, vs_taskcast: ratios(tc, ceiling) });
    const bull = res.get('bullmq');
    if (bull) {
      const { redis: bullRedis, ...bullRest } = bull;
      emit('bullmq', { system: 'Koa + ws + BullMQ 6.7 (QueueEvents)', ...bullRest, vs_taskcast: ratios(tc, bull) });
      emit('bullmq_redis_cost', redisCost(bullRedis!, bull.tasks));
      // The same latency load, for scale: what this machine does to an established queue's events.
      const port = systems.find((s) => s.name === 'bullmq')!.port;
      if (only.has('latency')) {
        const [server, bullWorker] = extra.slice(-2) as [Service, Service];
        emit('bullmq_latency', await withGc({ server, worker: bullWorker }, () => withRedisCost(() => fixedRate(port, opt.rate, opt.rateSeconds, STAGE10))));
      }
    }
  } finally {
    for (const s of extra.reverse()) await s.stop();
  }
}

/**
 * Scheduled starts (`delay_ms: 0`: SCHEDULED, then promoted by the worker's poll) beside plain
 * ones, each watched to COMPLETED, interleaved over `--rounds` rounds: throughput ratio per round,
 * Redis commands and CPU per task (promotion polls included). A scheduled task waits for the next
 * poll (SCHEDULE_POLL_MS, 250 ms by default): with `--in-flight` tasks at a time, that wait, not
 * Redis, bounds its throughput.
 */
async function compareScheduled(gateway: Service, worker: Service): Promise<void> {
  const pids = { gateway: gateway.child.pid!, worker: worker.child.pid!, redis: redisServer.process.pid! };
  const gc = { gateway: gateway.gc, worker: worker.gc };
  const systems: System[] = [
    { name: 'plain', port: gateway.port, pids, redisCost: true, gc },
    { name: 'scheduled', port: gateway.port, pids, redisCost: true, gc, body: JSON.stringify({ stage_ms: 0, delay_ms: 0 }), expectEvents: 6 },
  ];
  const res = await interleaved(admin, systems, { rounds: opt.rounds, tasks: opt.tasks, inFlight: opt.inFlight, body: STAGE0 });
  const plain = res.get('plain')!;
  const scheduled = res.get('scheduled')!;
  const cost = (r: typeof plain) => ({ ...redisCost(r.redis!, r.tasks), tasks_per_s: r.tasks_per_s, incomplete: r.incomplete, cpu_us_per_task: r.cpu_us_per_task });
  emit('scheduled_starts', {
    in_flight: opt.inFlight,
    rounds: opt.rounds,
    plain: cost(plain),
    scheduled: cost(scheduled),
    scheduled_vs_plain: ratios(scheduled, plain),
  });
}

/**
 * Output throughput of taskcast and, with `bullmq`, of the BullMQ equivalent (job.updateProgress
 * per chunk, sockets fed from QueueEvents), interleaved over `--rounds` rounds; medians and
 * per-round ratios.
 */
async function compareOutput(gateway: Service, worker: Service): Promise<void> {
  const load = { tasks: opt.outputTasks, chunks: opt.outputChunks, bytes: 20 };
  const systems: OutputSystem[] = [{
    name: 'taskcast',
    port: gateway.port,
    pids: { gateway: gateway.child.pid!, worker: worker.child.pid!, redis: redisServer.process.pid! },
    body: (chunks, bytes) => JSON.stringify({ type: 'burst', params: { chunks, bytes } }),
  }];
  const extra: Service[] = [];
  if (only.has('bullmq')) {
    const env = { BULL_REDIS_PORT: String(redisServer.port), WORKER_CONCURRENCY: '256' };
    const server = await startServer('bullmq-server', 'scripts/bench/bullmq-server.ts', env);
    const bullWorker = spawnTs('bullmq-worker', 'scripts/bench/bullmq-worker.ts', env);
    extra.push(server, bullWorker);
    systems.push({
      name: 'bullmq',
      port: server.port,
      pids: { server: server.child.pid!, worker: bullWorker.child.pid!, redis: redisServer.process.pid! },
      body: (chunks, bytes) => JSON.stringify({ chunks, bytes }),
    });
  }
  try {
    const runs = new Map<string, OutputRun[]>(systems.map((s) => [s.name, []]));
    for (let r = 0; r < opt.rounds; r++) for (const s of systems) runs.get(s.name)!.push(await outputThroughput(admin, s, load));
    const summarize = (rs: OutputRun[]) => ({
      chunks_per_s: median(rs.map((x) => x.chunks_per_s)),
      rounds_chunks_per_s: rs.map((x) => x.chunks_per_s),
      inexact_watchers: rs.map((x) => x.inexact_watchers),
      redis_cpu_us_per_event: median(rs.map((x) => x.redis_cpu_us_per_event)),
      redis_commands_per_event: median(rs.map((x) => x.redis_commands_per_event)),
      cpu_us_per_event: rs.at(-1)!.cpu_us_per_event,
    });
    const tc = runs.get('taskcast')!;
    emit('output', { system: 'taskcast', ...load, ...summarize(tc) });
    const bull = runs.get('bullmq');
    if (bull) {
      const perRound = tc.map((x, i) => round(x.chunks_per_s / bull[i]!.chunks_per_s));
      emit('bullmq_output', { system: 'Koa + ws + BullMQ 6.7 (updateProgress, QueueEvents)', ...load, ...summarize(bull), taskcast_vs_bullmq: { median: median(perRound), rounds: perRound } });
    }
  } finally {
    for (const s of extra.reverse()) await s.stop();
  }
}

/** A measure with the Redis work done meanwhile (commands and Redis CPU per task, by command), as `redis`. */
async function withRedisCost<T extends { tasks: number }>(measure: () => Promise<T>): Promise<T & { redis: RedisPerTask }> {
  const before = await redisCounters(admin);
  const result = await measure();
  return { ...result, redis: redisCost(costDelta(before, await redisCounters(admin)), result.tasks) };
}

/** A measure with the GC its Node processes had meanwhile, by role: total and longest pause (ms), MB promoted. */
async function withGc<T extends object>(services: Record<string, Service>, measure: () => Promise<T>): Promise<T & Record<string, unknown>> {
  const before = Object.fromEntries(Object.entries(services).map(([k, s]) => [k, s.gc()]));
  const result = await measure();
  const gc = Object.entries(services).map(([k, s]) => [k, gcDelta(before[k]!, s.gc())] as const);
  return {
    ...result,
    gc_pause_ms: Object.fromEntries(gc.map(([k, d]) => [k, round(d.pauseMs)])),
    gc_max_pause_ms: Object.fromEntries(gc.map(([k, d]) => [k, round(d.maxPauseMs)])),
    gc_promoted_mb: Object.fromEntries(gc.map(([k, d]) => [k, round(d.promotedBytes / 2 ** 20)])),
  };
}

function redisCost(cost: RedisCost, tasks: number): RedisPerTask {
  return {
    tasks,
    commands_per_task: round(cost.commands / tasks),
    cpu_us_per_task: round(cost.cpu_us / tasks),
    aof_bytes_per_task: round(cost.aof_bytes / tasks),
    forks: cost.forks,
    by_command_per_task: perTask(cost.by_command, tasks),
    command_us_per_task: perTask(cost.usec_by_command, tasks),
  };
}

function perTask(byCommand: Record<string, number>, tasks: number): Record<string, number> {
  return Object.fromEntries(Object.entries(byCommand).sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, round(v / tasks)]));
}

function redisBenchmark(port: number): Record<string, unknown> {
  const r = spawnSync('redis-benchmark', ['-p', String(port), '-n', q ? '50000' : '200000', '-c', '50', '--csv', 'XADD', 'bench:xadd', 'MAXLEN', '~', '10000', '*', 'f', 'v'], { encoding: 'utf8' });
  // It comes with redis-server in Debian's redis-tools; elsewhere it may be missing.
  if (r.error || r.status !== 0) return { command: 'XADD', error: `redis-benchmark failed: ${r.error?.message ?? r.stderr.trim()}` };
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  const rps = Number(line.split(',')[1]?.replace(/"/g, ''));
  return { command: 'XADD', clients: 50, xadd_per_s: round(rps) };
}
