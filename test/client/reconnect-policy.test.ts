import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_BACKOFF, backoffDelay, closeOutcome } from '../../src/client/reconnect-policy.js';

const LOW = () => 0;
const HIGH = () => 0.999999;

test('the first retry comes within 1 s, never in a tight loop', () => {
  assert.equal(DEFAULT_BACKOFF.initialMs, 1000);
  assert.equal(backoffDelay(0, LOW), 500);
  assert.equal(backoffDelay(0, HIGH), 1000);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(0, Math.random);
    assert.ok(d >= 500 && d <= 1000, `first delay ${d}`);
  }
});

test('the ceiling doubles per attempt up to the 30 s cap, with jitter in its upper half', () => {
  const ceilings = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
  ceilings.forEach((ceiling, attempt) => {
    assert.equal(backoffDelay(attempt, LOW), ceiling / 2, `attempt ${attempt} low`);
    assert.equal(backoffDelay(attempt, HIGH), ceiling, `attempt ${attempt} high`);
    assert.equal(backoffDelay(attempt, () => 0.5), (ceiling * 3) / 4, `attempt ${attempt} mid`);
  });
  assert.equal(backoffDelay(10_000, HIGH), 30_000, 'no overflow for huge attempt counts');
  assert.equal(backoffDelay(3, HIGH, { initialMs: 100, maxMs: 500 }), 500, 'custom cap');
  assert.equal(backoffDelay(1, LOW, { initialMs: 100, maxMs: 500 }), 100, 'custom initial');
});

test('close codes: 1000 finishes, request/auth/unknown/gone codes fail, everything else retries', () => {
  assert.equal(closeOutcome(1000), 'finished');
  for (const code of [4400, 4401, 4403, 4404, 4409]) assert.equal(closeOutcome(code), 'failed', String(code));
  for (const code of [1001, 1005, 1006, 1011, 1012, 1013, 4008, 4500]) assert.equal(closeOutcome(code), 'retry', String(code));
});
