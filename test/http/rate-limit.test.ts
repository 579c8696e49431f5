import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError } from '../../src/errors.js';
import { RateLimiter } from '../../src/http/rate-limit.js';

function retryAfter(limiter: RateLimiter, key: string): string | undefined {
  try {
    limiter.take(key);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'RATE_LIMITED');
    assert.equal(err.status, 429);
    return err.headers['Retry-After'];
  }
}

test('a burst, then refusals with Retry-After until the bucket refills; keys are independent', () => {
  let now = 0;
  const limiter = new RateLimiter({ burst: 3, refillPerS: 2, now: () => now });
  for (let i = 0; i < 3; i++) assert.equal(retryAfter(limiter, 'a'), undefined, `start ${i}`);
  assert.equal(retryAfter(limiter, 'a'), '1');
  assert.equal(retryAfter(limiter, 'b'), undefined, 'another key has its own bucket');
  now += 499;
  assert.equal(retryAfter(limiter, 'a'), '1', 'not yet one token back');
  now += 1;
  assert.equal(retryAfter(limiter, 'a'), undefined, 'one token back after 500 ms at 2/s');
  assert.equal(retryAfter(limiter, 'a'), '1');
  now += 60_000;
  for (let i = 0; i < 3; i++) assert.equal(retryAfter(limiter, 'a'), undefined, 'refilled to the burst, not beyond');
  assert.equal(retryAfter(limiter, 'a'), '1');
});

test('Retry-After is the wait for the next token, rounded up to whole seconds', () => {
  let now = 0;
  const limiter = new RateLimiter({ burst: 1, refillPerS: 0.25, now: () => now });
  limiter.take('a');
  assert.equal(retryAfter(limiter, 'a'), '4');
  now += 1500;
  assert.equal(retryAfter(limiter, 'a'), '3', '2.5 s left');
  now += 2500;
  assert.equal(retryAfter(limiter, 'a'), undefined);
});

test('memory stays bounded: idle buckets go first, then the least recently used', () => {
  let now = 0;
  const limiter = new RateLimiter({ burst: 2, refillPerS: 1, maxKeys: 10, now: () => now });
  for (let i = 0; i < 10; i++) limiter.take(`k${i}`);
  assert.equal(limiter.keys, 10);
  now += 10_000;
  limiter.take('fresh');
  assert.equal(limiter.keys, 1, 'every refilled bucket was dropped');
  for (let i = 0; i < 1000; i++) limiter.take(`flood${i}`);
  assert.ok(limiter.keys <= 10, `keys ${limiter.keys}`);
  limiter.take('flood999');
  assert.equal(retryAfter(limiter, 'flood999'), '1', 'the most recent key kept its state');
});
