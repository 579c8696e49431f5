import { corruptedOr } from './corrupted.js';
import { eventsKey, keyIn } from './keys.js';
import { layoutOf } from './layout.js';
import type { Redis } from './redis.js';

/** Stream entries as Redis gives them: id, then the flat field list. */
export type Entry = [id: string, fields: string[]];

/** The entries of a task's events in (afterId, upTo]; a stream of the wrong type is TaskCorrupted. */
export async function eventRange(redis: Redis, taskId: string, afterId: string, upTo: string): Promise<Entry[]> {
  const key = keyIn(layoutOf(redis).of(taskId), eventsKey(taskId));
  try {
    return await redis.xrange(key, `(${afterId}`, upTo);
  } catch (err) {
    throw corruptedOr(err, taskId, key);
  }
}
