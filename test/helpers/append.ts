import { COMMANDS_STREAM, WORKER_GROUP, eventsKey, taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';

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
  const args: (string | number)[] = [
    taskKey(taskId), eventsKey(taskId), COMMANDS_STREAM,
    'test-lease', '', e.terminal ? '1' : '0', 3600, WORKER_GROUP, '', Date.now(), e.status, e.progress,
  ];
  for (const [k, v] of Object.entries(e.extra ?? {})) args.push(k, v);
  const [result, id] = await redis.appendEvent(...args);
  if (result !== 'OK' || !id) throw new Error(`append failed: ${result}`);
  return id;
}
