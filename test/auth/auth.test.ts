import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Auth, bearerToken } from '../../src/auth/auth.js';
import { authorizeWatch } from '../../src/auth/watch-auth.js';
import { loadConfig } from '../../src/config.js';
import { AppError } from '../../src/errors.js';

const TASK = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';
const OTHER = '6f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';
const on = { API_TOKENS: ['alpha', 'beta'], TOKEN_SECRET: 's'.repeat(32), WATCH_TOKEN_TTL_S: 60 };

function refusal(fn: () => unknown): { code: string; challenge: string | undefined } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AppError);
    return { code: err.code, challenge: err.headers['WWW-Authenticate'] };
  }
  assert.fail('expected a refusal');
}

test('bearerToken takes exactly one token after the Bearer scheme', () => {
  assert.equal(bearerToken('Bearer abc'), 'abc');
  assert.equal(bearerToken('bearer  abc '), 'abc');
  for (const bad of [undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', 'Bearerabc']) {
    assert.equal(bearerToken(bad), undefined, String(bad));
  }
});

test('auth off: every check passes and starts carry no watch token', () => {
  const auth = new Auth({ API_TOKENS: [], TOKEN_SECRET: undefined, WATCH_TOKEN_TTL_S: 60 });
  assert.equal(auth.enabled, false);
  assert.deepEqual(auth.requireApi(undefined), { kind: 'anonymous' });
  assert.deepEqual(auth.requireWatch(TASK, undefined), { kind: 'anonymous' });
  assert.deepEqual(auth.grantWatch(TASK), {});
  assert.equal(auth.issueWatch(TASK), null);
});

test('issueWatch: a token for one task, expiring WATCH_TOKEN_TTL_S from now, the same a start grants', () => {
  let now = 1_000_500;
  const auth = new Auth(on, () => now);
  const grant = auth.issueWatch(TASK)!;
  assert.equal(grant.expS, 1000 + 60);
  assert.deepEqual(auth.grantWatch(TASK), { watch_token: grant.token });
  assert.deepEqual(auth.requireWatch(TASK, grant.token), { kind: 'watch', taskId: TASK });
  assert.equal(refusal(() => auth.requireWatch(OTHER, grant.token)).code, 'UNAUTHORIZED');
  now = 1_060_000;
  assert.equal(refusal(() => auth.requireWatch(TASK, grant.token)).code, 'UNAUTHORIZED', 'expired');
});

test('auth on: API tokens, watch tokens per task, expiry, and the WWW-Authenticate challenge', () => {
  let now = 1_000_000;
  const auth = new Auth(on, () => now);
  assert.deepEqual(auth.requireApi('beta'), { kind: 'api', index: 1 });
  assert.deepEqual(refusal(() => auth.requireApi(undefined)), { code: 'UNAUTHORIZED', challenge: 'Bearer realm="taskcast"' });
  assert.deepEqual(refusal(() => auth.requireApi('gamma')), {
    code: 'UNAUTHORIZED',
    challenge: 'Bearer realm="taskcast", error="invalid_token"',
  });

  const { watch_token } = auth.grantWatch(TASK);
  assert.ok(watch_token);
  assert.deepEqual(auth.requireWatch(TASK, watch_token), { kind: 'watch', taskId: TASK });
  assert.deepEqual(auth.requireWatch(TASK.toUpperCase(), watch_token), { kind: 'watch', taskId: TASK });
  assert.deepEqual(auth.requireWatch(OTHER, 'alpha'), { kind: 'api', index: 0 });
  assert.equal(refusal(() => auth.requireWatch(OTHER, watch_token)).code, 'UNAUTHORIZED');
  assert.equal(refusal(() => auth.requireApi(watch_token)).code, 'UNAUTHORIZED', 'a watch token cannot start tasks');
  now += 59_000;
  assert.equal(auth.requireWatch(TASK, watch_token).kind, 'watch');
  now += 1_000;
  assert.equal(refusal(() => auth.requireWatch(TASK, watch_token)).code, 'UNAUTHORIZED', 'expired after the TTL');
});

test('authorizeWatch: the header wins, ?token= is the fallback', () => {
  const auth = new Auth(on);
  const { watch_token } = auth.grantWatch(TASK);
  assert.equal(authorizeWatch(auth, { taskId: TASK, authorization: `Bearer ${watch_token}` }).kind, 'watch');
  assert.equal(authorizeWatch(auth, { taskId: TASK, authorization: undefined, queryToken: watch_token }).kind, 'watch');
  assert.equal(authorizeWatch(auth, { taskId: TASK, authorization: 'Basic x', queryToken: 'alpha' }).kind, 'api');
  assert.equal(
    refusal(() => authorizeWatch(auth, { taskId: TASK, authorization: 'Bearer wrong', queryToken: watch_token })).code,
    'UNAUTHORIZED',
  );
  assert.equal(refusal(() => authorizeWatch(auth, { taskId: TASK, authorization: undefined, queryToken: '' })).code, 'UNAUTHORIZED');
});

test('config: API_TOKENS is a comma list and needs a TOKEN_SECRET of 32+ characters', () => {
  assert.deepEqual(loadConfig({}).API_TOKENS, []);
  assert.deepEqual(loadConfig({ API_TOKENS: ' a, ,b ', TOKEN_SECRET: 'x'.repeat(32) }).API_TOKENS, ['a', 'b']);
  assert.throws(() => loadConfig({ API_TOKENS: 'a' }), /TOKEN_SECRET/);
  assert.throws(() => loadConfig({ API_TOKENS: 'a', TOKEN_SECRET: 'short' }), /TOKEN_SECRET/);
  assert.deepEqual(loadConfig({ ALLOWED_ORIGINS: 'https://a.example,https://b.example' }).ALLOWED_ORIGINS, [
    'https://a.example',
    'https://b.example',
  ]);
});
