import { TASKS_INDEX } from './keys.js';
import type { Redis } from './redis.js';

/** A position in the recent-tasks index: the last entry of the previous page. */
export interface IndexCursor {
  createdAt: number;
  taskId: string;
}

export interface IndexPage {
  taskIds: string[];
  /** Where the next page starts, or null when this page reached the oldest entry. */
  next: IndexCursor | null;
}

const CURSOR_RE = /^(\d{1,16}):([0-9a-f-]{36})$/;

/** Cursors are opaque to clients: `<created ms>:<task id>`. */
export function encodeCursor(cursor: IndexCursor): string {
  return `${cursor.createdAt}:${cursor.taskId}`;
}

export function decodeCursor(raw: string): IndexCursor | null {
  const m = CURSOR_RE.exec(raw);
  return m ? { createdAt: Number(m[1]), taskId: m[2]! } : null;
}

/**
 * Task ids newest first. The order is (created ms desc, task id desc): a sorted set orders equal
 * scores by member, so a cursor names one exact position even when tasks share a millisecond.
 * Entries are added by start-tasks.lua and pruned by `pruneIndex` once older than TASK_TTL_S;
 * callers skip ids whose task has already expired.
 */
export async function readIndexPage(redis: Redis, limit: number, after: IndexCursor | null): Promise<IndexPage> {
  const entries: [string, number][] = [];
  let max = '+inf';
  if (after) {
    const ties = (await redis.call('ZRANGE', TASKS_INDEX, after.createdAt, after.createdAt, 'BYSCORE', 'REV')) as string[];
    for (const id of ties) if (id < after.taskId) entries.push([id, after.createdAt]);
    max = `(${after.createdAt}`;
  }
  const reply = (await redis.call(
    'ZRANGE', TASKS_INDEX, max, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, limit + 1, 'WITHSCORES',
  )) as (string | [string, string])[];
  entries.push(...scoredMembers(reply));

  const page = entries.slice(0, limit);
  const last = page.at(-1);
  return {
    taskIds: page.map(([id]) => id),
    next: entries.length > limit && last ? { taskId: last[0], createdAt: last[1] } : null,
  };
}

/** WITHSCORES replies are [member, score] pairs under RESP3 and a flat list under RESP2. */
function scoredMembers(reply: (string | [string, string])[]): [string, number][] {
  const out: [string, number][] = [];
  for (let i = 0; i < reply.length; i++) {
    const item = reply[i]!;
    if (Array.isArray(item)) out.push([item[0], Number(item[1])]);
    else out.push([item, Number(reply[++i])]);
  }
  return out;
}

/**
 * Removes the entries created more than `ttlS` seconds before `nowMs`: their tasks have expired,
 * or soon will. Workers run it in their periodic maintenance, so starting a task stays cheap;
 * the index key itself expires TASK_TTL_S after the last start.
 */
export function pruneIndex(redis: Redis, ttlS: number, nowMs = Date.now()): Promise<number> {
  return redis.zremrangebyscore(TASKS_INDEX, '-inf', `(${nowMs - ttlS * 1000}`);
}
