import { PRIORITIES, WORKER_GROUP, commandsStream, keyIn } from './keys.js';
import { layoutOf } from './layout.js';
import type { Redis } from './redis.js';

/** One reading of a queue gauge: the stream and group it describes, as its labels name them. */
export interface QueueReading {
  labels: { stream: string; group: string };
  value: number;
}

const labelsOf = (stream: string) => ({ stream, group: WORKER_GROUP });

/** Every commands stream's key: per partition, one per priority. */
const allStreams = (redis: Redis): string[] =>
  layoutOf(redis).partitions.flatMap((p) => PRIORITIES.map((priority) => keyIn(p, commandsStream(priority))));

/** Per commands stream (one per priority): commands delivered to a worker and not yet acknowledged (XPENDING count). */
export async function pendingCommands(redis: Redis): Promise<QueueReading[]> {
  return Promise.all(allStreams(redis).map(async (stream) => {
    const [count] = (await redis.xpending(stream, WORKER_GROUP)) as [number, ...unknown[]];
    return { labels: labelsOf(stream), value: Number(count) };
  }));
}

/** Per commands stream: commands not yet delivered to any worker (XINFO GROUPS lag); none where Redis cannot tell. */
export async function groupLag(redis: Redis): Promise<QueueReading[]> {
  const out: QueueReading[] = [];
  for (const stream of allStreams(redis)) {
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
