import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FEED_CURSOR_RE, feedCursorCovers, parseFeedCursor } from '../../src/wire/feed-cursor.js';
import { continueFromReason, feedResetMessage } from '../../src/wire/feed.js';

test('a feed cursor is one entry id (single Redis) or one per partition joined by _ (cluster), canonicalised', () => {
  assert.equal(parseFeedCursor('5'), '5-0');
  assert.equal(parseFeedCursor('5-1_0_7-2'), '5-1_0-0_7-2');
  for (const bad of ['', '_', '5-1_', 'a-1', '5-1__6', '5-1_x']) assert.equal(parseFeedCursor(bad), null, bad);
});

test('feedCursorCovers: an entry is covered when each of its ids is at or before the cursor\'s', () => {
  assert.ok(feedCursorCovers('5-1', '5-1'));
  assert.ok(feedCursorCovers('5-1', '4-9'));
  assert.ok(!feedCursorCovers('5-1', '5-2'));
  assert.ok(feedCursorCovers('5-1_7-0', '5-1_6-0'));
  assert.ok(!feedCursorCovers('5-1_7-0', '5-1_7-1'), 'one partition moved on');
  assert.ok(!feedCursorCovers('5-1_7-0', '5-1'), 'cursors of different shapes');
});

test('the reset reason names the cursor to continue from, a cluster\'s too', () => {
  assert.equal(continueFromReason(feedResetMessage('12-3')), '12-3');
  assert.equal(continueFromReason(feedResetMessage('12-3_0-0_4-1')), '12-3_0-0_4-1');
  assert.equal(continueFromReason('feed interrupted, resume with lastEventId'), null);
});

test('FEED_CURSOR_RE: event ids joined by the separator, nothing else', () => {
  for (const ok of ['1-2', '5', '1-2_3-4', '1-2_3-4_5-6']) assert.match(ok, FEED_CURSOR_RE, ok);
  for (const bad of ['', '_', '1-2_', '_1-2', '1-2__3-4', '1-2,3-4', 'a-1']) assert.doesNotMatch(bad, FEED_CURSOR_RE, bad);
});
