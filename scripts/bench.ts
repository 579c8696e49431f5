/**
 * `npm run bench`: taskcast's benchmark, loopback only and bounded in time. Starts its own
 * redis-server, gateway and worker processes (plus the ceiling server and the BullMQ equivalent),
 * prints one JSON line per measure, then a short human summary. Scale it down with flags, e.g.
 * `npm run bench -- --quick`, or `--tasks 1000 --watchers 2000`; `--only throughput,fanout`;
 * `--cpu-prof DIR` writes gateway, worker and ceiling-server CPU profiles (summarized at the end).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { connectRedis } from '../test/helpers/redis.js';
import { closeRedis } from '../src/store/redis.js';
import { compareEventIds } from '../src/store/event-id.js';
import { LiteHttp } from './bench/http-lite.js';
import { interleaved, ratios, type System } from './bench/compare.js';
import { fixedRate, round } from './bench/load.js';
import { checkExact, idOf, nowMs, openWatchers, startTasks, until } from './bench/fanout.js';
import { namedClients, rssBytes, spawnTs, startServer, waitForClient, type RedisCost, type Service } from './bench/procs.js';
import { summarizeProfiles } from './bench/profile.js';
import { scriptCost } from './bench/script-cost.js';

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
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
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
};
const only = new Set((a.only ?? 'throughput,latency,fanout,storm,ceiling,bullmq,script').split(','));
const results: Record<string, Record<string, unknown>> = {};
const emit = (measure: string, data: Record<string, unknown>) => {
  results[measure] = data;
  process.stdout.write(`${JSON.stringify({ measure, ...data })}\n`);
};

const STAGE0 = JSON.stringify({ stage_ms: 0 });
const STAGE10 = JSON.stringify({ stage_ms: 10 });
const GATEWAY_CLIENTS = ['taskcast:gateway', 'taskcast:hub-reader'];
const profArgs = a['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', a['cpu-prof']] : [];
if (a['cpu-prof']) mkdirSync(a['cpu-prof'], { recursive: true });

const redisServer = await startRedisServer();
const admin = await connectRedis(redisServer.url, 'bench');
const stops: (() => Promise<void>)[] = [];
const cleanup = async () => {
  for (const stop of stops.reverse()) await stop();
  await closeRedis(admin);
  await redisServer.close();
};

try {
  // All load comes from one address: the per-client limits (README "Security") are lifted.
  const limits = { WS_MAX_PER_IP: '1000000', WS_MAX_TOTAL: '10000000', START_BURST: '1000000', START_REFILL_PER_S: '1000000' };
  const env = { REDIS_URL: redisServer.url, WORKER_CONCURRENCY: '256', STAGE_MS: '0', HEALTH_PORT: '0', ...limits };
  const gateway = await startServer('gateway', 'src/bin/gateway.ts', env, profArgs);
  stops.push(gateway.stop);
  const worker: Service = spawnTs('worker', 'src/bin/worker.ts', env, profArgs);
  stops.push(worker.stop);
  await waitForClient(admin, 'taskcast:worker-reader', worker);
  const port = gateway.port;

  if (only.has('throughput')) await compareThroughput(gateway, worker);
  if (only.has('latency')) {
    // stage_ms 10: the watcher is connected before the stages are appended, so each is a live event.
    emit('latency', { ...(await fixedRate(port, opt.rate, opt.rateSeconds, STAGE10)) });
  }

  if (only.has('fanout')) await fanout(port, gateway, worker);
  if (only.has('storm')) await storm(port);

  if (only.has('ceiling')) emit('redis_ceiling', redisBenchmark(redisServer.port));
  if (only.has('script')) {
    const costs = [];
    for (const batch of [1, 8, 64]) costs.push(await scriptCost(admin, q ? 500 : 2000, batch));
    emit('script_cost', { by_batch: costs });
  }
} finally {
  await cleanup();
}
summary();
if (a['cpu-prof']) process.stdout.write(summarizeProfiles(a['cpu-prof']));

/**
 * Throughput of taskcast, the do-nothing ceiling and the BullMQ equivalent, interleaved over
 * `--rounds` rounds on the same machine (scripts/bench/compare.ts); ratios are per round.
 */
