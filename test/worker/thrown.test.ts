import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERROR_MAX_UNITS, describeThrown, errorText, loggableThrown } from '../../src/worker/thrown.js';

test('describeThrown: an Error\'s message, else String(value), and never a throw', () => {
  const noMessage = Object.defineProperty(new Error('x'), 'message', { get() { throw new Error('no'); } });
  const cases: [unknown, string][] = [
    [new Error('boom'), 'boom'], ['text', 'text'], [null, 'null'], [undefined, 'undefined'], [42, '42'], [Symbol('s'), 'Symbol(s)'],
    [Object.create(null), '[object Object]'], [{ toString() { throw new Error('no'); } }, '[object Object]'],
    [Object.assign(new Error('x'), { message: 7 }), '7'], [noMessage, '[object Error]'],
  ];
  for (const [value, text] of cases) assert.equal(describeThrown(value), text);
});

test('errorText: at most ERROR_MAX_UNITS, cut before a surrogate pair rather than through it', () => {
  assert.equal(errorText(new Error('short')), 'short');
  assert.equal(errorText(new Error('b'.repeat(5000))), 'b'.repeat(ERROR_MAX_UNITS));
  // 'a' then emoji (two units each): unit 999 is the first half of a pair.
  const cut = errorText(new Error(`a${'😀'.repeat(2000)}`));
  assert.equal(cut, `a${'😀'.repeat((ERROR_MAX_UNITS - 2) / 2)}`);
  assert.ok(cut.isWellFormed());
});

test('loggableThrown: an Error that reads cleanly as itself, anything else as text', () => {
  const err = new Error('boom');
  assert.equal(loggableThrown(err), err);
  assert.equal(loggableThrown(Object.create(null)), '[object Object]');
  assert.equal(loggableThrown(Object.assign(new Error('x'), { message: 7 })), '7');
});
