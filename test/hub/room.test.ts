import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { overLimit, waitForRoom } from '../../src/hub/room.js';

/** An outbox over plain emitters, its backlog and liveness set by the test. */
function outbox(buffered: number) {
  const state = { buffered, gone: false, stalls: 0 };
  const drains = new EventEmitter();
  const closes = new EventEmitter();
  return { state, drains, closes, out: { buffered: () => state.buffered, gone: () => state.gone, drains, closes } };
}

test('no wait while the backlog is within the limit; a gone watcher stops the replay at once', async () => {
  const o = outbox(100);
  assert.equal(waitForRoom(o.out, 100, 1000, () => o.state.stalls++), undefined);
  o.state.gone = true;
  assert.equal(await waitForRoom(o.out, 100, 1000, () => o.state.stalls++), false);
});

test('over the limit: resolves true once a drain brings the backlog down, and leaves no listener behind', async () => {
  const o = outbox(5000);
  const wait = waitForRoom(o.out, 100, 60_000, () => o.state.stalls++);
  assert.ok(wait);
  o.drains.emit('drain');
  o.state.buffered = 0;
  o.drains.emit('drain');
  assert.equal(await wait, true);
  assert.deepEqual([o.drains.listenerCount('drain'), o.closes.listenerCount('close'), o.state.stalls], [0, 0, 0]);
});

test('over the limit: false when the watcher closes, and false after stallMs once onStall has run', async () => {
  const closing = outbox(5000);
  const wait = waitForRoom(closing.out, 100, 60_000, () => closing.state.stalls++);
  closing.closes.emit('close');
  assert.deepEqual([await wait, closing.state.stalls], [false, 0]);

  const stalled = outbox(5000);
  assert.deepEqual([await waitForRoom(stalled.out, 100, 50, () => stalled.state.stalls++), stalled.state.stalls], [false, 1]);
  assert.deepEqual([stalled.drains.listenerCount('drain'), stalled.closes.listenerCount('close')], [0, 0]);
});

test('overLimit: within the limit nothing is flushed; past it the flush decides', () => {
  let buffered = 100;
  let flushes = 0;
  const out = { buffered: () => buffered };
  assert.equal(overLimit(out, 100, () => (flushes += 1)), false);
  assert.equal(flushes, 0, 'a backlog at the limit is not flushed early');
  buffered = 500;
  assert.equal(overLimit(out, 100, () => ((flushes += 1), (buffered = 40))), false, 'the kernel took it');
  buffered = 500;
  assert.equal(overLimit(out, 100, () => ((flushes += 1), (buffered = 300))), true, 'more than the limit stayed unsent');
  assert.equal(flushes, 2);
});
