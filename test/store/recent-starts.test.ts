import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentStarts } from '../../src/store/recent-starts.js';

test('an entry is trusted for its window only, then pruned', () => {
  const recent = new RecentStarts(1000);
  recent.add('a', '1-0', 0);
  recent.add('b', '2-0', 500);
  assert.equal(recent.firstEventId('a', 999), '1-0');
  assert.equal(recent.firstEventId('a', 1000), undefined, 'the window is exclusive');
  assert.equal(recent.firstEventId('b', 1000), '2-0');
  assert.equal(recent.firstEventId('c', 0), undefined, 'never started here');
  recent.add('c', '3-0', 1200);
  assert.equal(recent.size, 2, 'a was pruned by the next add');
});

test('at most maxEntries are kept: the oldest goes first', () => {
  const recent = new RecentStarts(60_000, 3);
  for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) recent.add(id, `${i}-0`, i);
  assert.equal(recent.size, 3);
  assert.equal(recent.firstEventId('a', 10), undefined);
  assert.deepEqual(['b', 'c', 'd'].map((id) => recent.firstEventId(id, 10)), ['1-0', '2-0', '3-0']);
});
