import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RedisPerTask } from '../../scripts/bench/summary.js';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { SCALED_DOWN, measures, runBench } from '../helpers/bench-run.js';

test('npm run bench: a scaled-down run of the comparisons with BullMQ and the ceiling prints each measure as JSON, then the summary', async () => {
  const out = await runBench([...SCALED_DOWN, '--only', 'throughput,latency,ceiling,bullmq'], 110_000);
  const m = measures(out);
  assert.deepEqual(
    Object.keys(m).sort(),
    ['bullmq', 'bullmq_latency', 'bullmq_redis_cost', 'ceiling', 'latency', 'redis_ceiling', 'redis_cost', 'throughput'],
  );
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
