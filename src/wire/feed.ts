import { parseFeedCursor } from './feed-cursor.js';

/**
 * The feeds of task changes as clients see them (GET /ws/feed, GET /sse/feed; README "Feed of
 * task changes"). Server, docs and clients import these; nothing here may import server code.
 */

/**
 * One feed entry: a task's status changed, or its progress (throttled per task, see
 * FEED_PROGRESS_MS). The entry id is the feed's cursor; each entry carries the task's whole
 * status and progress as of that change, so a list applies it as it is.
 */
export interface FeedEntry {
  id: string;
  task_id: string;
  /** The task's type. */
  type: string;
  status: string;
  progress: number;
  /** The task's tags ([] when it has none). */
  tags: string[];
  /** Time of the change, epoch milliseconds. */
  ts: number;
}

/**
 * A received message as a FeedEntry, or null when it is not one: it needs a canonical feed cursor
 * as its id, a task id, a status and a progress (`tags` absent: []). The message object becomes
 * the entry.
 */
export function parseFeedEntry(message: Record<string, unknown>): FeedEntry | null {
  const { id, task_id: taskId, status, progress } = message;
  if (typeof id !== 'string' || parseFeedCursor(id) !== id || typeof taskId !== 'string' || typeof status !== 'string' || typeof progress !== 'number') return null;
  message.tags ??= [];
  return message as unknown as FeedEntry;
}

/**
 * The first message of a feed opened without a cursor: `{ "id": <cursor> }`, no `task_id`. The
 * feed goes on live from this id; a client that keeps it resumes from it with nothing missed. Over
 * SSE it is a message with an `id:` line and no data, which sets EventSource's lastEventId.
 */
export interface FeedCursorMark {
  id: string;
}

/** A tag: what a task may carry, a tag feed follows and a tag token grants (the starts' tag rule). */
export const TAG_RE = /^[A-Za-z0-9_.:=@/+-]{1,64}$/;
/** TAG_RE in words, for error messages and docs. */
export const TAG_RULE = '1 to 64 of the characters A-Z a-z 0-9 _ . : = @ / + -';

/** Name of the SSE message that tells the client its cursor is older than the feed holds. */
export const FEED_RESET_EVENT = 'reset';

/** The data of the SSE `reset` message (the WebSocket closes with 4410 and the id in its reason). */
export interface FeedReset {
  code: 'FEED_CURSOR_EXPIRED';
  message: string;
  /** Reload the task list, then continue the feed from this id (also the message's `id:`). */
  continue_from: string;
}

/**
 * The message (and `ended` reason) of FEED_CURSOR_EXPIRED. On a single Redis it fits a WebSocket
 * close reason (123 bytes); a cluster's cursor does not, and `/ws/feed` closes with
 * FEED_RESET_SHORT_REASON instead.
 */
export function feedResetMessage(continueFrom: string): string {
  return `entries after the cursor are gone: reload the list, then continue from ${continueFrom}`;
}

/** The cursor to continue from in a 4410 close reason (or `ended` reason), or null when the reason holds none. */
export function continueFromReason(reason: string): string | null {
  const raw = /continue from (\S+)$/.exec(reason)?.[1];
  return raw === undefined ? null : parseFeedCursor(raw);
}

/** The 4410 close reason of `/ws/feed` when the cursor to continue from does not fit a close reason (a cluster's). */
export const FEED_RESET_SHORT_REASON = 'entries after the cursor are gone: reload the list, then open the feed again without a cursor';

/** A feed token as POST /feed-tokens answers it; token and expires_at are null with auth off (none needed). */
export interface FeedGrant {
  /** The tag whose feed it opens (a tag token); null: the all-tasks feed. */
  tag: string | null;
  token: string | null;
  /** Expiry, epoch milliseconds. */
  expires_at: number | null;
}
