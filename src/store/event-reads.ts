import { corruptedOr } from './corrupted.js';
import { eventsKey, taskIdOfEventsKey } from './keys.js';
import type { Redis } from './redis.js';

/** Stream entries as Redis gives them: id, then the flat field list. */
export type Entry = [id: string, fields: string[]];

/**
 * One blocking XREAD over the event streams of `taskIds`, each after its cursor (same order), on
 * `reader` (a blocking reader's connection): at most `count` entries per stream, waiting at most
 * `blockMs`. Returns the streams that had entries, by task id; [] when the wait ran out.
 */
export async function readEvents(
  reader: Redis,
  taskIds: string[],
  cursors: string[],
  count: number,
  blockMs: number,
): Promise<{ taskId: string; entries: Entry[] }[]> {
  const keys = taskIds.map(eventsKey);
  const reply = (await reader.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...keys, ...cursors)) as [string, Entry[]][] | null;
  return (reply ?? []).map(([key, entries]) => ({ taskId: taskIdOfEventsKey(key), entries }));
}

/** The entries of a task's events in (afterId, upTo]; a stream of the wrong type is TaskCorrupted. */
export async function eventRange(redis: Redis, taskId: string, afterId: string, upTo: string): Promise<Entry[]> {
  try {
    return await redis.xrange(eventsKey(taskId), `(${afterId}`, upTo);
  } catch (err) {
    throw corruptedOr(err, taskId, eventsKey(taskId));
  }
}
