import { cpus, totalmem } from 'node:os';
import { round, type LatencyResult } from './load.js';

/** Redis's work per task over a measure (scripts/bench.ts redisCost). */
export type RedisPerTask = {
  tasks: number;
  commands_per_task: number;
  cpu_us_per_task: number;
  /** Bytes the AOF grew by per task (appendfsync everysec: the bench's Redis runs with AOF, as production should). */
  aof_bytes_per_task: number;
  /** Forks during the measure (an AOF rewrite): 0 when the AOF figure is whole. */
  forks: number;
  by_command_per_task: Record<string, number>;
  command_us_per_task: Record<string, number>;
};

/** The short human summary printed after the JSON lines. */
export function summary(results: Record<string, Record<string, unknown>>, rounds: number, nodeArgs?: string): string {
  const t = results.throughput?.tasks_per_s as number | undefined;
  const c = results.ceiling?.tasks_per_s as number | undefined;
  const b = results.bullmq?.tasks_per_s as number | undefined;
  const vsC = (results.ceiling?.vs_taskcast as { median: number } | undefined)?.median;
  const vsB = (results.bullmq?.vs_taskcast as { median: number } | undefined)?.median;
  const lines = [
    '',
    `taskcast benchmark: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${round(totalmem() / 2 ** 30, 1)} GiB, node ${process.version}${nodeArgs ? `; taskcast's gateways and workers run with ${nodeArgs}` : ''}`,
  ];
  const ratio = (x?: number, y?: number) => (x && y ? round(x / y, 2) : NaN);
  if (t) {
    lines.push(
      `throughput (medians of ${rounds} interleaved rounds): ${t} tasks/s (${results.throughput?.incomplete} incomplete); ${vsC ?? NaN} of the ceiling (${c} tasks/s, target >= 0.6); ` +
        `${vsB ?? NaN}x BullMQ (${b} tasks/s, ${results.bullmq?.incomplete ?? '?'} tasks incomplete; target >= 1.25)`,
    );
    for (const name of ['throughput', 'bullmq', 'ceiling']) {
      const r = results[name];
      if (r) lines.push(`  ${name === 'throughput' ? 'taskcast' : name} per task: CPU us ${JSON.stringify(r.cpu_us_per_task)}, allocated KB ${JSON.stringify(r.alloc_kb_per_task)} (promoted to the old generation ${JSON.stringify(r.promoted_kb_per_task)}), GC pause ms per 1000 tasks ${JSON.stringify(r.gc_pause_ms_per_1000_tasks)}`);
    }
  }
  const l = results.latency;
  if (l) lines.push(`latency at ${l.offered_per_s} tasks/s, ${l.samples} live events: p50 ${l.p50_ms} ms, p99 ${l.p99_ms} ms, max ${l.max_ms} ms; longest GC pause ms ${JSON.stringify(l.gc_max_pause_ms)}, MB promoted ${JSON.stringify(l.gc_promoted_mb)}`);
  const sp = l?.split as LatencyResult['split'];
  if (sp) lines.push(`  of which ts to XADD (worker, group commit, script) p50 ${sp.to_redis_p50_ms} ms, p99 ${sp.to_redis_p99_ms} ms; XADD to watcher (hub read, gateway, socket) p50 ${sp.from_redis_p50_ms} ms, p99 ${sp.from_redis_p99_ms} ms (each +-1 ms: entry ids have whole ms)`);
  const bl = results.bullmq_latency;
  if (l && bl) lines.push(`  BullMQ at the same rate: p50 ${bl.p50_ms} ms, p99 ${bl.p99_ms} ms, max ${bl.max_ms} ms; longest GC pause ms ${JSON.stringify(bl.gc_max_pause_ms)}, MB promoted ${JSON.stringify(bl.gc_promoted_mb)} (target: taskcast's p50 and p99 no worse)`);
  const lr = l?.redis as RedisPerTask | undefined;
  const blr = bl?.redis as RedisPerTask | undefined;
  if (lr) {
    const reads = (r: RedisPerTask) => `${r.commands_per_task} commands (xread ${r.by_command_per_task.xread ?? 0}, client|unblock ${r.by_command_per_task['client|unblock'] ?? 0}), ${r.cpu_us_per_task} us CPU`;
    lines.push(`  Redis per task at that rate: taskcast ${reads(lr)}${blr ? `; BullMQ ${reads(blr)}` : ''}`);
  }
  const rc = results.redis_cost as RedisPerTask | undefined;
  const brc = results.bullmq_redis_cost as RedisPerTask | undefined;
  const aof = (r: RedisPerTask) => (r.forks > 0 ? `AOF bytes not known (${r.forks} forks: an AOF rewrite)` : `${r.aof_bytes_per_task} bytes of AOF`);
  if (rc) lines.push(`redis per task: ${rc.commands_per_task} commands, ${rc.cpu_us_per_task} us CPU, ${aof(rc)}`);
  if (rc && brc) {
    const x = (a: unknown, b: unknown) => round(Number(a) / Number(b), 2);
    lines.push(
      `  BullMQ: ${brc.commands_per_task} commands, ${brc.cpu_us_per_task} us CPU, ${aof(brc)}; ` +
        `taskcast/BullMQ ${x(rc.commands_per_task, brc.commands_per_task)} in commands and ${x(rc.cpu_us_per_task, brc.cpu_us_per_task)} in Redis CPU (target <= 0.5)`,
    );
  }
  const ss = results.scheduled_starts as Record<string, Record<string, unknown>> | undefined;
  if (ss) {
    const [p, s] = [ss.plain!, ss.scheduled!];
    lines.push(
      `scheduled starts (delay_ms 0, watched to the end): ${s.tasks_per_s} tasks/s vs ${p.tasks_per_s} plain = ${(ss.scheduled_vs_plain as { median: number }).median}x; ` +
        `redis per task ${s.commands_per_task} vs ${p.commands_per_task} commands, ${(s.cpu_us_per_task as Record<string, number>).redis} vs ${(p.cpu_us_per_task as Record<string, number>).redis} us CPU`,
    );
  }
  const sc = results.script_cost?.by_batch as Record<string, number>[] | undefined;
  if (sc) lines.push(`redis CPU per event by group-commit size: ${sc.map((c) => `${c.batch} -> ${c.redis_cpu_us_per_event} us`).join(', ')}`);
  const xadd = results.redis_ceiling?.xadd_per_s as number | undefined;
  if (t && xadd) lines.push(`redis-benchmark XADD: ${xadd}/s; our ${round(t * 5)} events/s = ${ratio(t * 5, xadd)} of it`);
  const o = results.output;
  const bo = results.bullmq_output;
  if (o) {
    const vs = (bo?.taskcast_vs_bullmq as { median: number } | undefined)?.median;
    lines.push(
      `output: ${o.tasks} tasks x ${o.chunks} chunks, ${o.chunks_per_s} chunks/s end to end, inexact watchers ${JSON.stringify(o.inexact_watchers)}, ` +
        `redis ${o.redis_cpu_us_per_event} us CPU per event (target <= 10); ${vs ?? NaN}x BullMQ (${bo?.chunks_per_s ?? '?'} chunks/s, ` +
        `inexact watchers ${JSON.stringify(bo?.inexact_watchers ?? '?')}; target >= 2)`,
    );
  }
  const r = results.long_replay;
  if (r) {
    lines.push(
      `long replay of ${r.events} events: WebSocket ${r.ws_events_per_s} events/s (+${r.ws_rss_growth_mb} MB gateway RSS), ` +
        `/ws?batch=1 ${r.mux_batched_events_per_s} events/s (${r.mux_batched_frames_per_event} frames per event, +${r.mux_batched_rss_growth_mb} MB), ` +
        `SSE ${r.sse_events_per_s} events/s (+${r.sse_rss_growth_mb} MB); target >= 50000 events/s`,
    );
  }
  const st = results.starts as Record<string, Record<string, unknown>> | undefined;
  if (st) {
    const p = st.plain!;
    const k = st.idempotency_key!;
    const rp = st.idempotent_replay!;
    const vs = (x: Record<string, unknown>) => (x.vs_plain as { median: number }).median;
    lines.push(
      `starts alone: plain ${p.starts_per_s}/s (${p.redis_commands_per_start} redis commands, ${p.redis_cpu_us_per_start} us redis CPU per start); ` +
        `with Idempotency-Key ${vs(k)}x that (${k.redis_commands_per_start} commands, ${k.redis_cpu_us_per_start} us); ` +
        `replays ${vs(rp)}x (${rp.redis_commands_per_start} commands, ${rp.redis_cpu_us_per_start} us)`,
    );
  }
  const f = results.fanout;
  if (f) lines.push(`fan-out: ${f.watchers} watchers, all delivered: ${f.all_delivered}, ${f.events_per_s} events/s, ${f.rss_per_watcher_kb} KB RSS/watcher (target <= 20), ${f.gateway_redis_connections} Redis connections (target <= 4)`);
  const s = results.storm;
  if (s) lines.push(`reconnect storm: ${s.watchers} watchers resumed in ${s.full_resumption_ms} ms, gaps ${s.gaps}, duplicates ${s.duplicates}`);
  const m = results.mux as { clients: number; tasks_per_client: number; mux: Record<string, unknown>; socket: Record<string, unknown>; rss_per_subscription_ratio: number; cpu_per_event_ratio: number } | undefined;
  if (m) {
    lines.push(
      `multiplexed fan-out: ${m.clients} clients x ${m.tasks_per_client} tasks, all delivered: ${m.mux.all_delivered} (one socket per task: ${m.socket.all_delivered}); ` +
        `gateway RSS per subscription ${m.mux.rss_per_subscription_kb} KB vs ${m.socket.rss_per_subscription_kb} KB (ratio ${m.rss_per_subscription_ratio}), ` +
        `CPU per event ${m.mux.cpu_us_per_event} us vs ${m.socket.cpu_us_per_event} us (ratio ${m.cpu_per_event_ratio})`,
    );
  }
  const cl = results.cluster;
  if (cl) lines.push(...clusterLines(cl));
  return `${lines.join('\n')}\n`;
}

