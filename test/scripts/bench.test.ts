import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RedisPerTask } from '../../scripts/bench/summary.js';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { withTimeout } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `npm run bench -- <args>` (as scripts/bench.ts through tsx); resolves with its stdout once it exited 0. */
async function runBench(args: string[], timeoutMs: number): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const code = await withTimeout(new Promise<number | null>((resolve) => child.once('exit', resolve)), 'the bench run', timeoutMs);
  assert.equal(code, 0, `${out}\n${err}`);
  return out;
}

// Speed is the benchmark's business, not this test's: it checks that every measure runs end to
// end and reports exact delivery, at a scale small enough for CI. The measures run in two bench
// runs (each within the per-test time limit on a slow machine): the comparisons with BullMQ and
// the ceiling, then the fan-out and client measures.
const SCALED_DOWN = [
  '--quick', '--tasks', '100', '--rounds', '1', '--rate', '50', '--rate-seconds', '1',
  '--watchers', '100', '--fanout-tasks', '4', '--storm', '50', '--storm-tasks', '2',
  '--output-tasks', '4', '--output-chunks', '100', '--replay-events', '500', '--starts', '100',
  '--mux-clients', '10', '--mux-per-client', '3', '--mux-tasks', '5',
];

/** The JSON line of each measure in a bench run's output, by its `measure`. */
function measures(out: string): Record<string, Record<string, unknown>> {
  const lines = out.split('\n').filter((l) => l.startsWith('{'));
  return Object.fromEntries(lines.map((l) => JSON.parse(l) as { measure: string }).map((r) => [r.measure, r])) as Record<string, Record<string, unknown>>;
}

test('npm run bench: a scaled-down run of the comparisons prints each measure as JSON, then the summary', async () => {
  const out = await runBench([...SCALED_DOWN, '--only', 'throughput,scheduled,latency,output,ceiling,bullmq,script'], 110_000);
  const m = measures(out);
  assert.deepEqual(
    Object.keys(m).sort(),
    [
      'bullmq', 'bullmq_latency', 'bullmq_output', 'bullmq_redis_cost', 'ceiling', 'latency', 'output', 'redis_ceiling', 'redis_cost',
      'scheduled_starts', 'script_cost', 'throughput',
    ],
  );
  const scheduled = m.scheduled_starts as Record<string, Record<string, unknown>>;
  for (const kind of ['plain', 'scheduled']) {
    assert.equal(scheduled[kind]!.incomplete, 0, `${kind} starts all completed`);
    assert.ok(Number(scheduled[kind]!.commands_per_task) > 0);
  }
  assert.deepEqual(m.output!.inexact_watchers, [0]);
  assert.ok(Number(m.output!.chunks_per_s) > 0);
  assert.ok(Number(m.output!.redis_cpu_us_per_event) > 0);
  assert.ok(Number((m.bullmq_output!.taskcast_vs_bullmq as { median: number }).median) > 0);
  assert.equal(m.throughput!.tasks, 100);
  assert.equal(m.throughput!.incomplete, 0);
  assert.ok(Number(m.throughput!.tasks_per_s) > 0);
  // What the young-generation GC promoted, per process: the objects whose copying makes its pauses long.
  const promoted = m.throughput!.promoted_kb_per_task as Record<string, number>;
  assert.deepEqual(Object.keys(promoted).sort(), ['gateway', 'worker']);
  assert.ok(Object.values(promoted).every((kb) => Number.isFinite(kb) && kb >= 0), JSON.stringify(promoted));
  assert.ok(promoted.gateway! <= Number((m.throughput!.alloc_kb_per_task as Record<string, number>).gateway), JSON.stringify(m.throughput));
  assert.match(out, /taskcast per task: CPU us \{.*\}, allocated KB \{.*\} \(promoted to the old generation \{"gateway":[\d.]+,"worker":[\d.]+\}\)/);
  assert.ok(Number((m.ceiling!.vs_taskcast as { median: number }).median) > 0);
  assert.ok(Number(m.redis_cost!.commands_per_task) > 0);
  // The bench's Redis runs with AOF, as production should: what each task adds to it, for both systems.
  for (const name of ['redis_cost', 'bullmq_redis_cost']) {
    assert.ok(Number(m[name]!.aof_bytes_per_task) > 0, `${name}: ${JSON.stringify(m[name])}`);
    assert.ok(Number.isInteger(m[name]!.forks), `${name}: forks`);
  }
  assert.match(out, /redis per task: [\d.]+ commands, [\d.]+ us CPU, [\d.]+ bytes of AOF/);
  assert.equal(m.latency!.incomplete, 0);
  assert.ok(Number(m.latency!.samples) > 0);
  const split = m.latency!.split as Record<string, number>;
  assert.deepEqual(Object.keys(split).sort(), ['from_redis_p50_ms', 'from_redis_p99_ms', 'to_redis_p50_ms', 'to_redis_p99_ms']);
  assert.ok(Object.values(split).every(Number.isFinite), `latency split: ${JSON.stringify(split)}`);
  assert.deepEqual(Object.keys(m.latency!.gc_promoted_mb as object).sort(), ['gateway', 'worker']);
  assert.deepEqual(Object.keys(m.bullmq_latency!.gc_promoted_mb as object).sort(), ['server', 'worker']);
  assert.match(out, /longest GC pause ms \{"gateway":[\d.]+,"worker":[\d.]+\}, MB promoted \{"gateway":[\d.]+,"worker":[\d.]+\}/);
  // The Redis work of the latency load, for both systems: their watchers' live reads among it.
  for (const name of ['latency', 'bullmq_latency']) {
    const redis = m[name]!.redis as RedisPerTask;
    assert.ok(redis.commands_per_task > 0 && redis.cpu_us_per_task > 0, `${name}: ${JSON.stringify(redis)}`);
    assert.ok(redis.by_command_per_task.xread! > 0, `${name}: ${JSON.stringify(redis)}`);
  }
  assert.match(out, /taskcast\/BullMQ [\d.]+ in commands and [\d.]+ in Redis CPU \(target <= 0\.5\)/);
  assert.match(out, /Redis per task at that rate: taskcast [\d.]+ commands \(xread [\d.]+, client\|unblock [\d.]+\), [\d.]+ us CPU; BullMQ /);
  assert.match(out, /taskcast benchmark: \d+ cores/);
});

