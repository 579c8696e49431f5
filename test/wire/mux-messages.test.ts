import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseServerFrame } from '../../src/wire/mux-messages.js';

const TASK = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';
const event = { id: '1-0', task_id: TASK, type: 'stage', status: 'PENDING', progress: 0, ts: 1 };
const subscribed = { type: 'subscribed', task: TASK };
const entry = { feed: 'all', id: '2-0', task_id: TASK, status: 'PENDING', progress: 0, tags: [] };

test('parseServerFrame: the message of a frame, or each of a batch in its order, as event, feed entry or control', () => {
  assert.deepEqual(parseServerFrame(JSON.stringify(subscribed)), [{ control: subscribed }]);
  assert.deepEqual(parseServerFrame(JSON.stringify([subscribed, event, entry])), [{ control: subscribed }, { event }, { entry }]);
});

test('parseServerFrame: null when the frame, or any message of its batch, is not a server message', () => {
  for (const bad of ['[]', JSON.stringify([event, { type: 'subscribed' }]), JSON.stringify([{ ...event, type: 'unknown' }]), JSON.stringify({ type: 'ended', task: TASK })]) {
    assert.equal(parseServerFrame(bad), null, bad);
  }
});
