import { COMMANDS_STREAM, WORKER_GROUP, eventsKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { TaskWrites, type EventInput } from '../../src/store/task-writes.js';
import { benchChunk } from './bench-tasks.js';
import { LiteHttp } from './http-lite.js';
import { nowMs, round, watch, type Watched } from './load.js';
import { openLiteWs } from './ws-lite.js';
import { costDelta, cpuMs, redisCounters, rssBytes, type Service } from './procs.js';

/** How long no watcher may get a message before a run is taken as stalled, ms. */
const STALL_MS = 3000;

/** A system under the output load: where it listens, which processes work, how a task is asked for. */
export interface OutputSystem {
  name: string;
  port: number;
  pids: Record<string, number>;
  body(chunks: number, bytes: number): string;
}

export interface OutputRun {
  chunks_per_s: number;
  elapsed_ms: number;
  /** Watchers whose output was not exactly chunks 0..n-1, each once, in order (taskcast: also their ids against XRANGE). */
  inexact_watchers: number;
  redis_cpu_us_per_event: number;
  redis_commands_per_event: number;
  cpu_us_per_event: Record<string, number>;
}

/**
 * `tasks` tasks each stream `chunks` output chunks of `bytes` characters as fast as their handler
 * can; each is watched by one WebSocket opened right after its start. Chunks per second end to
 * end (first start to last socket closed), every watcher's output checked, Redis CPU per event.
 * A system that loses a task's end (BullMQ's trimmed events stream) leaves its socket open: once
 * no message has come for STALL_MS, the run ends at its last message and those watchers count as
 * inexact.
 */
export async function outputThroughput(
  admin: Redis,
  system: OutputSystem,
  opt: { tasks: number; chunks: number; bytes: number },
): Promise<OutputRun> {
  const http = new LiteHttp(system.port);
  const body = system.body(opt.chunks, opt.bytes);
  const cpuBefore = Object.fromEntries(Object.entries(system.pids).map(([k, pid]) => [k, cpuMs(pid)]));
  const before = await redisCounters(admin);
  const started = nowMs();
  let lastAt = started;
  const watched: { taskId: string; w: Watched }[] = [];
  try {
    for (let i = 0; i < opt.tasks; i++) {
      const res = await http.post('/tasks', body);
      if (res.status !== 202) throw new Error(`${system.name}: POST /tasks answered ${res.status}: ${res.body}`);
      const taskId = String((JSON.parse(res.body) as { task_id: string }).task_id);
      watched.push({ taskId, w: watch(system.port, taskId, undefined, (_d, at) => (lastAt = at)) });
    }
  } finally {
    http.close();
  }
  let open = watched.length;
  for (const { w } of watched) void w.closed.then(() => (open -= 1));
  while (open > 0 && nowMs() - lastAt < STALL_MS) await new Promise((resolve) => setTimeout(resolve, 50));
  const elapsed = (open > 0 ? lastAt : nowMs()) - started;
  const cost = costDelta(before, await redisCounters(admin));
  const total = opt.tasks * opt.chunks;
  let inexact = 0;
  for (const { taskId, w } of watched) {
    if (!(await exact(admin, system.name, taskId, w.messages, opt))) inexact += 1;
    w.ws.destroy();
  }
  return {
    chunks_per_s: round((total / elapsed) * 1000),
    elapsed_ms: Math.round(elapsed),
    inexact_watchers: inexact,
    redis_cpu_us_per_event: round(cost.cpu_us / total),
    redis_commands_per_event: round(cost.commands / total),
    cpu_us_per_event: Object.fromEntries(Object.entries(system.pids).map(([k, pid]) => [k, round(((cpuMs(pid) - cpuBefore[k]!) * 1000) / total)])),
  };
}

/** The chunks a watcher got are exactly 0..n-1 in order; for taskcast its event ids also equal XRANGE. */
async function exact(admin: Redis, system: string, taskId: string, messages: string[], opt: { chunks: number; bytes: number }): Promise<boolean> {
  const parsed = messages.map((m) => JSON.parse(m) as { id?: string; type?: string; chunk?: string });
  const chunks = parsed.filter((e) => e.type === 'output').map((e) => e.chunk);
  if (chunks.length !== opt.chunks || chunks.some((c, i) => c !== benchChunk(i, opt.bytes))) return false;
  if (system !== 'taskcast') return true;
  const ids = (await admin.xrange(eventsKey(taskId), '-', '+')).map(([id]) => id);
  return ids.length === parsed.length && ids.every((id, i) => id === parsed[i]!.id);
}

/**
 * One task with `events` recorded events (output chunks, then COMPLETED), written straight
 * through the append script, then replayed whole to a fresh WebSocket and a fresh SSE client:
 * events per second and the gateway's RSS growth during each replay (peak over the RSS before).
 * Needs no worker running: it holds the task's command itself.
 */
export async function longReplay(admin: Redis, gateway: Service, events: number): Promise<Record<string, unknown>> {
  const taskId = await recordHistory(admin, events);
  const pid = gateway.child.pid!;
  const ws = await sampled(pid, async () => {
    const w = watch(gateway.port, taskId);
    await w.closed;
    w.ws.destroy();
    return { count: w.messages.length };
  });
  const mux = await sampled(pid, () => muxBatchedCount(gateway.port, taskId));
  const sse = await sampled(pid, async () => ({ count: await sseCount(gateway.port, taskId) }));
  const total = events + 2;
  return {
    events: total,
    ws_received: ws.count,
    ws_events_per_s: round((ws.count / ws.ms) * 1000),
    ws_rss_growth_mb: round(ws.growth / 2 ** 20),
    mux_batched_received: mux.count,
    mux_batched_events_per_s: round((mux.count / mux.ms) * 1000),
    mux_batched_frames_per_event: round(mux.frames / mux.count),
    mux_batched_rss_growth_mb: round(mux.growth / 2 ** 20),
    sse_received: sse.count,
    sse_events_per_s: round((sse.count / sse.ms) * 1000),
    sse_rss_growth_mb: round(sse.growth / 2 ** 20),
    gateway_rss_before_mb: round(ws.before / 2 ** 20),
  };
}

async function recordHistory(admin: Redis, events: number): Promise<string> {
  const { state, commandId } = await new TaskStore(admin, { ttlS: 3600 }).start('burst', { chunks: events, bytes: 20 });
  await admin.xreadgroup('GROUP', WORKER_GROUP, 'bench-replay', 'STREAMS', COMMANDS_STREAM, '>');
  const writes = new TaskWrites(admin, { consumer: 'bench-replay', ttlS: 3600, maxDeliveries: 5 });
  const taskId = state.task_id;
  const [claimed] = await writes.claim({ taskId, lease: 'bench', commandId });
  if (claimed !== 'OK') throw new Error(`long replay: claim answered ${claimed}`);
  const event = (i: number): EventInput => ({ kind: 'text', ts: Date.now(), value: benchChunk(i, 20) });
  const items = [];
  for (let i = 0; i < events; i += 128) {
    const chunk = Array.from({ length: Math.min(128, events - i) }, (_, j) => event(i + j));
    items.push(writes.append({ taskId, lease: 'bench', commandId, firstSeq: i + 1, events: chunk }));
  }
  await Promise.all(items);
  const completed: EventInput = { kind: 'stage', status: 'COMPLETED', progress: 100, terminal: true, ts: Date.now() };
  await writes.append({ taskId, lease: 'bench', commandId, firstSeq: events + 1, events: [completed] });
  return taskId;
}

/** Subscribes to the task on `/ws?batch=1` and reads it to its `ended`; its events and the frames that brought them. */
function muxBatchedCount(port: number, taskId: string): Promise<{ count: number; frames: number }> {
  return new Promise((resolve, reject) => {
    let count = 0;
    let frames = 0;
    const ws = openLiteWs(port, '/ws?batch=1', {
      open: () => ws.send(JSON.stringify({ type: 'subscribe', task: taskId })),
      text: (data) => {
        frames += 1;
        for (const m of JSON.parse(data) as { id?: string; type?: string; code?: number }[]) {
          if (m.id !== undefined) count += 1;
          else if (m.type === 'ended') {
            ws.destroy();
            if (m.code === 1000) resolve({ count, frames });
            else reject(new Error(`long replay over /ws ended with ${m.code}`));
          }
        }
      },
      close: (code) => reject(new Error(`long replay over /ws closed with ${code}`)),
    });
  });
}

/** Runs `replay`, sampling the gateway's RSS every 20 ms; returns what it counted, its time and the RSS growth. */
async function sampled<T extends { count: number }>(pid: number, replay: () => Promise<T>): Promise<T & { ms: number; growth: number; before: number }> {
  const before = rssBytes(pid);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 20);
  const started = nowMs();
  try {
    const counted = await replay();
    return { ...counted, ms: nowMs() - started, growth: Math.max(0, peak - before), before };
  } finally {
    clearInterval(timer);
  }
}

/** Reads GET /sse/task/<id> to its end and counts its messages (`id:` lines). */
async function sseCount(port: number, taskId: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/sse/task/${taskId}`, { headers: { accept: 'text/event-stream' } });
  let count = 0;
  let partial = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const lines = (partial + decoder.decode(chunk, { stream: true })).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line.startsWith('id: ')) count += 1;
  }
  return count;
}
