import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeEvent, wireEvent } from '../../src/store/events.js';

const TASK = '0b7c2f3e-8a4d-4c36-9d8e-2f1a6b5c4d3e';

test('wireEvent writes the same JSON as serializing the decoded event, for every kind of entry', () => {
  const entries: string[][] = [
    ['type', 'stage', 'status', 'PENDING', 'progress', '0', 'ts', '1700000000000'],
    ['status', 'STARTED', 'progress', '25', 'ts', '1700000000001'],
    ['type', 'progress', 'status', 'STARTED', 'progress', '40', 'ts', '2', 'message', 'rows "4" of 10\n'],
    ['type', 'output', 'status', 'STARTED', 'progress', '40', 'ts', '3', 'text', 'token \u00e9\u2028 "q"'],
    ['type', 'output', 'status', 'STARTED', 'progress', '40', 'ts', '4', 'json', '{"row":1,"tags":["a"]}'],
    ['type', 'restart', 'status', 'STARTED', 'progress', '40', 'ts', '5'],
    ['type', 'stage', 'status', 'RETRYING', 'progress', '40', 'ts', '6', 'attempt', '2', 'error', 'boom'],
    ['type', 'stage', 'status', 'COMPLETED', 'progress', '100', 'ts', '7', 'result', '[1,{"a":null}]'],
    ['type', 'output', 'status', 'X', 'progress', '1', 'ts', '8', 'json', 'not json, altered by hand'],
  ];
  entries.forEach((fields, i) => {
    const id = `1700000000000-${i}`;
    const wire = wireEvent(TASK, id, fields);
    assert.equal(wire.json, JSON.stringify(decodeEvent(TASK, id, fields)), `entry ${i}`);
    assert.equal(wire.id, id);
  });
  assert.deepEqual(
    entries.map((f, i) => [wireEvent(TASK, `1-${i}`, f).type, wireEvent(TASK, `1-${i}`, f).terminal]),
    [['stage', false], ['stage', false], ['progress', false], ['output', false], ['output', false],
      ['restart', false], ['stage', false], ['stage', true], ['output', false]],
  );
  assert.equal(wireEvent(TASK, '1-0', entries[7]!).ts, 7);
});
