import { after, type TestContext } from 'node:test';
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

/**
 * Cleanup for one test, in reverse order of registration (t.after() hooks run in the order they
 * were added): what was created first, such as a directory, is removed last.
 */
export function testScope(t: TestContext): Scope {
  const cleanups: (() => unknown)[] = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  return { after: (fn) => void cleanups.push(fn) };
}
