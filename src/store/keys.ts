/** The one place that names Redis keys. The names are a user-facing contract (see README). */
export const COMMANDS_STREAM = 'tasks:commands';
export const DEAD_LETTER_STREAM = 'tasks:dead';
export const WORKER_GROUP = 'workers';
/** Sorted set of task ids scored by creation time (ms), for GET /tasks; pruned to TASK_TTL_S. */
export const TASKS_INDEX = 'tasks:index';
/** Pub/sub channel (not a key): a message carries the id of a task whose cancel was requested. */
export const CANCEL_CHANNEL = 'tasks:cancel';

/**
 * A start's Idempotency-Key: a string `<request fingerprint>:<task id>` that expires after
 * IDEMPOTENCY_TTL_S (capped at TASK_TTL_S). `scope` is `global` without auth, else derived from
 * the API token (see Auth.idempotencyScope); `key` is the header value as sent.
 */
export const idempotencyKey = (scope: string, key: string): string => `tasks:idem:${scope}:${key}`;
/** Sorted set of the ids of the tasks started with `tag`, scored by creation time (ms). */
export const tagKey = (tag: string): string => `tasks:tag:${tag}`;

export const taskKey = (taskId: string): string => `task:${taskId}`;
export const eventsKey = (taskId: string): string => `task:${taskId}:events`;

const EVENTS_SUFFIX = ':events';

/** The task id of an events stream key, the inverse of eventsKey. */
export function taskIdOfEventsKey(key: string): string {
  return key.slice('task:'.length, key.length - EVENTS_SUFFIX.length);
}
