import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { withTimeout } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('npm run fuzz: a short seeded run sends every kind of input and reports no violation', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/fuzz.ts', '--seconds', '5', '--seed', '7', '--concurrency', '4'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const code = await withTimeout(new Promise<number | null>((resolve) => child.once('exit', resolve)), 'the fuzz run', 90_000);
  assert.equal(code, 0, out);
  assert.match(out, /seed 7,/);
  const sent = /sent (\d+) HTTP requests, (\d+) raw payloads, (\d+) WebSocket sessions; (\d+) canary tasks/.exec(out);
  assert.ok(sent, out);
  for (const n of sent.slice(1)) assert.ok(Number(n) > 0, out);
  assert.match(out, /OK: no crash, no 5xx, no corrupted events/);
});
