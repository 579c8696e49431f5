import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `npm run bench -- <args>` (as scripts/bench.ts through tsx); resolves with its stdout once it exited 0. */
export async function runBench(args: string[], timeoutMs: number): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const code = await withTimeout(new Promise<number | null>((resolve) => child.once('exit', resolve)), 'the bench run', timeoutMs);
  assert.equal(code, 0, `${out}\n${err}`);
  return out;
}

/**
 * Speed is the benchmark's business, not its tests': they check that every measure runs end to
 * end and reports exact delivery, at this scale, small enough for CI. The measures run in several
 * bench runs, each well within the per-test time limit on a slow machine.
 */
export const SCALED_DOWN = [
  '--quick', '--tasks', '100', '--rounds', '1', '--rate', '50', '--rate-seconds', '1',
  '--watchers', '100', '--fanout-tasks', '4', '--storm', '50', '--storm-tasks', '2',
  '--output-tasks', '4', '--output-chunks', '100', '--replay-events', '500', '--starts', '100',
  '--mux-clients', '10', '--mux-per-client', '3', '--mux-tasks', '5',
];

/** The JSON line of each measure in a bench run's output, by its `measure`. */
export function measures(out: string): Record<string, Record<string, unknown>> {
  const lines = out.split('\n').filter((l) => l.startsWith('{'));
  return Object.fromEntries(lines.map((l) => JSON.parse(l) as { measure: string }).map((r) => [r.measure, r])) as Record<string, Record<string, unknown>>;
}
