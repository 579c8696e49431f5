import type { Redis } from './redis.js';
import { PRIORITIES, WORKER_GROUP, commandsStream, keyIn } from './keys.js';
import { layoutOf } from './layout.js';

/**
 * Creates the `workers` group (and the stream) of every commands stream (each partition's, one
 * per priority) from its first entry; an existing group is fine.
 */
export async function ensureGroup(redis: Redis): Promise<void> {
  for (const p of layoutOf(redis).partitions) for (const priority of PRIORITIES) {
    try {
      await redis.xgroup('CREATE', keyIn(p, commandsStream(priority)), WORKER_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String(err).includes('BUSYGROUP')) throw err;
    }
  }
}

/** The group (or its stream) is gone: the reply of a group read after the stream was deleted or Redis lost its data. */
export function isNoGroup(err: unknown): boolean {
  return String(err).includes('NOGROUP');
}

/**
 * Removes the consumers of `stream`'s group with no pending command unseen for more than `idleMs`
 * (never `keep`), in one atomic step (prune-consumers.lua). Returns their names.
 */
export function pruneConsumers(redis: Redis, stream: string, idleMs: number, keep: string): Promise<string[]> {
  return redis.pruneConsumers(stream, WORKER_GROUP, idleMs, keep);
}
