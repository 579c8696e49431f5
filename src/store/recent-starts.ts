/**
 * The tasks this process created in the last few seconds, with their first event id. A watch
 * that a client opens right after its start (the usual flow: POST, then watch) needs no replay
 * read to learn that the task exists and that its resume point is in range: the hub's read from
 * that point is the replay. Local to one process; other gateways read as usual.
 *
 * Safe because a task's keys live at least TASK_TTL_S after its start (they expire TASK_TTL_S
 * after its terminal event), and entries are kept for less than that.
 */
export class RecentStarts {
  /** Insertion order is start order, so expired entries are always at the front. */
  private readonly entries = new Map<string, { firstEventId: string; at: number }>();

  /**
   * `windowMs`: how long an entry is trusted, capped below the task TTL by the caller.
   * `maxEntries` bounds memory under any start rate (about 150 bytes an entry).
   */
  constructor(
    private readonly windowMs: number,
    private readonly maxEntries = 100_000,
  ) {}

  add(taskId: string, firstEventId: string, nowMs = Date.now()): void {
    this.prune(nowMs);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(taskId, { firstEventId, at: nowMs });
  }

  /** The first event id of a task started here within the window, else undefined. */
  firstEventId(taskId: string, nowMs = Date.now()): string | undefined {
    const entry = this.entries.get(taskId);
    return entry && nowMs - entry.at < this.windowMs ? entry.firstEventId : undefined;
  }

  get size(): number {
    return this.entries.size;
  }

  private prune(nowMs: number): void {
    for (const [taskId, entry] of this.entries) {
      if (nowMs - entry.at < this.windowMs) return;
      this.entries.delete(taskId);
    }
  }
}
