import { setTimeout as delay } from 'node:timers/promises';

/** waitFor's longest pause between checks, ms. */
const MAX_INTERVAL_MS = 50;

/**
 * Re-checks `check` until it returns a truthy value, `intervalMs` after the first check and each
 * pause half again as long as the one before, up to MAX_INTERVAL_MS (or `intervalMs` if longer):
 * a wait ends at most 40 ms later than with checks every 10 ms, and a long one costs its test's
 * processes and Redis a fifth of the checks. Fails after `timeoutMs` with `what` and the last
 * error `check` threw.
 */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<NonNullable<T>> {
  const longest = Math.max(intervalMs, MAX_INTERVAL_MS);
  let pause = intervalMs;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await delay(pause);
    pause = Math.min(longest, pause * 1.5);
  }
}

/** Resolves or rejects as `promise` does, or rejects after `timeoutMs` naming `what`. */
export function withTimeout<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Lets `n` event-loop turns pass (setImmediate each), to show that nothing happens meanwhile. */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** A one-shot signal, e.g. "the first event arrived": `fire` settles `fired`; later calls do nothing. */
export function oneShot(): { fired: Promise<void>; fire(): void } {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fired, fire: () => fire() };
}
