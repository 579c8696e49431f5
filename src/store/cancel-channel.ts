import type { Logger } from '../logger.js';
import { CANCEL_CHANNEL } from './keys.js';
import { closeRedis, duplicateForBlocking, ensureConnected, type Redis } from './redis.js';

/** A subscription to cancel requests; close() is idempotent. */
export interface CancelSubscription {
  close(): Promise<void>;
}

/**
 * Calls `onCancel(taskId)` for every cancel request published on `tasks:cancel` (cancel-task.lua),
 * over a connection of its own. Messages missed while disconnected are caught by the heartbeat,
 * which reports a requested cancel too.
 */
export async function subscribeCancels(main: Redis, name: string, logger: Logger, onCancel: (taskId: string) => void): Promise<CancelSubscription> {
  const subscriber = duplicateForBlocking(main, name, logger);
  subscriber.on('message', (_channel: string, taskId: string) => onCancel(taskId));
  await ensureConnected(subscriber);
  await subscriber.subscribe(CANCEL_CHANNEL);
  return { close: () => closeRedis(subscriber) };
}
