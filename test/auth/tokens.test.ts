import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiTokens, idempotencyScopeOf, signFeedToken, signWatchToken, verifyFeedToken, verifyWatchToken } from '../../src/auth/tokens.js';

const SECRET = 'k'.repeat(32);
const TASK = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';
const OTHER = '6f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';

test('a watch token verifies for its task until it expires, and for nothing else', () => {
  const token = signWatchToken(SECRET, TASK, 1000);
  assert.match(token, /^1000\.[A-Za-z0-9_-]{43}$/);
  assert.equal(verifyWatchToken(SECRET, token, TASK, 999), true);
  assert.equal(verifyWatchToken(SECRET, token, TASK, 1000), false, 'expired at exp');
  assert.equal(verifyWatchToken(SECRET, token, OTHER, 999), false, 'other task');
  assert.equal(verifyWatchToken('x'.repeat(32), token, TASK, 999), false, 'other secret');
  const [, mac] = token.split('.');
  assert.equal(verifyWatchToken(SECRET, `2000.${mac}`, TASK, 999), false, 'extended expiry');
  const flipped = mac!.slice(0, 10) + (mac![10] === 'A' ? 'B' : 'A') + mac!.slice(11);
  assert.equal(verifyWatchToken(SECRET, `1000.${flipped}`, TASK, 999), false, 'tampered mac');
  for (const bad of ['', '.', '1000', '1000.', `.${mac}`, `1000.${mac}=`, `-1.${mac}`, `1e3.${mac}`, `1000.${mac}x`]) {
    assert.equal(verifyWatchToken(SECRET, bad, TASK, 999), false, JSON.stringify(bad));
  }
});

test('a feed token verifies for its feed until it expires; feed and watch tokens never stand in for each other', () => {
  const token = signFeedToken(SECRET, 'team:a', 1000);
  assert.match(token, /^1000\.[A-Za-z0-9_-]{43}$/);
  assert.equal(verifyFeedToken(SECRET, token, 'team:a', 999), true);
  assert.equal(verifyFeedToken(SECRET, token, 'team:a', 1000), false, 'expired at exp');
  for (const other of ['team:b', 'team', 'team:a:1000', 'Team:a', undefined]) assert.equal(verifyFeedToken(SECRET, token, other, 999), false, other);
  assert.equal(verifyFeedToken('x'.repeat(32), token, 'team:a', 999), false, 'other secret');
  const all = signFeedToken(SECRET, undefined, 1000);
  assert.equal(verifyFeedToken(SECRET, all, undefined, 999), true, 'the all-tasks feed');
  for (const tag of ['all', 'feed:all', '*']) assert.equal(verifyFeedToken(SECRET, all, tag, 999), false, tag);
  // A tag named like a task id, and the task: neither token opens the other.
  assert.equal(verifyWatchToken(SECRET, signFeedToken(SECRET, TASK, 1000), TASK, 999), false);
  assert.equal(verifyFeedToken(SECRET, signWatchToken(SECRET, TASK, 1000), TASK, 999), false);
});

test('API tokens match by index, exactly', () => {
  const tokens = new ApiTokens(['alpha', 'beta']);
  assert.equal(tokens.size, 2);
  assert.equal(tokens.match('alpha'), 0);
  assert.equal(tokens.match('beta'), 1);
  for (const bad of ['', 'alph', 'alphaa', 'ALPHA', ' alpha']) assert.equal(tokens.match(bad), -1, bad);
  assert.equal(new ApiTokens([]).match(''), -1);
});

test('idempotency scopes: 22 base64url characters, one per token and secret, naming neither', () => {
  const secret = 's'.repeat(32);
  const a = idempotencyScopeOf(secret, 'token-a');
  assert.match(a, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(idempotencyScopeOf(secret, 'token-a'), a);
  assert.notEqual(idempotencyScopeOf(secret, 'token-b'), a);
  assert.notEqual(idempotencyScopeOf('t'.repeat(32), 'token-a'), a);
  assert.ok(!a.includes('token'));
});
