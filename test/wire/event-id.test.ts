import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareEventIds, parseEventId } from '../../src/wire/event-id.js';

test('parseEventId accepts <ms>-<seq> and <ms>, canonically', () => {
  assert.equal(parseEventId('0'), '0-0');
  assert.equal(parseEventId('0-0'), '0-0');
  assert.equal(parseEventId('1700000000000-3'), '1700000000000-3');
  assert.equal(parseEventId('007-01'), '7-1');
  assert.equal(parseEventId('18446744073709551615-18446744073709551615'), '18446744073709551615-18446744073709551615');
});

test('parseEventId rejects what Redis would reject, and 64-bit overflow', () => {
  for (const bad of ['', 'abc', '$', '+', '-', '>', '*', '1-', '-1', '--', '1-2-3', ' 1', '1 ', '1.5', '0x10',
    '18446744073709551616', '1-18446744073709551616', '123456789012345678901']) {
    assert.equal(parseEventId(bad), null, JSON.stringify(bad));
  }
});

test('compareEventIds orders by ms, then seq, numerically', () => {
  const sorted = ['0-0', '0-1', '9-0', '10-0', '10-2', '10-10', '100-0', '18446744073709551615-0'];
  const shuffled = [...sorted].reverse();
  assert.deepEqual(shuffled.sort(compareEventIds), sorted);
  assert.equal(compareEventIds('5-5', '5-5'), 0);
});
