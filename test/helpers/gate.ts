import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Scope } from './processes.js';

export interface TaskGate {
  /** The file the `gated` task type (test/fixtures/test-tasks.ts) waits for: its `gate` param. */
  path: string;
  /** Lets every task of this gate, in any process, go on. */
  open(): void;
}

/** A closed gate in a temp dir of its own, removed when `t` ends. */
export function taskGate(t: Scope): TaskGate {
  const dir = mkdtempSync(join(tmpdir(), 'taskcast-gate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'open');
  return { path, open: () => writeFileSync(path, '') };
}
