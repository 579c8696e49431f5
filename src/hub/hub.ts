import { assertFeedsServed } from '../store/feed-store.js';
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
  private closed = false;

  constructor(deps: HubDeps) {
    this.layout = layoutOf(deps.redis);
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
   * `fromId` (a canonical id), then live ones; FeedGap through sink.error when entries after the
   * sink's cursor are trimmed before it got them. FeedsUnavailable on a cluster.
   */
  subscribeFeed(tag: string | undefined, fromId: string, sink: Sink): Subscription {
    assertFeedsServed(this.layout);
    return this.subscribeTo(feedSource(tag), fromId, sink);
  }

  private subscribeTo(source: StreamSource, fromId: string, sink: Sink): Subscription {
    if (this.closed) throw new Error('hub is closed');
    return this.lanes[source.partition.index]!.subscribe(source, fromId, sink);
  }

  /** Stops reading and ends every subscription with an error, so watchers resume elsewhere. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.lanes.map((lane) => lane.close()));
  }
}
