/**
 * Coalesces the calls made in one event-loop turn into one batch (a group commit): callers each
 * get their own result, while Redis sees one script call instead of one per caller. A batch is
 * sent after the current turn's I/O callbacks (setImmediate), or at once when it holds
 * `maxItems`. There is no timer to clear: a pending batch is always sent.
 */
export class Batcher<I, R> {
  private queue: { item: I; resolve(r: R): void; reject(err: unknown): void }[] = [];
  private scheduled = false;

  /** `send` returns one result per item, in order; an Error result rejects that item alone. */
  constructor(
    private readonly send: (items: I[]) => Promise<(R | Error)[]>,
    private readonly maxItems = 64,
  ) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.maxItems) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.send(batch.map((b) => b.item)).then(
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
    );
  }
}