async function compareThroughput(gateway: Service, worker: Service): Promise<void> {
  const systems: System[] = [
    { name: 'taskcast', port: gateway.port, pids: { gateway: gateway.child.pid!, worker: worker.child.pid!, redis: redisServer.process.pid! }, redisCost: true },
  ];
  const extra: Service[] = [];
  if (only.has('ceiling')) {
    const ceiling = await startServer('ceiling', 'scripts/bench/ceiling-server.ts', {}, profArgs);
    extra.push(ceiling);
    systems.push({ name: 'ceiling', port: ceiling.port, pids: { server: ceiling.child.pid! }, redisCost: false });
  }
  if (only.has('bullmq')) {
    const env = { BULL_REDIS_PORT: String(redisServer.port), WORKER_CONCURRENCY: '256' };
    const server = await startServer('bullmq-server', 'scripts/bench/bullmq-server.ts', env);
    const bullWorker = spawnTs('bullmq-worker', 'scripts/bench/bullmq-worker.ts', env);
    extra.push(server, bullWorker);
    systems.push({ name: 'bullmq', port: server.port, pids: { server: server.child.pid!, worker: bullWorker.child.pid! }, redisCost: true });
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
      if (only.has('latency')) emit('bullmq_latency', { ...(await fixedRate(port, opt.rate, opt.rateSeconds, STAGE10)) });
    }
  } finally {
    for (const s of extra.reverse()) await s.stop();
  }
}

function redisCost(cost: RedisCost, tasks: number): Record<string, unknown> {
  return {
    tasks,
    commands_per_task: round(cost.commands / tasks),
    cpu_us_per_task: round(cost.cpu_us / tasks),
    by_command_per_task: perTask(cost.by_command, tasks),
    command_us_per_task: perTask(cost.usec_by_command, tasks),
  };
}

function perTask(byCommand: Record<string, number>, tasks: number): Record<string, number> {
  return Object.fromEntries(Object.entries(byCommand).sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, round(v / tasks)]));
}

/** W watchers on live tasks: the worker is paused (SIGSTOP) until every watcher is in place. */
async function fanout(port: number, gateway: Service, worker: Service): Promise<void> {
  const http = new LiteHttp(port);
  worker.child.kill('SIGSTOP');
  try {
    const tasks = await startTasks(http, opt.fanoutTasks, STAGE0);
    const rssBefore = rssBytes(gateway.child.pid!);
    let lastAt = 0;
    const plan = Array.from({ length: opt.watchers }, (_, i) => [tasks[i % tasks.length]!, undefined] as [string, undefined]);
    const watchers = await openWatchers(port, plan, 500, (_i, _d, at) => (lastAt = at));
    await until(() => watchers.every((w) => w.messages.length >= 1), 'every watcher to get PENDING', 120_000);
    const rssAfter = rssBytes(gateway.child.pid!);
    const conns = await namedClients(admin, GATEWAY_CLIENTS);
    const started = nowMs();
    worker.child.kill('SIGCONT');
    const codes = await Promise.race([
      Promise.all(watchers.map((w) => w.closed)),
      new Promise<null>((r) => setTimeout(() => r(null), 120_000).unref()),
    ]);
    const exact = await checkExact(admin, watchers.map((w, i) => ({ taskId: tasks[i % tasks.length]!, ids: w.messages.map(idOf) })));
    const live = watchers.reduce((n, w) => n + w.messages.length - 1, 0);
    emit('fanout', {
      watchers: opt.watchers,
      tasks: opt.fanoutTasks,
      all_delivered: exact.gaps === 0 && exact.duplicates === 0 && exact.wrong === 0 && codes !== null,
      ...exact,
      closed_1000: codes?.filter((c) => c === 1000).length ?? 0,
      live_events: live,
      events_per_s: round((live / (lastAt - started)) * 1000),
      gateway_rss_mb: round(rssAfter / 2 ** 20),
      rss_per_watcher_kb: round((rssAfter - rssBefore) / opt.watchers / 1024),
      gateway_redis_connections: conns,
    });
    for (const w of watchers) w.ws.destroy();
  } finally {
    worker.child.kill('SIGCONT');
    http.close();
  }
}

