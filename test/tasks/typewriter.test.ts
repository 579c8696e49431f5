import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { ensureGroup } from '../../src/store/consumer-group.js';
import { TaskStore } from '../../src/store/task-store.js';
import { createRegistry } from '../../src/tasks/builtin/index.js';
import { Worker } from '../../src/worker/worker.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { taskEvents, taskOutput, waitForEnd } from '../helpers/task-log.js';

test('typewriter streams its words with progress messages and returns a result that counts them', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  await ensureGroup(redis);
  const config = loadConfig({ STAGE_MS: '0' });
  const worker = new Worker({ redis, logger: createLogger('silent', 'test'), config, registry: createRegistry(config) });
  await worker.start();
  t.after(() => worker.close());
  const { state } = await new TaskStore(redis).start('typewriter', { words: 30, words_per_s: 1000 });
  assert.equal(await waitForEnd(redis, state.task_id), 'COMPLETED');
  const events = await taskEvents(redis, state.task_id);
  const output = await taskOutput(redis, state.task_id);
  const words = output.text.trim().split(/\s+/);
  assert.equal(words.length, 30);
  assert.equal(output.text.split('\n').length - 1, 3, 'a line every twelve words, and the last one');
  assert.deepEqual(
    events.filter((e) => e.type === 'progress').map((e) => e.message),
    ['10 of 30 words', '20 of 30 words', '30 of 30 words'],
  );
  assert.deepEqual(events.filter((e) => e.type === 'stage').map((e) => e.status), ['PENDING', 'STARTED', 'CONCLUDING', 'COMPLETED']);
  const result = events.at(-1)!.result as { words: number; characters: number; lines: number };
  assert.deepEqual([result.words, result.characters, result.lines], [30, output.text.length, 3]);
});
