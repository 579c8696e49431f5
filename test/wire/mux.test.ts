import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBatchParam, parseServerFrame } from '../../src/wire/mux.js';

const TASK = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';
const event = { id: '1-0', task_id: TASK, type: 'stage', status: 'PENDING', progress: 0, ts: 1 };
const subscribed = { type: 'subscribed', task: TASK };
const entry = { feed: 'all', id: '2-0', task_id: TASK, status: 'PENDING', progress: 0, tags: [] };

test('parseServerFrame: one message per frame, or a batch (a JSON array of them) in its order', () => {
  assert.deepEqual(parseServerFrame(JSON.stringify(subscribed)), [{ control: subscribed }]);
  assert.deepEqual(parseServerFrame(JSON.stringify([subscribed, event, entry])), [{ control: subscribed }, { event }, { entry }]);
  assert.deepEqual(parseServerFrame(` ${JSON.stringify(event)}`), [{ event }]);
});

test('parseServerFrame: null for a frame that is not text or JSON, an empty batch, or a batch with any malformed message', () => {
  for (const bad of [
    Buffer.from(JSON.stringify(event)), '[', '[]', '[[]]', '[1]', 'null', JSON.stringify([event, { type: 'subscribed' }]),
    JSON.stringify([subscribed, null]), JSON.stringify([{ ...event, type: 'unknown' }]),
  ]) {
    assert.equal(parseServerFrame(bad), null, String(bad));
  }
});

test('parseBatchParam: 1 and true ask for batches; absent, 0 and false do not; anything else is refused (null)', () => {
  assert.deepEqual(['1', 'true', null, '0', 'false', '', 'yes', 'TRUE'].map(parseBatchParam), [true, true, false, false, false, null, null, null]);
});
