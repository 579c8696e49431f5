import { SCHEDULED_SET, eventsKey, keyIn, taskKey } from './keys.js';
import { layoutOf, type Partition } from './layout.js';
import type { Redis } from './redis.js';

/** Most tasks one promote-scheduled.lua call promotes (bounds how long it holds Redis). */
const PROMOTE_BATCH = 256;

/**
 * Promotes every scheduled task due at `now` (promote-scheduled.lua): its command is queued on its
 * priority's stream and it becomes PENDING. Several workers may call it at once: each task is
 * promoted once. Returns how many this call promoted.
 */
export async function promoteDue(redis: Redis, now = Date.now()): Promise<number> {
  const counts = await Promise.all(layoutOf(redis).partitions.map((p) => promoteIn(redis, p, now)));
  return counts.reduce((a, b) => a + b, 0);
}

async function promoteIn(redis: Redis, p: Partition, now: number): Promise<number> {
  const set = keyIn(p, SCHEDULED_SET);
  let promoted = 0;
  for (;;) {
    const ids = await redis.zrangebyscore(set, '-inf', now, 'LIMIT', 0, PROMOTE_BATCH);
    if (ids.length === 0) return promoted;
    const keys = [set, ...ids.flatMap((id) => [keyIn(p, taskKey(id)), keyIn(p, eventsKey(id))])];
    const replies = await redis.promoteScheduled(keys.length, ...keys, now, ...ids);
    promoted += replies.filter((r) => r[0] === 'PROMOTED').length;
    // Items another worker promoted meanwhile answer NOT_DUE; ERR ones (a corrupted task) stay in
    // the set, so a short page is the last.
    if (ids.length < PROMOTE_BATCH || replies.some((r) => r[0] === 'ERR')) return promoted;
  }
}
