import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBatchParam, parseFrame, parseJsonObjects } from '../../src/wire/frames.js';

test('parseJsonObjects: the one object of a frame, or a batch (a JSON array of objects) in its order', () => {
  assert.deepEqual(parseJsonObjects('{"a":1}'), [{ a: 1 }]);
  assert.deepEqual(parseJsonObjects(' {"a":1}'), [{ a: 1 }]);
  assert.deepEqual(parseJsonObjects(' [{"a":1}]'), [{ a: 1 }]);
  assert.deepEqual(parseJsonObjects('[{"a":1},{"b":2},{"a":3}]'), [{ a: 1 }, { b: 2 }, { a: 3 }]);
});

test('parseJsonObjects: null for a frame that is binary, not JSON, not an object, an empty batch, or a batch holding anything but objects', () => {
  for (const bad of [Buffer.from('{"a":1}'), '', '{', '[', '[]', '[[]]', '[1]', '[{"a":1},null]', 'null', '"x"', '7']) {
    assert.equal(parseJsonObjects(bad), null, String(bad));
  }
});

test('parseBatchParam: 1 and true ask for batches; absent, 0 and false do not; anything else is refused (null)', () => {
  assert.deepEqual(['1', 'true', null, '0', 'false', '', 'yes', 'TRUE'].map(parseBatchParam), [true, true, false, false, false, null, null, null]);
});

test('parseFrame: each object of a frame as the parser reads it, in order; null when any is not a message', () => {
  const ids = (o: Record<string, unknown>) => (typeof o.id === 'string' ? o.id : null);
  assert.deepEqual(parseFrame('[{"id":"a"},{"id":"b"}]', ids), ['a', 'b']);
  assert.deepEqual(parseFrame('{"id":"a"}', ids), ['a']);
  assert.equal(parseFrame('[{"id":"a"},{"id":2}]', ids), null);
  assert.equal(parseFrame('not json', ids), null);
});
