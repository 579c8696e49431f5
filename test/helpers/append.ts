import type { Redis } from '../../src/store/redis.js';
import { TaskWrites } from '../../src/store/task-writes.js';

/**
 * Appends one event through the production append script, as a worker holding the lease
 * `test-lease` would: for tests that need events at a moment (or of a size) they choose, with no
 * worker process running.
 */
export async function appendEvent(
  redis: Redis,
  taskId: string,
  e: { status: string; progress: number; terminal?: boolean; extra?: Record<string, string> },
): Promise<string> {
  const writes = new TaskWrites(redis, { consumer: 'test', ttlS: 3600, maxDeliveries: 5 });
  const [result, id] = await writes.append({ ...e, taskId, lease: 'test-lease', ts: Date.now() });
  if (result !== 'OK' || !id) throw new Error(`append failed: ${result}`);
  return id;
}
