import type { Redis } from '../../src/store/redis.js';
import { slotKeys } from '../../src/store/keys.js';
import { taskEvents } from './task-log.js';

const BEFORE_RUN = new Set(['SCHEDULED', 'PENDING']);
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** When a task ran, from its event log: its first stage after PENDING to its terminal event (ms); null if it never ran. */
export async function runInterval(redis: Redis, taskId: string): Promise<{ start: number; end: number } | null> {
  const events = await taskEvents(redis, taskId);
  const first = events.find((e) => e.type === 'stage' && !BEFORE_RUN.has(e.status) && !TERMINAL.has(e.status));
  const last = [...events].reverse().find((e) => e.type === 'stage' && TERMINAL.has(e.status));
  if (!first || !last) return null;
  return { start: ms(first.id), end: ms(last.id) };
}

/**
 * The most tasks running at one moment, every moment's running set rebuilt from the event logs
 * (event ids: one Redis clock). At one millisecond an end counts before a start: a slot is freed
 * in the script that records the end, before the next task can record its start.
 */
export async function maxRunning(redis: Redis, taskIds: string[]): Promise<number> {
  const marks: [number, number][] = [];
  for (const id of taskIds) {
    const run = await runInterval(redis, id);
    if (run) marks.push([run.start, 1], [run.end, -1]);
  }
  marks.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let most = 0;
  for (const [, delta] of marks) {
    running += delta;
    most = Math.max(most, running);
  }
  return most;
}

/** Whether any of a type's slot keys (holders, key counts, waiting list) exists. */
export async function slotKeysLeft(redis: Redis, type: string): Promise<string[]> {
  const keys = Object.values(slotKeys(type));
  const exists = await Promise.all(keys.map((k) => redis.exists(k)));
  return keys.filter((_, i) => exists[i] === 1);
}

function ms(id: string): number {
  return Number(id.split('-')[0]);
}
