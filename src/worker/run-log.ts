import type { EventInput, TaskWrites } from '../store/task-writes.js';
import { CancelRequested, LeaseLost, LogRolledBack, TaskEnded, TaskGone } from './stops.js';

type WithoutTs<E> = E extends unknown ? Omit<E, 'ts'> : never;
/** An event as a run makes it; the log numbers and times it. */
export type NewEvent = WithoutTs<EventInput>;

export interface RunLogDeps {
  writes: TaskWrites;
  taskId: string;
  lease: string;
  commandId: string;
  /** Runs a write, retrying while Redis is unavailable; throws once it gives up. */
  retry<T>(call: () => Promise<T>): Promise<T>;
  /** Told once when the log can record nothing more for this run (fenced, task ended, a write failed). */
  onStop(reason: Error): void;
}

/** Most events of one run per append item, which bounds one item's share of a script call. */
const MAX_PER_ITEM = 128;

interface Queued {
  seq: number;
  event: EventInput;
  resolve(id: string | null): void;
  reject(err: Error): void;
}

/**
 * One run's events, recorded in the order the run made them, each exactly once. Events made while
 * an append is on its way go together in the next one (one append item, one script call shared
 * with the worker's other runs). Each event carries the run's sequence number, so a resent append
 * (after a lost reply) records nothing twice. Once a write fails for good, nothing later of the
 * run is recorded either: the log never has a hole.
 */
export class RunLog {
  private seq = 0;
  private queue: Queued[] = [];
  private sending = false;
  private stopped: Error | undefined;

  constructor(private readonly deps: RunLogDeps) {}

  /**
   * Resolves with the event id once recorded, or null when an earlier run or send had recorded
   * it; rejects with CancelRequested (only CANCELLED may be recorded now), LeaseLost, TaskEnded, LogRolledBack,
   * or the error a write failed with.
   */
  write(event: NewEvent): Promise<string | null> {
    if (this.stopped) return Promise.reject(this.stopped);
    // Each call passes a fresh object: stamping it in place saves a copy per event on the output path.
    const full = Object.assign(event, { ts: Date.now() }) as EventInput;
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.queue.push({ seq, event: full, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.sending || this.queue.length === 0) return;
    this.sending = true;
    const batch = this.queue.splice(0, MAX_PER_ITEM);
    void this.send(batch).finally(() => {
      this.sending = false;
      this.pump();
    });
  }

  private async send(batch: Queued[]): Promise<void> {
    const { writes, taskId, lease, commandId } = this.deps;
    let reply;
    try {
      const item = { taskId, lease, commandId, firstSeq: batch[0]!.seq, events: batch.map((q) => q.event) };
      reply = await this.deps.retry(() => writes.append(item));
    } catch (err) {
      return this.stop(batch, err instanceof Error ? err : new Error(String(err)));
    }
    if (reply[0] === 'FENCED') return this.stop(batch, new LeaseLost('lease lost to a newer run'));
    if (reply[0] === 'GAP') return this.stop(batch, new LogRolledBack('the task\'s log lost events of this run'));
    if (reply[0] === 'GONE') return this.stop(batch, new TaskGone('task is gone'));
    if (reply[0] !== 'OK') return this.stop(batch, new TaskEnded(`task is ${reply[0].toLowerCase()}`));
    batch.forEach((q, i) => {
      const result = reply[i + 1];
      if (result === 'DUPLICATE') q.resolve(null);
      else if (result === 'CANCEL') q.reject(new CancelRequested('cancel requested'));
      else if (result === 'TERMINAL' || result === undefined) q.reject(new TaskEnded('task ended'));
      else q.resolve(result);
    });
    if (batch.some((_, i) => reply[i + 1] === 'CANCEL')) this.deps.onStop(new CancelRequested('cancel requested'));
  }

  private stop(batch: Queued[], reason: Error): void {
    this.stopped = reason;
    const all = [...batch, ...this.queue.splice(0)];
    for (const q of all) q.reject(reason);
    this.deps.onStop(reason);
  }
}
