import { KeyCorrupted, TaskCorrupted, TaskGone } from './corrupted.js';
import { eventRange, type Entry } from './event-reads.js';
import { wireEvent, type WireEvent } from './events.js';
import { FeedStore, wireFeedEntry } from './feed-store.js';
import { eventsKey, feedKey, keyIn, taskKey } from './keys.js';
import type { Layout, Partition } from './layout.js';
import type { Redis } from './redis.js';

/**
 * A stream the hub reads for its watchers: a task's events or a feed. The hub shares one blocking
 * XREAD over all of them; this says how each one's entries decode and how a watcher that starts
 * behind catches up.
 */
export interface StreamSource {
  /** The stream's key: the hub reads each key once, whatever the number of its watchers. */
  readonly key: string;
  /** Its partition: the hub reads each partition's streams together, on a connection of their own. */
  readonly partition: Partition;
  /** What log lines about the stream name: `{ taskId }` or `{ feed }` (its tag, or `*` for all tasks). */
  readonly about: Record<string, string>;
  /** A feed may be trimmed under a reader (checkLive); a task's events never are. */
  readonly trimmed: boolean;
  wire(id: string, fields: string[]): WireEvent;
  /** Entries in (afterId, upTo]; a feed rejects with FeedGap when some after afterId were trimmed. */
  range(redis: Redis, afterId: string, upTo: string): Promise<Entry[]>;
  /** After a live read of `count` entries from `cursor` came back full: rejects with FeedGap (feeds). */
  checkLive(redis: Redis, cursor: string): Promise<void>;
  /** What ends this stream's watchers when its key holds `type` instead of a stream. */
  corrupted(type: string): Error;
  /**
   * The keys whose loss or corruption ends the stream's watchers, checked now and then (see
   * auditStreams): a task's hash and events. None for a feed, which may be absent.
   */
  readonly vital: readonly string[];
  /** Given the TYPE of each vital key, in order: what ends the watchers (TaskGone, TaskCorrupted), or undefined. */
  audit(types: readonly string[]): Error | undefined;
}

export function taskSource(layout: Layout, taskId: string): StreamSource {
  const partition = layout.of(taskId);
  const key = keyIn(partition, eventsKey(taskId));
  const hash = keyIn(partition, taskKey(taskId));
  return {
    key,
    partition,
    about: { taskId },
    trimmed: false,
    wire: (id, fields) => wireEvent(taskId, id, fields),
    range: (redis, afterId, upTo) => eventRange(redis, taskId, afterId, upTo),
    checkLive: () => Promise.resolve(),
    corrupted: (type) => new TaskCorrupted(taskId, `WRONGTYPE ${key} holds a ${type}, not a stream`),
    vital: [hash, key],
    audit: ([hashType, eventsType]) => {
      if (hashType === 'none' || eventsType === 'none') return new TaskGone(taskId);
      if (hashType !== 'hash') return new TaskCorrupted(taskId, `WRONGTYPE ${hash} holds a ${hashType}, not a hash`);
      if (eventsType !== 'stream') return new TaskCorrupted(taskId, `WRONGTYPE ${key} holds a ${eventsType}, not a stream`);
      return undefined;
    },
  };
}

/** Partition `p`'s part of the all-tasks feed (`tag` undefined) or of one tag's feed. */
export function feedSource(feeds: FeedStore, p: Partition, tag: string | undefined): StreamSource {
  const key = keyIn(p, feedKey(tag));
  return {
    key,
    partition: p,
    about: { feed: tag ?? '*' },
    trimmed: true,
    wire: wireFeedEntry,
    range: (_redis, afterId, upTo) => feeds.range(p, tag, afterId, upTo),
    checkLive: (_redis, cursor) => feeds.checkLive(p, tag, cursor),
    corrupted: (type) => new KeyCorrupted(key, `WRONGTYPE ${key} holds a ${type}, not a stream`),
    vital: [],
    audit: () => undefined,
  };
}

/**
 * One blocking XREAD over `keys`, each after its cursor (same order), on `reader` (a blocking
 * reader's connection): at most `count` entries per stream, waiting at most `blockMs`. Returns the
 * streams that had entries; [] when the wait ran out.
 */
export async function readStreams(
  reader: Redis,
  keys: string[],
  cursors: string[],
  count: number,
  blockMs: number,
): Promise<{ key: string; entries: Entry[] }[]> {
  const reply = (await reader.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...keys, ...cursors)) as [string, Entry[]][] | null;
  return (reply ?? []).map(([key, entries]) => ({ key, entries }));
}

/** The keys among `keys` that hold something other than a stream (an absent key is fine), with that type. */
export async function wrongTypes(redis: Redis, keys: string[]): Promise<Map<string, string>> {
  const types = await keyTypes(redis, keys);
  return new Map(types.flatMap((type, i) => (type !== 'stream' && type !== 'none' ? [[keys[i]!, type] as const] : [])));
}

/**
 * The sources among `sources` whose vital keys are gone or hold the wrong type, each with what
 * ends its watchers (StreamSource.audit): one pipeline of TYPE, on `redis` (a reader's connection).
 */
export async function auditStreams(redis: Redis, sources: StreamSource[]): Promise<Map<StreamSource, Error>> {
  const audited = sources.filter((s) => s.vital.length > 0);
  const types = await keyTypes(redis, audited.flatMap((s) => s.vital));
  const out = new Map<StreamSource, Error>();
  let at = 0;
  for (const source of audited) {
    const err = source.audit(types.slice(at, (at += source.vital.length)));
    if (err) out.set(source, err);
  }
  return out;
}

/** The TYPE of each key, in order, in one round trip. */
async function keyTypes(redis: Redis, keys: string[]): Promise<string[]> {
  if (keys.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.type(key);
  return ((await pipeline.exec()) ?? []).map(([err, type]) => {
    if (err) throw err;
    return String(type);
  });
}
