import { PRIORITIES, WORKER_GROUP, commandsStream } from './keys.js';
import type { Redis } from './redis.js';

/** One reading of a queue gauge: the stream and group it describes, as its labels name them. */
export interface QueueReading {
  labels: { stream: string; group: string };
  value: number;
}

const labelsOf = (stream: string) => ({ stream, group: WORKER_GROUP });

/** Per commands stream (one per priority): commands delivered to a worker and not yet acknowledged (XPENDING count). */
export async function pendingCommands(redis: Redis): Promise<QueueReading[]> {
  return Promise.all(PRIORITIES.map(async (priority) => {
    const stream = commandsStream(priority);
    const [count] = (await redis.xpending(stream, WORKER_GROUP)) as [number, ...unknown[]];
    return { labels: labelsOf(stream), value: Number(count) };
  }));
}

/** Per commands stream: commands not yet delivered to any worker (XINFO GROUPS lag); none where Redis cannot tell. */
export async function groupLag(redis: Redis): Promise<QueueReading[]> {
  const out: QueueReading[] = [];
  for (const priority of PRIORITIES) {
    const stream = commandsStream(priority);
    const groups = (await redis.xinfo('GROUPS', stream)) as unknown[];
    for (const group of groups) {
      if (!Array.isArray(group)) continue;
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < group.length; i += 2) fields.set(String(group[i]), group[i + 1]);
      if (fields.get('name') !== WORKER_GROUP) continue;
      const lag = fields.get('lag');
      if (lag !== null && lag !== undefined) out.push({ labels: labelsOf(stream), value: Number(lag) });
    }
  }
  return out;
}