test('npm run bench: a scaled-down run of the fan-out and client measures prints each measure as JSON, then the summary', async () => {
  const out = await runBench([...SCALED_DOWN, '--only', 'fanout,storm,mux,replay,starts'], 110_000);
  const m = measures(out);
  assert.deepEqual(Object.keys(m).sort(), ['fanout', 'long_replay', 'mux', 'starts', 'storm']);
  assert.deepEqual([m.long_replay!.events, m.long_replay!.ws_received, m.long_replay!.sse_received, m.long_replay!.mux_batched_received], [502, 502, 502, 502]);
  assert.ok(Number(m.long_replay!.mux_batched_frames_per_event) < 0.1);
  assert.deepEqual(
    [m.fanout!.all_delivered, m.fanout!.gaps, m.fanout!.duplicates, m.fanout!.closed_1000, m.fanout!.gateway_redis_connections],
    [true, 0, 0, 100, 2],
  );
  assert.deepEqual([m.storm!.gaps, m.storm!.duplicates, m.storm!.out_of_order], [0, 0, 0]);
  assert.equal(m.storm!.delivered, m.storm!.expected);
  const starts = m.starts as Record<string, Record<string, any>>;
  for (const variant of ['plain', 'idempotency_key', 'idempotent_replay']) {
    assert.equal(starts[variant]!.unexpected_status, 0, variant);
    assert.ok(Number(starts[variant]!.starts_per_s) > 0, variant);
  }
  // The key costs the start script one GET and one SET; a replay writes nothing.
  assert.deepEqual([starts.idempotency_key!.by_command_per_start.get, starts.idempotency_key!.by_command_per_start.set], [1, 1]);
  assert.equal(starts.idempotent_replay!.by_command_per_start.xadd, undefined);
  assert.ok(Number(starts.idempotency_key!.vs_plain.median) > 0);
  assert.match(out, /taskcast benchmark: \d+ cores/);
  assert.match(out, /fan-out: 100 watchers, all delivered: true/);
  const mux = m.mux as { mux: Record<string, unknown>; socket: Record<string, unknown>; cpu_per_event_ratio: number };
  assert.deepEqual([mux.mux.all_delivered, mux.mux.sockets, mux.mux.subscriptions, mux.mux.delivered], [true, 10, 30, 150]);
  assert.deepEqual([mux.socket.all_delivered, mux.socket.sockets, mux.socket.subscriptions, mux.socket.delivered], [true, 30, 30, 150]);
  assert.ok(mux.cpu_per_event_ratio > 0);
  assert.match(out, /multiplexed fan-out: 10 clients x 3 tasks, all delivered: true/);
});

