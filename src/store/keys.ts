/** The one place that names Redis keys. The names are a user-facing contract (see README). */
import type { Priority } from '../wire/events.js';

export const COMMANDS_STREAM = 'tasks:commands';
export const DEAD_LETTER_STREAM = 'tasks:dead';
export const WORKER_GROUP = 'workers';
/** Sorted set of task ids scored by creation time (ms), for GET /tasks; pruned to TASK_TTL_S. */
export const TASKS_INDEX = 'tasks:index';
/** Pub/sub channel (not a key): a message carries the id of a task whose cancel was requested. */
export const CANCEL_CHANNEL = 'tasks:cancel';
/** Sorted set of the ids of SCHEDULED tasks, scored by their due time (epoch ms). */
export const SCHEDULED_SET = 'tasks:scheduled';

export { PRIORITIES, type Priority } from '../wire/events.js';

/**
 * The commands stream of a priority, each with the `workers` group: `tasks:commands` is the
 * normal one (its name predates priorities), `tasks:commands:high` and `tasks:commands:low`.
 */
export const commandsStream = (priority: Priority): string =>
  priority === 'normal' ? COMMANDS_STREAM : `${COMMANDS_STREAM}:${priority}`;

/**
 * Concurrency slots of a task type (see claim-tasks.lua): the hash of the tasks that hold one
 * (task id -> concurrency key), the hash of holders per concurrency key, and the list of tasks
 * waiting for one, oldest first.
 */
export const slotKeys = (type: string): { holders: string; keyCounts: string; waiting: string } => ({
  holders: `tasks:slots:${type}`,
  keyCounts: `tasks:slot-keys:${type}`,
  waiting: `tasks:waiting:${type}`,
});

/** Mirrored by prelude.lua task_hash (Lua derives the keys of the waiting tasks a slot wakes). */
export const taskKey = (taskId: string): string => `task:${taskId}`;
export const eventsKey = (taskId: string): string => `task:${taskId}:events`;

const EVENTS_SUFFIX = ':events';

/** The task id of an events stream key, the inverse of eventsKey. */
export function taskIdOfEventsKey(key: string): string {
  return key.slice('task:'.length, key.length - EVENTS_SUFFIX.length);
}
