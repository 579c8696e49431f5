/** The one place that names Redis keys. The names are a user-facing contract (see README). */
import type { Priority } from '../wire/events.js';
import type { Partition } from './layout.js';

export const COMMANDS_STREAM = 'tasks:commands';
export const DEAD_LETTER_STREAM = 'tasks:dead';
export const WORKER_GROUP = 'workers';
/** Sorted set of task ids scored by creation time (ms), for GET /tasks; pruned to TASK_TTL_S. */
export const TASKS_INDEX = 'tasks:index';
/** Pub/sub channel (not a key): a message carries the id of a task whose cancel was requested. */
export const CANCEL_CHANNEL = 'tasks:cancel';
/** The feed of every task's status and progress changes (bounded by FEED_MAXLEN). */
export const FEED_STREAM = 'tasks:feed';
/** Prefix of a tag's feed: `tasks:feed:tag:<tag>`, the changes of the tasks that carry the tag. */
export const FEED_TAG_PREFIX = 'tasks:feed:tag:';

/**
 * A start's Idempotency-Key: a string `<request fingerprint>:<task id>` that expires after
 * IDEMPOTENCY_TTL_S (capped at TASK_TTL_S). `scope` is `global` without auth, else derived from
 * the API token (see Auth.idempotencyScope); `key` is the header value as sent.
 */
export const idempotencyKey = (scope: string, key: string): string => `tasks:idem:${scope}:${key}`;
/** Sorted set of the ids of the tasks started with `tag`, scored by creation time (ms). */
export const tagKey = (tag: string): string => `tasks:tag:${tag}`;
/** The all-tasks feed, or the feed of one tag. */
export const feedKey = (tag?: string): string => (tag === undefined ? FEED_STREAM : `${FEED_TAG_PREFIX}${tag}`);

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

/**
 * Prefix of a task's state hash. The scripts get it as TASK_KEY_PREFIX (src/store/redis.ts):
 * prelude.lua reads a task's id off its hash key (feed entries) and derives the hash of a waiting
 * task a freed slot wakes (task_hash).
 */
export const TASK_KEY_PREFIX = 'task:';
export const taskKey = (taskId: string): string => `${TASK_KEY_PREFIX}${taskId}`;
export const eventsKey = (taskId: string): string => `task:${taskId}:events`;

/** `name` (a key name of this file) in partition `p` (src/store/layout.ts): its hash tag first. */
export const keyIn = (p: Partition, name: string): string => p.prefix + name;
