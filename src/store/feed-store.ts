import { compareEventIds, ZERO_ID } from '../wire/event-id.js';
import type { Entry } from './event-reads.js';
import type { WireEvent } from './events.js';
import { FEED_CURSOR_SEPARATOR, feedCursorParts, parseFeedCursor } from '../wire/feed-cursor.js';
import { keyCorruptedOr } from './corrupted.js';
import { feedKey, keyIn } from './keys.js';
import { layoutOf, type Layout, type Partition } from './layout.js';
import type { Redis } from './redis.js';

/**
 * Entries after a feed cursor are gone: trimmed by the feed's bound (FEED_MAXLEN), or the cursor
 * is beyond the feed's last id (the feed was reset, e.g. a new Redis). The client reloads the task
 * list and continues from `continueFrom`, the feed's last id when this was found; the error table
 * maps it to FEED_CURSOR_EXPIRED.
 */
export class FeedGap extends Error {
  constructor(readonly continueFrom: string) {
    super(`feed cursor expired; continue from ${continueFrom}`);
    this.name = 'FeedGap';
  }
}

const NUMERIC = new Set(['progress', 'ts']);

/**
 * The wire form of a feed entry (a FeedEntry of src/wire/feed.ts), its JSON written straight from
 * the fields. Feed entries are never terminal, and travel as unnamed SSE messages ('stage').
 */
export function wireFeedEntry(id: string, fields: string[]): WireEvent {
  let body = '';
  let tags = '[]';
  let ts = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name === 'tags') tags = tagsJson(value);
    else if (NUMERIC.has(name)) {
      body += `,"${name}":${JSON.stringify(Number(value))}`;
      if (name === 'ts') ts = Number(value);
    } else body += `,${JSON.stringify(name)}:${JSON.stringify(value)}`;
  }
  return { id, type: 'stage', terminal: false, ts, json: `{"id":${JSON.stringify(id)}${body},"tags":${tags}}` };
}

/** The tags as the scripts copied them from the task hash; anything but an array of strings is []. */
function tagsJson(text: string): string {
  try {
    const tags: unknown = JSON.parse(text);
    return Array.isArray(tags) && tags.every((t) => typeof t === 'string') ? text : '[]';
  } catch {
    return '[]';
  }
}

interface FeedInfo {
  lastId: string;
  /** The greatest id trimmed (or deleted) so far; 0-0 when none. */
  maxDeleted: string;
}

/** XINFO STREAM's reply (flat name, value list), or the error of an absent feed. */
function feedInfo(key: string, err: Error | null, reply: unknown): FeedInfo {
  if (err) {
    if (/no such key/i.test(err.message)) return { lastId: ZERO_ID, maxDeleted: ZERO_ID };
    throw keyCorruptedOr(err, key);
  }
  const flat = reply as unknown[];
  const info: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) info[String(flat[i])] = flat[i + 1];
  return { lastId: String(info['last-generated-id'] ?? ZERO_ID), maxDeleted: String(info['max-deleted-entry-id'] ?? ZERO_ID) };
}

/** Throws FeedGap unless every entry after `cursor` is still in the feed. */
function assertContiguous(info: FeedInfo, cursor: string): void {
  if (compareEventIds(info.maxDeleted, cursor) > 0 || compareEventIds(cursor, info.lastId) > 0) throw new FeedGap(info.lastId);
}

/**
 * Reads of the feeds (`tasks:feed`, `tasks:feed:tag:<tag>`; `tag` undefined is the all-tasks
 * feed; on a cluster one of each per partition, read together under one cursor, see
 * src/wire/feed-cursor.ts). Each read checks, in the same MULTI, that nothing after its cursor was
 * trimmed, so a reader is never handed a silent gap: it gets FeedGap instead. A MULTI goes to the
 * master, so a replica that is behind a cursor cannot answer FeedGap for it.
 */
export class FeedStore {
  readonly layout: Layout;

  constructor(private readonly redis: Redis) {
    this.layout = layoutOf(redis);
  }

  /**
   * A client-supplied cursor in canonical form, or null when it is none of this deployment's feeds
   * (one id per partition); `0` is the start of every partition's feed.
   */
  checkCursor(raw: string): string | null {
    const cursor = parseFeedCursor(raw);
    const count = this.layout.partitions.length;
    if (cursor === ZERO_ID) return Array<string>(count).fill(ZERO_ID).join(FEED_CURSOR_SEPARATOR);
    return cursor !== null && feedCursorParts(cursor).length === count ? cursor : null;
  }

  /** The feed's end (0-0 per partition with no entry yet): where a feed opened without a cursor starts. */
  async head(tag: string | undefined): Promise<string> {
    const ids = await Promise.all(this.layout.partitions.map(async (p) => {
      const key = keyIn(p, feedKey(tag));
      const [[err, reply]] = (await this.redis.multi().xinfo('STREAM', key).exec()) as [[Error | null, unknown]];
      return feedInfo(key, err, reply).lastId;
    }));
    return ids.join(FEED_CURSOR_SEPARATOR);
  }

  /**
   * At most `count` entries after `cursor` (a canonical cursor of this deployment), in wire form,
   * each with the cursor that follows it as its id; FeedGap (continue from the feed's end) when
   * entries after the cursor were trimmed.
   */
  async page(tag: string | undefined, cursor: string, count: number): Promise<WireEvent[]> {
    const parts = feedCursorParts(cursor);
    let pages: Entry[][];
    try {
      pages = await Promise.all(this.layout.partitions.map((p) => this.range(p, tag, parts[p.index]!, '+', count)));
    } catch (err) {
      if (err instanceof FeedGap && parts.length > 1) throw new FeedGap(await this.head(tag));
      throw err;
    }
    const out: WireEvent[] = [];
    pages.forEach((entries, i) => {
      for (const [id, fields] of entries) {
        if (out.length === count) return;
        parts[i] = id;
        out.push(wireFeedEntry(parts.join(FEED_CURSOR_SEPARATOR), fields));
      }
    });
    return out;
  }

  /** The entries of partition `p`'s feed in (afterId, upTo], at most `count` when given; FeedGap as above. */
  async range(p: Partition, tag: string | undefined, afterId: string, upTo: string, count?: number): Promise<Entry[]> {
    const key = keyIn(p, feedKey(tag));
    const multi = this.redis.multi().xinfo('STREAM', key);
    if (count === undefined) multi.xrange(key, `(${afterId}`, upTo);
    else multi.xrange(key, `(${afterId}`, upTo, 'COUNT', count);
    const [[infoErr, info], [rangeErr, entries]] = (await multi.exec()) as [[Error | null, unknown], [Error | null, unknown]];
    assertContiguous(feedInfo(key, infoErr, info), afterId);
    if (rangeErr) throw keyCorruptedOr(rangeErr, key);
    return entries as Entry[];
  }

  /**
   * For a live read of partition `p`'s feed that came back full (it may have fallen behind the
   * trimming): FeedGap when entries after `cursor` have been trimmed. It may also answer FeedGap
   * when the trimming only reached entries that read returned: a reload the client did not
   * strictly need, never a gap.
   */
  async checkLive(p: Partition, tag: string | undefined, cursor: string): Promise<void> {
    const key = keyIn(p, feedKey(tag));
    const [[err, reply]] = (await this.redis.multi().xinfo('STREAM', key).exec()) as [[Error | null, unknown]];
    assertContiguous(feedInfo(key, err, reply), cursor);
  }
}
