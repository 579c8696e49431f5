import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SCALED_DOWN, measures, runBench } from '../helpers/bench-run.js';

test('npm run bench: a scaled-down run of the scheduled starts, output and script measures prints each measure as JSON, then the summary', async () => {
  const out = await runBench([...SCALED_DOWN, '--only', 'scheduled,output,bullmq,script'], 110_000);
  const m = measures(out);
  assert.deepEqual(Object.keys(m).sort(), ['bullmq_output', 'output', 'scheduled_starts', 'script_cost']);
  const scheduled = m.scheduled_starts as Record<string, Record<string, unknown>>;
  for (const kind of ['plain', 'scheduled']) {
    assert.equal(scheduled[kind]!.incomplete, 0, `${kind} starts all completed`);
    assert.ok(Number(scheduled[kind]!.commands_per_task) > 0);
  }
  assert.deepEqual(m.output!.inexact_watchers, [0]);
  assert.ok(Number(m.output!.chunks_per_s) > 0);
  assert.ok(Number(m.output!.redis_cpu_us_per_event) > 0);
  assert.ok(Number((m.bullmq_output!.taskcast_vs_bullmq as { median: number }).median) > 0);
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
