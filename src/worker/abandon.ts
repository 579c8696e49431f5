/**
 * A handler's promise that the run can stop waiting for: it settles as `handler` does, or, once
 * `signal` is aborted, rejects with the abort reason after `graceMs(reason)` ms if the handler has
 * not settled by then. `onAbandon` is told then, and `onLateSettle` once the abandoned handler
 * finally settles (its outcome no longer counts).
 */
export function abandonable<T>(
  handler: Promise<T>,
  signal: AbortSignal,
  options: {
    graceMs(reason: unknown): number;
    onAbandon(reason: unknown, graceMs: number): void;
    onLateSettle(err: unknown): void;
  },
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const settle = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      const reason: unknown = signal.reason;
      const graceMs = options.graceMs(reason);
      timer = setTimeout(() => {
        settle();
        handler.then(() => options.onLateSettle(undefined), (err: unknown) => options.onLateSettle(err));
        options.onAbandon(reason, graceMs);
        reject(reason);
      }, graceMs);
    };
    handler.then(
      (value) => {
        settle();
        resolve(value);
      },
      (err: unknown) => {
        settle();
        reject(err);
      },
    );
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