test('npm run bench -- --cluster: one node beside a 3-master cluster, each master\'s command share and the Redis connections', async () => {
  const args = ['--cluster', '--tasks', '60', '--rounds', '1', '--in-flight', '10'];
  const out = await runBench(args, 100_000);

  const lines = out.split('\n').filter((l) => l.startsWith('{'));
  assert.deepEqual(lines.map((l) => (JSON.parse(l) as { measure: string }).measure), ['cluster']);
  const m = JSON.parse(lines[0]!) as Record<string, any>;
  assert.deepEqual([m.masters, m.replicas_per_master, m.tasks, m.rounds], [3, 1, 60, 1]);
  for (const side of ['single', 'cluster']) {
    const s = m[side];
    assert.equal(s.incomplete, 0, side);
    assert.ok(s.tasks_per_s > 0, side);
    assert.ok(s.redis_cpu_us_per_task.masters > 0, side);
    const { total, masters, replicas } = s.redis_cpu_us_per_task;
    assert.ok(Math.abs(total - masters - replicas) <= 0.02, side);
    assert.ok(s.redis_commands_per_task.masters > 0, side);
    assert.ok(s.cpu_us_per_task.gateway > 0 && s.cpu_us_per_task.worker > 0, side);
  }
  assert.deepEqual([m.single.redis_cpu_us_per_task.replicas, m.single.redis_commands_per_task.replicas], [0, 0]);
  // The replicas replay their masters' writes.
  assert.ok(m.cluster.redis_cpu_us_per_task.replicas > 0);
  assert.ok(m.cluster.redis_commands_per_task.replicas > 0);
  assert.ok(m.cluster_vs_single.median > 0);

  const share = m.master_command_share;
  assert.equal(share.shares.length, 3);
  assert.ok(share.shares.every((x: number) => x > 0), JSON.stringify(share));
  assert.ok(Math.abs(share.shares.reduce((a: number, b: number) => a + b, 0) - 1) < 0.01, JSON.stringify(share));
  assert.ok(share.max_min >= 1);
  assert.equal(share.target_max_min, 1.2);

  // One node: the gateway's client and hub reader; the cluster: a hub reader and a command reader per partition.
  assert.deepEqual(m.single.gateway_redis_connections.by_name, { 'taskcast:gateway': 1, 'taskcast:hub-reader': 1 });
  assert.equal(m.cluster.gateway_redis_connections.by_name['taskcast:hub-reader'], CLUSTER_LAYOUT.partitions.length);
  assert.equal(m.cluster.worker_redis_connections.by_name['taskcast:worker-reader'], CLUSTER_LAYOUT.partitions.length);
  assert.ok(m.cluster.gateway_redis_connections.by_name['taskcast:gateway'] >= 3);

  assert.match(out, /redis cluster \(3 masters x 1 replica, medians of 1 interleaved rounds of 60 tasks\): [\d.]+ tasks\/s vs [\d.]+ on one node/);
  assert.match(out, /per-master command share: [\d.]+ \(:\d+\), [\d.]+ \(:\d+\), [\d.]+ \(:\d+\); max\/min [\d.]+ \(target <= 1\.2: within 20% of each other\)/);
});

test('npm run bench -- --node-args: taskcast\'s gateway and worker start with those Node flags, and the summary says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-node-args-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A preload that records each process it runs in: which script it started, and its V8 flags.
  const marker = join(dir, 'marker.mjs');
  writeFileSync(marker, `import { appendFileSync } from 'node:fs';\nappendFileSync(${JSON.stringify(join(dir, 'seen'))}, JSON.stringify({ script: process.argv[1], execArgv: process.execArgv }) + '\\n');\n`);
  const flags = `--import ${marker} --max-semi-space-size=4`;
  const out = await runBench(['--only', 'latency', '--rate', '50', '--rate-seconds', '1', `--node-args=${flags}`], 60_000);

  const seen = readFileSync(join(dir, 'seen'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { script: string; execArgv: string[] });
  assert.deepEqual(seen.map((p) => p.script.replace(/^.*\/src\//, 'src/')).sort(), ['src/bin/gateway.js', 'src/bin/worker.js']);
  for (const p of seen) assert.ok(p.execArgv.includes('--max-semi-space-size=4'), JSON.stringify(p));
  assert.match(out, /node v[\d.]+; taskcast's gateways and workers run with --import \S+ --max-semi-space-size=4\n/);
  assert.match(out, /latency at 50 tasks\/s/);
});
