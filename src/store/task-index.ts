import { TASKS_INDEX, keyIn, tagKey } from './keys.js';
import { layoutOf, type Partition } from './layout.js';
import { aboutKey } from './corrupted.js';
import type { Redis } from './redis.js';

/** A position in the recent-tasks index: the last entry of the previous page. */
export interface IndexCursor {
  createdAt: number;
  taskId: string;
}

export interface IndexPage {
  /** Newest first. */
  entries: IndexCursor[];
  /** Where the next page starts, or null when this page reached the oldest entry in range. */
  next: IndexCursor | null;
}

/**
 * Which index to read and which creation times (epoch ms) to keep: `tag` reads `tasks:tag:<tag>`
 * instead of `tasks:index`; `fromMs` is inclusive, `beforeMs` exclusive.
 */
export interface IndexRange {
  tag?: string;
  fromMs?: number;
  beforeMs?: number;
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
 * Task ids newest first, at most `limit`, after the cursor `after` and within `range`. The order
 * is (created ms desc, task id desc): a sorted set orders equal scores by member, so a cursor
 * names one exact position even when tasks share a millisecond. Entries are added by
 * start-tasks.lua and pruned once older than TASK_TTL_S (`pruneIndex`; tag indexes on write);
 * callers skip ids whose task has already expired.
 */
export async function readIndexPage(redis: Redis, limit: number, after: IndexCursor | null, range: IndexRange = {}): Promise<IndexPage> {
  const pages = await Promise.all(layoutOf(redis).partitions.map((p) => readPartitionPage(redis, p, limit, after, range)));
  if (pages.length === 1) return pages[0]!;
  // Each partition's page holds its newest `limit` after the cursor, so the merge's first `limit` are the index's.
  const merged = pages.flatMap((p) => p.entries).sort(newestFirst);
  const page = merged.slice(0, limit);
  const more = merged.length > limit || pages.some((p) => p.next !== null);
  return { entries: page, next: more && page.length > 0 ? page.at(-1)! : null };
}

const newestFirst = (a: IndexCursor, b: IndexCursor): number =>
  b.createdAt - a.createdAt || (a.taskId < b.taskId ? 1 : a.taskId > b.taskId ? -1 : 0);

async function readPartitionPage(redis: Redis, p: Partition, limit: number, after: IndexCursor | null, range: IndexRange): Promise<IndexPage> {
  const key = keyIn(p, range.tag === undefined ? TASKS_INDEX : tagKey(range.tag));
  const min = range.fromMs === undefined ? '-inf' : String(range.fromMs);
  const entries: IndexCursor[] = [];
  let max = range.beforeMs === undefined ? '+inf' : `(${range.beforeMs}`;
  if (after && (range.beforeMs === undefined || after.createdAt < range.beforeMs)) {
    if (range.fromMs === undefined || after.createdAt >= range.fromMs) {
      const ties = (await aboutKey(key, redis.call('ZRANGE', key, after.createdAt, after.createdAt, 'BYSCORE', 'REV'))) as string[];
      for (const id of ties) if (id < after.taskId) entries.push({ taskId: id, createdAt: after.createdAt });
    }
    max = `(${after.createdAt}`;
  }
  if (entries.length <= limit) {
    const reply = (await aboutKey(key, redis.call(
      'ZRANGE', key, max, min, 'BYSCORE', 'REV', 'LIMIT', 0, limit + 1 - entries.length, 'WITHSCORES',
    ))) as (string | [string, string])[];
    entries.push(...scoredMembers(reply));
  }

  const page = entries.slice(0, limit);
  const last = page.at(-1);
  return {
    entries: page,
    next: entries.length > limit && last ? last : null,
  };
}

/** WITHSCORES replies are [member, score] pairs under RESP3 and a flat list under RESP2. */
function scoredMembers(reply: (string | [string, string])[]): IndexCursor[] {
  const out: IndexCursor[] = [];
  for (let i = 0; i < reply.length; i++) {
    const item = reply[i]!;
    if (Array.isArray(item)) out.push({ taskId: item[0], createdAt: Number(item[1]) });
    else out.push({ taskId: item, createdAt: Number(reply[++i]) });
  }
  return out;
}

/**
 * Removes the entries created more than `ttlS` seconds before `nowMs`: their tasks have expired,
 * or soon will. Workers run it in their periodic maintenance, so starting a task stays cheap;
 * the index key itself expires TASK_TTL_S after the last start.
 */
export async function pruneIndex(redis: Redis, ttlS: number, nowMs = Date.now()): Promise<number> {
  const removed = await Promise.all(layoutOf(redis).partitions.map((p) =>
    redis.zremrangebyscore(keyIn(p, TASKS_INDEX), '-inf', `(${nowMs - ttlS * 1000}`)));
  return removed.reduce((a, b) => a + b, 0);
}
