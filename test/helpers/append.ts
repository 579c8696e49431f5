import type { Redis } from '../../src/store/redis.js';
import { TaskWrites, type AppendItem, type EventInput } from '../../src/store/task-writes.js';

/**
 * The last sequence number given to each run's events, by task id and lease: a run numbers its
 * events 1, 2, ... (a claim resets the task's count; an item numbered past the next one is refused
 * as a hole in the log, GAP).
 */
const seqs = new Map<string, number>();

/**
 * A test's event as an append item of one event, as the lease `lease` would write it: an output
 * chunk with `text`, else a stage event (`extra` adds fields to it).
 */
export function item(
  taskId: string,
  lease: string,
  e: { text: string; ts?: number }
    | { status: string; progress: number | ''; step?: number; terminal?: boolean; commandId?: string; ts?: number;
      extra?: Record<string, string | number> },
): AppendItem {
  const ts = e.ts ?? Date.now();
  const event: EventInput = 'text' in e
    ? { kind: 'text', ts, value: e.text }
    : { kind: 'stage', ts, status: e.status, progress: e.progress, step: e.step, terminal: e.terminal, fields: Object.entries(e.extra ?? {}).flat() };
  const run = `${taskId}/${lease}`;
  const firstSeq = (seqs.get(run) ?? 0) + 1;
  seqs.set(run, firstSeq);
  return { taskId, lease, commandId: 'commandId' in e ? (e.commandId ?? '') : '', firstSeq, events: [event] };
}

/**
 * Appends one event through the production append script, as a worker holding the lease
 * `test-lease` would: for tests that need events at a moment (or of a size) they choose, with no
 * worker process running.
 */
export async function appendEvent(
  redis: Redis,
  taskId: string,
  e: { status: string; progress: number; terminal?: boolean; extra?: Record<string, string> },
): Promise<string> {
  const writes = new TaskWrites(redis, { consumer: 'test', ttlS: 3600, maxDeliveries: 5 });
  const [result, id] = await writes.append(item(taskId, 'test-lease', e));
  if (result !== 'OK' || !id) throw new Error(`append failed: ${result}`);
  return id;
}

/**
 * Appends `n` PROCESSING events (each carrying `note` when given, e.g. to make them large), then
 * COMPLETED when `complete` (the default): a long history to replay.
 */
export async function appendHistory(
  redis: Redis,
  taskId: string,
  n: number,
  options: { note?: string; complete?: boolean } = {},
): Promise<void> {
  const extra = options.note === undefined ? undefined : { note: options.note };
  for (let i = 0; i < n; i++) await appendEvent(redis, taskId, { status: 'PROCESSING', progress: 50, ...(extra ? { extra } : {}) });
  if (options.complete !== false) await appendEvent(redis, taskId, { status: 'COMPLETED', progress: 100, terminal: true });
}

/**
 * Appends `n` (at most 64) PROCESSING events carrying `note` in one group commit: one script
 * call, so a watching gateway's hub gets them all in one read and writes them in one turn.
 */
export async function appendBurst(redis: Redis, taskId: string, n: number, note: string): Promise<void> {
  const writes = new TaskWrites(redis, { consumer: 'test', ttlS: 3600, maxDeliveries: 5, maxBatch: 64 });
  const event = { status: 'PROCESSING', progress: 50, extra: { note } };
  const results = await Promise.all(Array.from({ length: n }, () => writes.append(item(taskId, 'test-lease', event))));
  const failed = results.find(([result]) => result !== 'OK');
  if (failed) throw new Error(`append failed: ${failed[0]}`);
}

/**
 * Appends bursts (appendBurst: 64 events carrying `note`, one hub read each) until `done`
 * settles, at most `maxBursts` of them: e.g. until a client that stopped reading is cut.
 */
export async function burstUntil(redis: Redis, taskId: string, note: string, done: Promise<unknown>, maxBursts = 40): Promise<void> {
  let settled = false;
  void done.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < maxBursts && !settled; i++) await appendBurst(redis, taskId, 64, note);
}
