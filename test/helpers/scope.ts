import { after } from 'node:test';
import type { Scope } from './processes.js';

/**
 * Cleanup for a whole describe block: call it in the block's body; what is registered runs in
 * reverse order after the block's last test (like t.after() for one test).
 */
export function suiteScope(): Scope {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  return { after: (fn) => void cleanups.push(fn) };
}
