import assert from 'node:assert/strict';
import type { TaskEvent } from '../../src/wire/events.js';
import { decodeEvent } from '../../src/store/events.js';
import { TaskOutput } from '../../src/wire/output.js';
import { PRIORITIES, WORKER_GROUP, commandsStream, eventsKey, keyIn, taskKey } from '../../src/store/keys.js';
import { layoutOf } from '../../src/store/layout.js';
import type { Redis } from '../../src/store/redis.js';
import { waitFor } from './wait.js';

/** The reference task's event statuses, first to last. */
export const REFERENCE_STATUSES = ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED'];
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** A task's state hash and events stream keys, in its partition (a cluster's, or the single node's names). */
export function keysOfTask(redis: Redis, taskId: string): { state: string; events: string } {
  const p = layoutOf(redis).of(taskId);
  return { state: keyIn(p, taskKey(taskId)), events: keyIn(p, eventsKey(taskId)) };
}

/** A task's output by the exactly-once rule, rebuilt from its whole log. */
export async function taskOutput(redis: Redis, taskId: string): Promise<TaskOutput> {
  const output = new TaskOutput();
  for (const event of await taskEvents(redis, taskId)) output.apply(event);
  return output;
}

/** Every event of a task, read with XRANGE. */
export async function taskEvents(redis: Redis, taskId: string): Promise<TaskEvent[]> {
  return (await redis.xrange(keysOfTask(redis, taskId).events, '-', '+')).map(([id, f]) => decodeEvent(taskId, id, f));
}

/** The ids of every event of a task, read with XRANGE: what a client must have received. */
export async function eventIds(redis: Redis, taskId: string): Promise<string[]> {
  return (await redis.xrange(keysOfTask(redis, taskId).events, '-', '+')).map(([id]) => id);
}

/** Waits for the task's terminal status (from its hash) and returns it. */
export async function waitForEnd(redis: Redis, taskId: string, timeoutMs = 30_000): Promise<string> {
  let status: string | null = null;
  try {
    return await waitFor(async () => {
      status = await redis.hget(keysOfTask(redis, taskId).state, 'status');
      return status && TERMINAL.has(status) ? status : undefined;
    }, `task ${taskId} to end`, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; its status was ${status}`, { cause: err });
  }
}

/**
 * Asserts the stage events of a task's XRANGE are exactly `statuses` (each once, in order), that
 * every other event is a `restart` (a run that took over; tasks that report progress or output
 * are checked by their own tests), that only the last event is terminal, and that the hash
 * mirrors the last event. Returns the stage events.
 */
export async function assertEventLog(redis: Redis, taskId: string, statuses: string[]): Promise<TaskEvent[]> {
  const all = await taskEvents(redis, taskId);
  const events = all.filter((e) => e.type === 'stage');
  assert.deepEqual(events.map((e) => e.status), statuses, `event log of ${taskId}`);
  all.filter((e) => e.type !== 'stage').forEach((e) => assert.equal(e.type, 'restart', `unexpected ${e.type} event`));
  assert.equal(all.at(-1), events.at(-1), 'the last event is a stage event');
  events.slice(0, -1).forEach((e) => assert.ok(!TERMINAL.has(e.status), `terminal event before the end: ${e.status}`));
  assert.ok(TERMINAL.has(events.at(-1)!.status), 'the last event is terminal');
  const hash = await redis.hgetall(keysOfTask(redis, taskId).state);
  assert.equal(hash.status, events.at(-1)!.status);
  assert.equal(hash.last_event_id, events.at(-1)!.id);
  return events;
}

/** Asserts that none of the tasks has completed: a test's precondition before it stops or hangs what runs them. */
export async function assertRunning(redis: Redis, ids: string[]): Promise<void> {
  const statuses = await Promise.all(ids.map((id) => redis.hget(keysOfTask(redis, id).state, 'status')));
  assert.ok(statuses.every((s) => s !== 'COMPLETED'), `every task still runs: ${statuses.join(', ')}`);
}

/** Pending commands of the group over every commands stream (each partition's, each priority's). */
export async function pendingCount(redis: Redis): Promise<number> {
  const streams = layoutOf(redis).partitions.flatMap((p) => PRIORITIES.map((priority) => keyIn(p, commandsStream(priority))));
  const counts = await Promise.all(streams.map(async (stream) => {
    if (!(await redis.exists(stream))) return 0;
    return Number(((await redis.xpending(stream, WORKER_GROUP)) as [number, ...unknown[]])[0]);
  }));
  return counts.reduce((a, b) => a + b, 0);
}

/** Asserts the group has no pending command left (on any priority's stream). */
export async function assertNothingPending(redis: Redis): Promise<void> {
  assert.equal(await pendingCount(redis), 0, 'XPENDING is empty');
}

/** Waits until the group has no pending command (a worker may still be acking one). */
export async function waitNothingPending(redis: Redis, timeoutMs = 15_000): Promise<void> {
  await waitFor(async () => (await pendingCount(redis)) === 0, 'XPENDING empty', timeoutMs);
}
