import { feedCursorCovers, parseFeedCursor } from '../wire/feed-cursor.js';
import type { FeedEntry } from '../wire/feed.js';
import type { MuxFeedEntry } from '../wire/mux.js';
import { MuxSubscription, checkedFeedCursor } from './mux-subscription.js';
import type { FinalState, WatchState } from './task-watcher.js';

/** A feed followed over TaskWatchers' connection: FeedWatcher's options without the connection's. */
export interface FollowOptions {
  /** Follow this tag's feed; undefined: every task's. */
  tag?: string | undefined;
  /** Resume after this entry id; undefined: live from now (the gateway names the start). */
  lastEventId?: string | undefined;
  /** With auth on: an API token or a feed token of this feed; overrides the connection's `token`. */
  token?: string | undefined;
  onEntry?: ((entry: FeedEntry) => void) | undefined;
  /**
   * The feed no longer held every entry after the cursor (`ended` 4410): entries were missed.
   * Reload the task list; the follow goes on from `continueFrom` at once.
   */
  onReset?: ((continueFrom: string) => void) | undefined;
  /** As a task watch's states; a feed is never `finished`. */
  onState?: ((state: WatchState) => void) | undefined;
}

/**
 * A feed followed over the shared connection (TaskWatchers.follow): every entry once, in feed
 * order, resumed from its own cursor (the last entry, or the id its `subscribed` named) after
 * reconnects; on 4410 it reports the reset and goes on from the id the gateway gave.
 */
export class FeedFollow extends MuxSubscription {
  /** @internal Created by TaskWatchers.follow. */
  constructor(
    readonly feed: string,
    private readonly options: FollowOptions,
    private readonly owner: { unfollow(feed: string): void },
  ) {
    super({ feed }, checkedFeedCursor(options.lastEventId), options.token, options.onState);
  }

  close(): Promise<FinalState> {
    this.owner.unfollow(this.feed);
    return this.done;
  }

  /** @internal Delivers an entry unless it is not after the cursor. */
  deliver(message: MuxFeedEntry): void {
    if (this.cursor !== undefined && feedCursorCovers(this.cursor, message.id)) return;
    this.cursor = message.id;
    const { feed: _, ...entry } = message;
    this.options.onEntry?.(entry);
  }

  /** @internal The `subscribed` of a subscription without a cursor named where it goes on from. */
  mark(id: string): void {
    if (this.cursor === undefined) this.cursor = parseFeedCursor(id) ?? undefined;
  }

  /** @internal Entries were missed (4410): go on from `continueFrom`. */
  reset(continueFrom: string): void {
    this.cursor = continueFrom;
    this.options.onReset?.(continueFrom);
  }
}
