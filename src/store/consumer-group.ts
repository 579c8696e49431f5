import type { Redis } from './redis.js';
import { COMMANDS_STREAM, WORKER_GROUP } from './keys.js';

/** Creates the `workers` group (and the stream) from the first entry; an existing group is fine. */
export async function ensureGroup(redis: Redis): Promise<void> {
  try {
    await redis.xgroup('CREATE', COMMANDS_STREAM, WORKER_GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!String(err).includes('BUSYGROUP')) throw err;
  }
}

/**
 * Removes consumers with no pending command unseen for more than `idleMs` (never `keep`), in one
 * atomic step (prune-consumers.lua). Returns their names.
 */
export function pruneConsumers(redis: Redis, idleMs: number, keep: string): Promise<string[]> {
  return redis.pruneConsumers(COMMANDS_STREAM, WORKER_GROUP, idleMs, keep);
}
