import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTaskEvent } from '../../src/wire/events.js';
import { parseFeedEntry } from '../../src/wire/feed.js';

const event = { id: '1700000000000-0', task_id: 't1', type: 'progress', status: 'RUNNING', progress: 40, ts: 1700000000000, message: 'half' };
const entry = { id: '1700000000000-3', task_id: 't1', type: 'report', status: 'RUNNING', progress: 40, ts: 1700000000000, tags: ['a'] };

test('parseTaskEvent: a message with a canonical id, a task id, a status and a known type is the event itself', () => {
  const message = { ...event };
  assert.equal(parseTaskEvent(message), message);
  const untyped: Record<string, unknown> = { ...event };
  delete untyped.type;
  assert.equal(parseTaskEvent(untyped)?.type, 'stage', 'no type: a stage event');
});

test('parseTaskEvent: null for an id that is not canonical, no task id or status, or an unknown type', () => {
  for (const bad of [
    { ...event, id: '1700000000000' },
    { ...event, id: 'x-1' },
    { ...event, id: 7 },
    { ...event, task_id: undefined },
    { ...event, status: 3 },
    { ...event, type: 'telemetry' },
  ]) assert.equal(parseTaskEvent({ ...bad }), null, JSON.stringify(bad));
});

test('parseFeedEntry: a message with a canonical feed cursor, a task id, a status and a progress is the entry; tags [] when absent', () => {
  const message = { ...entry };
  assert.equal(parseFeedEntry(message), message);
  assert.equal(parseFeedEntry({ ...entry, id: '1700000000000-3_1700000000001-0' })?.task_id, 't1', 'a cluster cursor');
  const untagged: Record<string, unknown> = { ...entry };
  delete untagged.tags;
  assert.deepEqual(parseFeedEntry(untagged)?.tags, []);
});

test('parseFeedEntry: null for a cursor that is not canonical, or no task id, status or numeric progress', () => {
  for (const bad of [
    { ...entry, id: '1700000000000-3_' },
    { ...entry, id: '01700000000000-3' },
    { ...entry, task_id: 5 },
    { ...entry, status: undefined },
    { ...entry, progress: '40' },
  ]) assert.equal(parseFeedEntry({ ...bad }), null, JSON.stringify(bad));
});
