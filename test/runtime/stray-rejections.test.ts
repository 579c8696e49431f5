import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TaskStore } from '../../src/store/task-store.js';
import { startWorkerProc, testTasksEnv } from '../helpers/processes.js';
import { redisFor } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { assertEventLog, waitForEnd } from '../helpers/task-log.js';

test('a worker process whose task handler leaves a rejected promise unhandled logs it and goes on', async (t) => {
  const server = await startRedisServer();
  t.after(() => server.close());
  const worker = await startWorkerProc(t, server.url, testTasksEnv());
  const redis = await redisFor(t, server.url);
  const store = new TaskStore(redis);

  const stray = (await store.start('stray', {})).state.task_id;
  assert.equal(await waitForEnd(redis, stray), 'COMPLETED');
  const line = await worker.waitForLog((l) => String(l.msg).startsWith('a promise rejected and nothing handled it'), 'the stray rejection logged');
  assert.equal(line.level, 50);
  assert.match(JSON.stringify(line.err), /stray rejection of the stray task/);
  await assertEventLog(redis, stray, ['PENDING', 'STARTED', 'COMPLETED']);

  // The same process runs the next task.
  const next = (await store.start('reference', { stage_ms: 0 })).state.task_id;
  assert.equal(await waitForEnd(redis, next), 'COMPLETED');
  assert.equal(worker.child.exitCode, null, 'the worker is still running');
});
