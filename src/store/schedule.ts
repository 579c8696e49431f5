import { SCHEDULED_SET, eventsKey, taskKey } from './keys.js';
import type { Redis } from './redis.js';

/** Most tasks one promote-scheduled.lua call promotes (bounds how long it holds Redis). */
const PROMOTE_BATCH = 256;

/**
 * Promotes every scheduled task due at `now` (promote-scheduled.lua): its command is queued on its
 * priority's stream and it becomes PENDING. Several workers may call it at once: each task is
 * promoted once. Returns how many this call promoted.
 */
export async function promoteDue(redis: Redis, now = Date.now()): Promise<number> {
  let promoted = 0;
  for (;;) {
    const ids = await redis.zrangebyscore(SCHEDULED_SET, '-inf', now, 'LIMIT', 0, PROMOTE_BATCH);
    if (ids.length === 0) return promoted;
    const keys = [SCHEDULED_SET, ...ids.flatMap((id) => [taskKey(id), eventsKey(id)])];
    const replies = await redis.promoteScheduled(keys.length, ...keys, now, ...ids);
    promoted += replies.filter((r) => r[0] === 'PROMOTED').length;
    // Items another worker promoted meanwhile answer NOT_DUE; ERR ones (a corrupted task) stay in
    // the set, so a short page is the last.
    if (ids.length < PROMOTE_BATCH || replies.some((r) => r[0] === 'ERR')) return promoted;
  }
}
