import { AppError } from '../errors.js';
import type { FeedStore } from '../store/feed-store.js';
import { TAG_RE, TAG_RULE } from '../wire/feed.js';
import type { Watch, WatchSink } from './watch.js';
import type { Hub } from './hub.js';

/** What a transport does with a feed: a watch that never ends by itself, plus the cursor mark. */
export interface FeedSink extends Omit<WatchSink, 'end'> {
  /**
   * Called first, and only, when the feed was opened without a cursor: the id it goes on from
   * (the FeedCursorMark of src/wire/feed.ts).
   */
  start(cursor: string): void;
}

export interface FeedRequest {
  /** Raw client input; undefined is the all-tasks feed. */
  tag?: string | undefined;
  /** Raw client input; undefined or empty means live from now (after a cursor mark). */
  lastEventId?: string | undefined;
  /** What the client called it (`Last-Event-ID` for the SSE header), for error messages. */
  lastEventIdName?: string;
}

/** The tag of a feed request, or BAD_REQUEST; undefined for the all-tasks feed. */
export function checkTag(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!TAG_RE.test(raw)) throw new AppError('INVALID_QUERY', `tag must be ${TAG_RULE}`);
  return raw;
}

/**
 * Validates a feed request and starts it: every entry after lastEventId (a replay paged with the
 * transport's flow control, as openWatch's), then live entries through the hub, until the client
 * leaves. Rejects before any entry with BAD_REQUEST / INVALID_EVENT_ID, or with FeedGap when the
 * cursor is older than the feed holds (or beyond its end); a gap found later comes through
 * sink.error. Without lastEventId the feed starts at its current end, announced by sink.start.
 */
export async function openFeed(deps: { feeds: FeedStore; hub: Hub }, request: FeedRequest, sink: FeedSink): Promise<Watch> {
  const tag = checkTag(request.tag);
  const name = request.lastEventIdName ?? 'lastEventId';
  let cursor: string;
  if (request.lastEventId) {
    const checked = deps.feeds.checkCursor(request.lastEventId);
    if (checked === null) throw new AppError('INVALID_EVENT_ID', `${name} must be a cursor of this feed (README "Feed of task changes")`);
    cursor = checked;
  } else {
    cursor = await deps.feeds.head(tag);
    sink.start(cursor);
  }
  for (;;) {
    const page = await deps.feeds.page(tag, cursor, REPLAY_PAGE);
    for (const entry of page) {
      sink.event(entry, true);
      cursor = entry.id;
      const wait = sink.room();
      if (wait && !(await wait)) return { close: () => undefined };
    }
    if (page.length < REPLAY_PAGE) break;
  }
  return deps.hub.subscribeFeed(tag, cursor, { event: (entry) => sink.event(entry, false), error: (err) => sink.error(err) });
}

/** Entries read per XRANGE of a replay. */
const REPLAY_PAGE = 100;
