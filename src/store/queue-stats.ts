import { COMMANDS_STREAM, WORKER_GROUP } from './keys.js';
import type { Redis } from './redis.js';

/** The stream and group the queue gauges describe, as their labels name them. */
export const QUEUE_LABELS = { stream: COMMANDS_STREAM, group: WORKER_GROUP } as const;

/** Commands delivered to a worker and not yet acknowledged (XPENDING count). */
export async function pendingCommands(redis: Redis): Promise<number> {
  const [count] = (await redis.xpending(COMMANDS_STREAM, WORKER_GROUP)) as [number, ...unknown[]];
  return Number(count);
}

/** Commands not yet delivered to any worker (XINFO GROUPS lag), or null when Redis cannot tell. */
export async function groupLag(redis: Redis): Promise<number | null> {
  const groups = (await redis.xinfo('GROUPS', COMMANDS_STREAM)) as unknown[];
  for (const group of groups) {
    if (!Array.isArray(group)) continue;
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < group.length; i += 2) fields.set(String(group[i]), group[i + 1]);
    if (fields.get('name') !== WORKER_GROUP) continue;
    const lag = fields.get('lag');
    return lag === null || lag === undefined ? null : Number(lag);
  }
  return null;
}
