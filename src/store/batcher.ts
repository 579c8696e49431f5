/**
 * Group commit: calls made while a batch is on its way to Redis wait and go together in the next
 * batch, so under load Redis sees one script call (and each side one socket write) per round
 * trip instead of one per caller, and when idle a call goes out at once. Callers each get their
 * own result. A batch leaves after the current turn's I/O callbacks (setImmediate), once fewer
 * than `maxInFlight` batches (default 1) await their answer; a batch holds items up to a total
 * `weight` (default 1 per item) of `maxItems` (default 64), and at least one item. There is no
 * timer to clear: pending items are always sent.
 */
export class Batcher<I, R> {
  private queue: { item: I; resolve(r: R): void; reject(err: unknown): void }[] = [];
  private scheduled = false;
  private inFlight = 0;

  /**
   * `send` returns one result per item, in order; an Error result rejects that item alone, and so
   * does a missing one (a short reply).
   */
  constructor(
    private readonly send: (items: I[]) => Promise<(R | Error | undefined)[]>,
    private readonly maxItems = 64,
    private readonly maxInFlight = 1,
    private readonly weight: (item: I) => number = () => 1,
  ) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    let taken = 0;
    for (let total = 0; taken < this.queue.length; taken++) {
      total += this.weight(this.queue[taken]!.item);
      if (total > this.maxItems && taken > 0) break;
    }
    const batch = this.queue.splice(0, taken);
    if (batch.length === 0) return;
    this.inFlight += 1;
    this.send(batch.map((b) => b.item))
      .then(
        (results) => {
          batch.forEach((b, i) => {
            const r = results[i];
            if (r === undefined) b.reject(new Error('batch reply is missing an item'));
            else if (r instanceof Error) b.reject(r);
            else b.resolve(r);
          });
        },
        (err: unknown) => {
          for (const b of batch) b.reject(err);
        },
      )
      .finally(() => {
        this.inFlight -= 1;
        this.schedule();
      });
  }
}
