import { compareEventIds } from '../wire/event-id.js';
import { isTerminal, type Json, type TaskEvent } from '../wire/events.js';
import { TaskOutput, type OutputChange } from '../wire/output.js';
import { MuxSubscription, checkedCursor } from './mux-subscription.js';
import type { FinalState, WatchState } from './task-watcher.js';

/** One task's watch: TaskWatcher's options without the connection's. */
export interface WatchOptions {
  /** Resume after this event id (it and everything before it are never delivered). */
  lastEventId?: string | undefined;
  /** A watch token of this task (or an API token); overrides the connection's `token`. */
  token?: string | undefined;
  onEvent?: ((event: TaskEvent) => void) | undefined;
  /** As TaskWatcher's onOutput: the output rule's changes, after onEvent for the same event. */
  onOutput?: ((change: OutputChange) => void) | undefined;
  onState?: ((state: WatchState) => void) | undefined;
}

/** A running or ended watch of one task over the shared connection. */
export class TaskWatch extends MuxSubscription {
  readonly output = new TaskOutput();
  private finalResult: Json | undefined;

  /** @internal Created by TaskWatchers.watch. */
  constructor(
    readonly taskId: string,
    private readonly options: WatchOptions,
    private readonly owner: { unwatch(taskId: string): void },
  ) {
    super({ task: taskId }, checkedCursor(options.lastEventId), options.token, options.onState);
  }

  /** The COMPLETED event's result, once it has arrived. */
  get result(): Json | undefined {
    return this.finalResult;
  }

  /** Stops this watch (unsubscribes); the connection stays for the others. */
  close(): Promise<FinalState> {
    this.owner.unwatch(this.taskId);
    return this.done;
  }

  /** @internal Delivers an event unless it is not after the last one; true when it was terminal. */
  deliver(event: TaskEvent): boolean {
    if (this.cursor !== undefined && compareEventIds(event.id, this.cursor) <= 0) return false;
    this.cursor = event.id;
    if (event.result !== undefined) this.finalResult = event.result;
    this.options.onEvent?.(event);
    const change = this.output.apply(event);
    if (change) this.options.onOutput?.(change);
    return isTerminal(event);
  }
}
