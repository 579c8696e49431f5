import { parseEventId } from '../wire/event-id.js';
import { parseFeedCursor } from '../wire/feed-cursor.js';
import { subjectKey, type MuxSubject } from '../wire/mux.js';
import type { FinalState, WatchState } from './task-watcher.js';

/**
 * One subscription TaskWatchers drives over its connection (a TaskWatch or a FeedFollow): its
 * cursor, its state and the server's view of it. The cursor only moves forward.
 */
export abstract class MuxSubscription {
  /** Resolves with the final state. */
  readonly done: Promise<FinalState>;
  /** @internal Its key on the connection (subjectKey). */
  readonly key: string;
  /** @internal The subscription as the server holds it on the current connection. */
  sub: 'none' | 'subscribing' | 'active' = 'none';
  /** @internal Subscription retries since it was last live. */
  attempt = 0;
  /** @internal A resubscribe scheduled after a retryable `ended`. */
  timer: ReturnType<typeof setTimeout> | undefined;
  protected cursor: string | undefined;
  private current: WatchState = { state: 'connecting', attempt: 0 };
  private resolveDone!: (state: FinalState) => void;

  constructor(
    /** @internal What the subscribe messages name. */
    readonly subject: MuxSubject,
    /** Resume after this id (canonical, or undefined). */
    lastEventId: string | undefined,
    /** @internal Its own token; undefined: the connection's. */
    readonly token: string | undefined,
    private readonly onState: ((state: WatchState) => void) | undefined,
  ) {
    this.key = subjectKey(subject);
    this.cursor = lastEventId;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get state(): WatchState {
    return this.current;
  }

  /** The id of the last event or entry delivered (or the one given to resume after). */
  get lastEventId(): string | undefined {
    return this.cursor;
  }

  get isFinal(): boolean {
    const s = this.current.state;
    return s === 'finished' || s === 'failed' || s === 'closed';
  }

  /** Stops this subscription (unsubscribes); the connection stays for the others. */
  abstract close(): Promise<FinalState>;

  /** @internal */
  setState(state: WatchState): void {
    if (this.isFinal) return;
    this.current = state;
    this.onState?.(state);
    if (this.isFinal) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.resolveDone(state as FinalState);
    }
  }
}

/** A lastEventId option as a canonical id; throws when it is malformed. */
export function checkedCursor(lastEventId: string | undefined): string | undefined {
  if (lastEventId === undefined || lastEventId === '') return undefined;
  const id = parseEventId(lastEventId);
  if (id === null) throw new Error(`invalid lastEventId ${JSON.stringify(lastEventId)}`);
  return id;
}

/** A feed's lastEventId option as a canonical cursor (see src/wire/feed-cursor.ts); throws when it is malformed. */
export function checkedFeedCursor(lastEventId: string | undefined): string | undefined {
  if (lastEventId === undefined || lastEventId === '') return undefined;
  const cursor = parseFeedCursor(lastEventId);
  if (cursor === null) throw new Error(`invalid lastEventId ${JSON.stringify(lastEventId)}`);
  return cursor;
}
