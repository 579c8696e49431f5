import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { FailureStreak } from '../../src/store/failure-streak.js';
import { redisTrouble } from '../../src/store/unavailable.js';

interface Line {
  level: number;
  msg: string;
  err?: unknown;
  failures?: number;
  attempt?: number;
}

test('FailureStreak: a bug is an error each time and no part of a streak; an outage is warned once without a stack, then debug; ok() starts a new streak', () => {
  const lines: Line[] = [];
  const logger = createLogger('debug', 'test', { pretty: false, destination: { write: (text: string) => void lines.push(JSON.parse(text) as Line) } });
  const streak = new FailureStreak(() => logger, 'op failed');
  // Redis's own reply words, as its errors carry them (the server turning replica ends a blocked read with UNBLOCKED).
  const outage = new Error('READONLY You can\'t write against a read only replica.');
  const roleChange = new Error('UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)');
  assert.equal(redisTrouble(roleChange), 'refused');
  streak.failed(new TypeError('a bug'));
  streak.failed(outage, { attempt: 0 });
  streak.failed(roleChange);
  streak.failed(new TypeError('a bug'));
  streak.failed(outage);
  streak.ok();
  streak.failed(outage);
  assert.deepEqual(lines.map((l) => [l.level, l.failures]), [[50, undefined], [40, 1], [20, 2], [50, undefined], [20, 3], [40, 1]]);
  assert.equal(lines[1]!.attempt, 0, 'the caller\'s fields are kept');
  assert.equal(typeof lines[1]!.err, 'string');
  assert.match(JSON.stringify(lines[0]!.err), /TypeError[\s\S]*stack/);
});