/** The cluster comparison (scripts/bench/cluster-measures.ts): single node first, then the cluster. */
function clusterLines(cl: Record<string, unknown>): string[] {
  type Side = {
    tasks_per_s: number;
    incomplete: number;
    redis_cpu_us_per_task: { total: number; masters: number; replicas: number };
    redis_commands_per_task: { masters: number; replicas: number };
    gateway_redis_connections: { total: number; by_name: Record<string, number> };
    worker_redis_connections: { total: number; by_name: Record<string, number> };
  };
  const s = cl.single as Side;
  const c = cl.cluster as Side;
  const share = cl.master_command_share as { master_ports: number[]; shares: number[]; max_min: number; target_max_min: number };
  const names = (x: Record<string, number>) => Object.entries(x).map(([k, v]) => `${v} ${k.replace(/^taskcast:/, '')}`).join(', ');
  return [
    `redis cluster (${cl.masters} masters x ${cl.replicas_per_master} replica, medians of ${cl.rounds} interleaved rounds of ${cl.tasks} tasks): ` +
      `${c.tasks_per_s} tasks/s vs ${s.tasks_per_s} on one node = ${(cl.cluster_vs_single as { median: number }).median}x (${c.incomplete} and ${s.incomplete} incomplete)`,
    `  redis CPU per task: cluster ${c.redis_cpu_us_per_task.total} us (masters ${c.redis_cpu_us_per_task.masters}, replicas ${c.redis_cpu_us_per_task.replicas}) vs ${s.redis_cpu_us_per_task.total} us; ` +
      `commands per task: ${c.redis_commands_per_task.masters} on the masters (+${c.redis_commands_per_task.replicas} replicated) vs ${s.redis_commands_per_task.masters}`,
    `  per-master command share: ${share.shares.map((x, i) => `${x} (:${share.master_ports[i]})`).join(', ')}; max/min ${share.max_min} ` +
      `(target <= ${share.target_max_min}: within 20% of each other) ${share.max_min <= share.target_max_min ? 'MET' : 'NOT MET'}`,
    `  redis connections: gateway ${c.gateway_redis_connections.total} (${names(c.gateway_redis_connections.by_name)}) vs ${s.gateway_redis_connections.total} on one node; ` +
      `worker ${c.worker_redis_connections.total} (${names(c.worker_redis_connections.by_name)}) vs ${s.worker_redis_connections.total}`,
  ];
}
