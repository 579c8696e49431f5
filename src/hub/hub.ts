import { FeedGap, FeedStore } from '../store/feed-store.js';
import type { WireEvent } from '../store/events.js';
import { FEED_CURSOR_SEPARATOR, feedCursorParts } from '../wire/feed-cursor.js';
import { layoutOf, type Layout } from '../store/layout.js';
import { feedSource, taskSource, type StreamSource } from '../store/stream-source.js';
import { HubLane, type HubDeps, type Sink, type Subscription } from './hub-lane.js';

export type { HubDeps, Sink, Subscription } from './hub-lane.js';

/**
 * Live delivery for a gateway process: one HubLane per partition of the deployment (one on a
 * single node), each with one blocking read over its watched streams. Its Redis connections are
 * the lanes' readers: their number depends on the partitions, never on watchers or watched tasks.
 */
export class Hub {
  private readonly layout: Layout;
  private readonly lanes: HubLane[];
  private readonly feeds: FeedStore;
  private closed = false;

  constructor(deps: HubDeps) {
    this.layout = layoutOf(deps.redis);
    this.feeds = new FeedStore(deps.redis);
    const { cluster } = this.layout;
    this.lanes = this.layout.partitions.map((p) => new HubLane(deps, p, cluster ? `hub-reader:${p.index}` : 'hub-reader'));
  }

  async start(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.start()));
  }

  get watchedStreams(): number {
    return this.lanes.reduce((sum, lane) => sum + lane.watchedStreams, 0);
  }

  /** Feeds `sink` every event of `taskId` after `fromId` (a canonical id), then live ones. */
  subscribe(taskId: string, fromId: string, sink: Sink): Subscription {
    return this.subscribeTo(taskSource(this.layout, taskId), fromId, sink);
  }

  /**
   * Feeds `sink` every entry of the all-tasks feed (`tag` undefined) or of `tag`'s feed after
   * `fromCursor` (a canonical cursor of this deployment, see src/wire/feed-cursor.ts), then live
   * ones; FeedGap through sink.error when entries after the sink's cursor are trimmed before it got
   * them. On a cluster it follows each partition's feed from its part of the cursor, and gives each
   * entry the cursor that follows it as its id.
   */
  subscribeFeed(tag: string | undefined, fromCursor: string, sink: Sink): Subscription {
    const parts = feedCursorParts(fromCursor);
    if (parts.length === 1) return this.subscribeTo(feedSource(this.feeds, this.layout.partitions[0]!, tag), fromCursor, sink);
    let failed = false;
    const subs: Subscription[] = [];
    const closeAll = () => subs.forEach((s) => s.close());
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      closeAll();
      if (!(err instanceof FeedGap)) return sink.error(err);
      this.feeds.head(tag).then((end) => sink.error(new FeedGap(end)), (e: Error) => sink.error(e));
    };
    for (const p of this.layout.partitions) {
      subs.push(this.subscribeTo(feedSource(this.feeds, p, tag), parts[p.index]!, {
        event: (entry) => {
          if (failed) return;
          parts[p.index] = entry.id;
          sink.event(withId(entry, parts.join(FEED_CURSOR_SEPARATOR)));
        },
        error: fail,
      }));
    }
    return { close: closeAll };
  }

  private subscribeTo(source: StreamSource, fromId: string, sink: Sink): Subscription {
    if (this.closed) throw new Error('hub is closed');
    return this.lanes[source.partition.index]!.follow(source, fromId, sink);
  }

  /** Stops reading and ends every subscription with an error, so watchers resume elsewhere. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.lanes.map((lane) => lane.close()));
  }
}

/** A feed entry (wireFeedEntry: its JSON starts with its id) with another id. */
function withId(entry: WireEvent, id: string): WireEvent {
  const head = `{"id":${JSON.stringify(entry.id)}`;
  return { ...entry, id, json: `{"id":${JSON.stringify(id)}${entry.json.slice(head.length)}` };
}