/** Watchers dropped mid-task, then all resumed at once with their lastEventId. */
async function storm(port: number): Promise<void> {
  const http = new LiteHttp(port);
  const tasks = await startTasks(http, opt.stormTasks, JSON.stringify({ stage_ms: 1000 }));
  http.close();
  const plan = Array.from({ length: opt.storm }, (_, i) => [tasks[i % tasks.length]!, undefined] as [string, undefined]);
  const first = await openWatchers(port, plan, 500);
  await until(() => first.every((w) => w.messages.length >= 2), 'every watcher past STARTED', 60_000);
  for (const w of first) w.ws.destroy();
  const lastSeen = first.map((w) => idOf(w.messages.at(-1)!));
  // Resume only once every task has moved on, so that each resumption has a gap to replay.
  const heads = new Map<string, string>();
  for (;;) {
    for (const taskId of tasks) heads.set(taskId, (await admin.hget(`task:${taskId}`, 'last_event_id')) ?? '');
    if (first.every((_, i) => heads.get(tasks[i % tasks.length]!) !== lastSeen[i])) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const resumedAt: number[] = new Array(opt.storm).fill(0);
  const started = nowMs();
  const second = await openWatchers(
    port,
    plan.map(([taskId], i) => [taskId, lastSeen[i]]),
    opt.storm,
    (i, data, at) => {
      if (resumedAt[i] === 0 && compareEventIds(idOf(data), heads.get(tasks[i % tasks.length]!)!) >= 0) resumedAt[i] = at;
    },
  );
  await until(() => resumedAt.every((at) => at > 0), 'every watcher to resume', 120_000);
  const resumed = nowMs();
  await Promise.all(second.map((w) => w.closed));
  const exact = await checkExact(
    admin,
    first.map((w, i) => ({ taskId: tasks[i % tasks.length]!, ids: [...w.messages, ...second[i]!.messages].map(idOf) })),
  );
  emit('storm', {
    watchers: opt.storm,
    tasks: opt.stormTasks,
    full_resumption_ms: round(resumed - started),
    gaps: exact.gaps,
    duplicates: exact.duplicates,
    out_of_order: exact.wrong,
    delivered: exact.delivered,
    expected: exact.expected,
  });
}

function redisBenchmark(port: number): Record<string, unknown> {
  const r = spawnSync('redis-benchmark', ['-p', String(port), '-n', q ? '50000' : '200000', '-c', '50', '--csv', 'XADD', 'bench:xadd', 'MAXLEN', '~', '10000', '*', 'f', 'v'], { encoding: 'utf8' });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  const rps = Number(line.split(',')[1]?.replace(/"/g, ''));
  return { command: 'XADD', clients: 50, xadd_per_s: round(rps) };
}

function summary(): void {
  const t = results.throughput?.tasks_per_s as number | undefined;
  const c = results.ceiling?.tasks_per_s as number | undefined;
  const b = results.bullmq?.tasks_per_s as number | undefined;
  const vsC = (results.ceiling?.vs_taskcast as { median: number } | undefined)?.median;
  const vsB = (results.bullmq?.vs_taskcast as { median: number } | undefined)?.median;
  const lines = [
    '',
    `taskcast benchmark: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${round(totalmem() / 2 ** 30, 1)} GiB, node ${process.version}`,
  ];
  const ratio = (x?: number, y?: number) => (x && y ? round(x / y, 2) : NaN);
  if (t) {
    lines.push(
      `throughput (medians of ${opt.rounds} interleaved rounds): ${t} tasks/s; ${vsC ?? NaN} of the ceiling (${c} tasks/s, target >= 0.6); ` +
        `${vsB ?? NaN}x BullMQ (${b} tasks/s, ${results.bullmq?.incomplete ?? '?'} tasks incomplete; target >= 1.2)`,
    );
  }
  const l = results.latency;
  if (l) lines.push(`latency at ${l.offered_per_s} tasks/s: p50 ${l.p50_ms} ms, p99 ${l.p99_ms} ms (target <= 2), max ${l.max_ms} ms`);
  const bl = results.bullmq_latency;
  if (l && bl) lines.push(`  BullMQ at the same rate: p50 ${bl.p50_ms} ms, p99 ${bl.p99_ms} ms, max ${bl.max_ms} ms`);
  const rc = results.redis_cost;
  const brc = results.bullmq_redis_cost;
  if (rc) lines.push(`redis per task: ${rc.commands_per_task} commands (target <= 20), ${rc.cpu_us_per_task} us CPU (target <= 60)`);
  if (rc && brc) {
    const x = (a: unknown, b: unknown) => round(Number(a) / Number(b), 2);
    lines.push(
      `  BullMQ: ${brc.commands_per_task} commands, ${brc.cpu_us_per_task} us CPU; ` +
        `taskcast/BullMQ ${x(rc.commands_per_task, brc.commands_per_task)} and ${x(rc.cpu_us_per_task, brc.cpu_us_per_task)} (the targets' ratios: 20/53 = 0.38, 60/120 = 0.5)`,
    );
  }
  const sc = results.script_cost?.by_batch as Record<string, number>[] | undefined;
  if (sc) lines.push(`redis CPU per event by group-commit size: ${sc.map((c) => `${c.batch} -> ${c.redis_cpu_us_per_event} us`).join(', ')}`);
  const xadd = results.redis_ceiling?.xadd_per_s as number | undefined;
  if (t && xadd) lines.push(`redis-benchmark XADD: ${xadd}/s; our ${round(t * 5)} events/s = ${ratio(t * 5, xadd)} of it`);
  const f = results.fanout;
  if (f) lines.push(`fan-out: ${f.watchers} watchers, all delivered: ${f.all_delivered}, ${f.events_per_s} events/s, ${f.rss_per_watcher_kb} KB RSS/watcher (target <= 20), ${f.gateway_redis_connections} Redis connections (target <= 4)`);
  const s = results.storm;
  if (s) lines.push(`reconnect storm: ${s.watchers} watchers resumed in ${s.full_resumption_ms} ms, gaps ${s.gaps}, duplicates ${s.duplicates}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
