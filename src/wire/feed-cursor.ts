import { EVENT_ID_RE, compareEventIds, parseEventId } from './event-id.js';

/**
 * A feed's cursor, as clients keep it and send it back: on a single Redis, the id of the last
 * entry (`<ms>-<seq>`); on a cluster, where each partition writes its own feed, one such id per
 * partition, joined by `_` (`<id>_<id>_..._<id>`). Clients treat it as opaque: they compare a new
 * entry's id with their cursor only through feedCursorCovers.
 */
export const FEED_CURSOR_SEPARATOR = '_';

const ID = EVENT_ID_RE.source.slice(1, -1);
/** The form of a feed cursor: event ids (EVENT_ID_RE) joined by FEED_CURSOR_SEPARATOR; parseFeedCursor gives its canonical form. */
export const FEED_CURSOR_RE = new RegExp(`^${ID}(?:${FEED_CURSOR_SEPARATOR}${ID})*$`);

/** The canonical form of a client-supplied feed cursor, or null when it is not one. */
export function parseFeedCursor(raw: string): string | null {
  const parts = raw.split(FEED_CURSOR_SEPARATOR);
  const ids = parts.map(parseEventId);
  return ids.every((id): id is string => id !== null) ? ids.join(FEED_CURSOR_SEPARATOR) : null;
}

/** The partition ids of a canonical cursor (one for a single Redis). */
export function feedCursorParts(cursor: string): string[] {
  return cursor.split(FEED_CURSOR_SEPARATOR);
}

/**
 * Whether the entry `id` (a canonical cursor) is at or before `cursor`: a client that holds
 * `cursor` already has it. Cursors of different shapes never cover each other.
 */
export function feedCursorCovers(cursor: string, id: string): boolean {
  const have = feedCursorParts(cursor);
  const got = feedCursorParts(id);
  return have.length === got.length && got.every((part, i) => compareEventIds(part, have[i]!) <= 0);
}
