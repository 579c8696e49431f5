import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkCommand } from '../../src/worker/check-command.js';
import { backoffMs } from '../../src/worker/retry.js';
import { createRegistry } from '../../src/tasks/builtin/index.js';

describe('task-run pure parts', () => {
  test('backoff doubles per retry, is capped, and jitters within the upper half', () => {
    for (let i = 0; i < 200; i++) {
      const second = backoffMs(2, 100, 10_000);
      assert.ok(second >= 50 && second <= 100, `attempt 2: ${second}`);
      const third = backoffMs(3, 100, 10_000);
      assert.ok(third >= 100 && third <= 200, `attempt 3: ${third}`);
      const capped = backoffMs(20, 100, 1000);
      assert.ok(capped >= 500 && capped <= 1000, `capped: ${capped}`);
    }
  });

  test('checkCommand names the reason a command is poison', () => {
    const registry = createRegistry({ STAGE_MS: 10 });
    const id = '0b7c2f3e-8a4d-4c36-9d8e-2f1a6b5c4d3e';
    const reason = (fields: Record<string, string>) => {
      const checked = checkCommand(registry, { taskId: fields.task_id, type: fields.type, params: fields.params });
      return 'reason' in checked ? checked.reason : undefined;
    };
    assert.equal(reason({}), 'malformed command: no task_id');
    assert.equal(reason({ task_id: 'x' }), 'malformed command: task_id is not a UUID');
    assert.equal(reason({ task_id: id, type: 'nope' }), 'unknown task type "nope"');
    assert.equal(reason({ task_id: id }), 'unknown task type null');
    assert.equal(reason({ task_id: id, type: 'reference', params: '{' }), 'malformed command: params is not JSON');
    assert.equal(reason({ task_id: id, type: 'reference', params: '{"stage_ms":"x"}' }), 'invalid params: stage_ms: Invalid input: expected number, received string');
    const ok = checkCommand(registry, { taskId: id, type: 'reference', params: '{}' });
    assert.ok(!('reason' in ok));
    assert.deepEqual(ok.params, { stage_ms: 10 });
  });
});
