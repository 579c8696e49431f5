import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLOSED_PORT, spawnEntry, stopProc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

test('REDIS_URL at a closed port: npm start says every 5 s what it waits for, password redacted', async (t) => {
  const port = CLOSED_PORT;
  const proc = spawnEntry('start', { REDIS_URL: `redis://user:hunter2-secret@127.0.0.1:${port}`, PORT: '0' });
  t.after(() => stopProc(proc));
  const waiting = () => proc.logs.filter((l) => l.msg === 'waiting for Redis');
  await waitFor(() => waiting().length >= 2, 'two "waiting for Redis" lines', 30_000);
  const [first, second] = waiting();
  for (const line of [first!, second!]) {
    assert.equal(line.level, 40, 'warn');
    assert.equal(line.url, `redis://***@127.0.0.1:${port}`);
    assert.match(String(line.err), /ECONNREFUSED/);
  }
  assert.ok(Number(second!.waited_s) - Number(first!.waited_s) >= 4, `${first!.waited_s} s, then ${second!.waited_s} s`);
  assert.ok(!JSON.stringify(proc.logs).includes('hunter2-secret'), 'the password never reaches the log');
});
