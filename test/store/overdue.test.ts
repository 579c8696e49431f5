import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { Overdue } from '../../src/store/overdue.js';
import { waitFor } from '../helpers/wait.js';

interface Line {
  level: number;
  msg: string;
  waited_ms?: number;
}

const INFO = 30;
const WARN = 40;

function overdue(afterMs: number): { watch: Overdue; lines: Line[] } {
  const lines: Line[] = [];
  const logger = createLogger('debug', 'test', { pretty: false, destination: { write: (text: string) => void lines.push(JSON.parse(text) as Line) } });
  return { watch: new Overdue(() => logger, 'read', afterMs), lines };
}

test('a call under way past afterMs is warned once, with how long it waited; its end then says so', async () => {
  const { watch, lines } = overdue(40);
  watch.begin();
  watch.check();
  assert.equal(lines.length, 0, 'not before afterMs');
  await waitFor(() => (watch.check(), lines.length > 0), 'the warning');
  for (let i = 0; i < 5; i++) watch.check();
  assert.deepEqual(lines.map((l) => [l.level, l.msg]), [[WARN, 'read is still waiting on Redis']]);
  assert.ok(Number(lines[0]!.waited_ms) >= 40);
  watch.end();
  assert.deepEqual(lines.map((l) => [l.level, l.msg]), [[WARN, 'read is still waiting on Redis'], [INFO, "read got Redis's answer"]]);
  assert.ok(Number(lines[1]!.waited_ms) >= Number(lines[0]!.waited_ms));
});

test('a call that ends in time logs nothing, and each call is judged from its own begin', async () => {
  const { watch, lines } = overdue(40);
  watch.begin();
  watch.check();
  watch.end();
  assert.equal(lines.length, 0, 'in time: no warning, no answer line');
  watch.begin();
  await waitFor(() => (watch.check(), lines.length > 0), 'an overdue call to be warned');
  watch.end();
  assert.equal(lines.length, 2);
  watch.begin();
  watch.check();
  watch.end();
  assert.equal(lines.length, 2, 'the next call is judged from its own begin: no warning, no answer line');
});
