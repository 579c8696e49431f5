import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { COMMANDS_STREAM, TASKS_INDEX, WORKER_GROUP, eventsKey, taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { TaskWrites } from '../../src/store/task-writes.js';
import { createRegistry } from '../../src/tasks/builtin/index.js';
import { ensureGroup } from '../../src/store/consumer-group.js';
import { Worker } from '../../src/worker/worker.js';
import { item } from '../helpers/append.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const config = loadConfig({ CLAIM_IDLE_MS: '300', STAGE_MS: '0', SHUTDOWN_GRACE_MS: '2000' });
const logger = createLogger('silent', 'test');

async function startWorker(t: { after(fn: () => unknown): void }, redis: Redis): Promise<Worker> {
  const worker = new Worker({ redis, logger, config, registry: createRegistry(config) });
  await worker.start();
  t.after(() => worker.close());
  return worker;
}

const statuses = async (redis: Redis, id: string) =>
  (await redis.xrange(eventsKey(id), '-', '+')).map(([, f]) => f[f.indexOf('status') + 1]);
/** The log as `type:status` per event. */
const typed = async (redis: Redis, id: string) =>
  (await redis.xrange(eventsKey(id), '-', '+')).map(([, f]) => `${f[f.indexOf('type') + 1]}:${f[f.indexOf('status') + 1]}`);

/** Appends one event as a given lease would, through the real script. */
function append(redis: Redis, id: string, lease: string, step: number, status: string, progress: number) {
  const writes = new TaskWrites(redis, { consumer: 'test', ttlS: 60, maxDeliveries: 5 });
  return writes.append(item(id, lease, { step, status, progress }));
}

/** Takes the task's lease as the consumer holding its command, through the real script. */
function claim(redis: Redis, id: string, commandId: string, consumer: string, lease: string) {
  return new TaskWrites(redis, { consumer, ttlS: 60, maxDeliveries: 5 }).claim({ taskId: id, lease, commandId });
}

test('runs a task to COMPLETED and acks its command', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  await startWorker(t, redis);
  const { state } = await new TaskStore(redis).start('reference', { stage_ms: 0 });
  await waitFor(async () => (await redis.hget(taskKey(state.task_id), 'status')) === 'COMPLETED', 'completion');
  assert.deepEqual(await statuses(redis, state.task_id), ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED']);
  assert.equal(((await redis.xpending(COMMANDS_STREAM, WORKER_GROUP)) as [number])[0], 0);
});

test('reclaims a dead consumer\'s command, resumes after its last stage, and fences the dead lease', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  await ensureGroup(redis);
  const { state, commandId } = await new TaskStore(redis).start('reference', { stage_ms: 150 });
  const id = state.task_id;

  // A worker that read the command, recorded STARTED, then died without acking.
  await redis.xreadgroup('GROUP', WORKER_GROUP, 'dead-consumer', 'COUNT', 1, 'STREAMS', COMMANDS_STREAM, '>');
  assert.deepEqual(await claim(redis, id, commandId, 'dead-consumer', 'dead-lease'), ['OK', '0', '1']);
  assert.equal((await append(redis, id, 'dead-lease', 1, 'STARTED', 25))[0], 'OK');

  await startWorker(t, redis);
  await waitFor(async () => (await statuses(redis, id)).includes('PROCESSING'), 'the reclaimed run to record a stage');
  assert.deepEqual(await append(redis, id, 'dead-lease', 3, 'CONCLUDING', 75), ['FENCED']);

  await waitFor(async () => (await redis.hget(taskKey(id), 'status')) === 'COMPLETED', 'completion');
  // The takeover is recorded as a restart event, with the status the task had then.
  assert.deepEqual(await typed(redis, id), [
    'stage:PENDING', 'stage:STARTED', 'restart:STARTED', 'stage:PROCESSING', 'stage:CONCLUDING', 'stage:COMPLETED',
  ]);
  assert.equal(((await redis.xpending(COMMANDS_STREAM, WORKER_GROUP)) as [number])[0], 0);
  assert.deepEqual(await append(redis, id, 'dead-lease', 4, 'X', 0), ['TERMINAL']);
});

test('a stage already recorded is never appended twice', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  await ensureGroup(redis);
  const { state, commandId } = await new TaskStore(redis).start('reference', {});
  await redis.xreadgroup('GROUP', WORKER_GROUP, 'c', 'COUNT', 1, 'STREAMS', COMMANDS_STREAM, '>');
  assert.equal((await claim(redis, state.task_id, commandId, 'c', 'L'))[0], 'OK');
  assert.equal((await append(redis, state.task_id, 'L', 1, 'STARTED', 25))[0], 'OK');
  assert.deepEqual(await append(redis, state.task_id, 'L', 1, 'STARTED', 25), ['OK', 'DUPLICATE']);
  assert.deepEqual(await statuses(redis, state.task_id), ['PENDING', 'STARTED']);
});

test('its periodic maintenance prunes index entries older than TASK_TTL_S', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis, { ttlS: config.TASK_TTL_S });
  const now = Date.now();
  const ancient = (await store.start('reference', { stage_ms: 0 }, now - config.TASK_TTL_S * 1000 - 1000)).state.task_id;
  const recent = (await store.start('reference', { stage_ms: 0 }, now - 1000)).state.task_id;
  await startWorker(t, redis);
  await waitFor(async () => (await redis.zscore(TASKS_INDEX, ancient)) === null, 'the old entry to be pruned');
  assert.notEqual(await redis.zscore(TASKS_INDEX, recent), null);
});

test('its maintenance removes the consumers of workers that are gone, not its own', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  await ensureGroup(redis);
  await redis.xgroup('CREATECONSUMER', COMMANDS_STREAM, WORKER_GROUP, 'crashed-worker');
  const pruning = loadConfig({ CLAIM_IDLE_MS: '300', STAGE_MS: '0', CONSUMER_PRUNE_IDLE_MS: '10000' });
  const worker = new Worker({ redis, logger, config: pruning, registry: createRegistry(pruning) });
  await worker.start();
  t.after(() => worker.close());
  // Redis creates a consumer when it first reads something: give this worker a command.
  const { state } = await new TaskStore(redis).start('reference', { stage_ms: 0 });
  await waitFor(async () => (await redis.hget(taskKey(state.task_id), 'status')) === 'COMPLETED', 'the task to complete');
  const names = async () =>
    ((await redis.xinfo('CONSUMERS', COMMANDS_STREAM, WORKER_GROUP)) as string[][]).map((c) => c[c.indexOf('name') + 1]);
  assert.deepEqual((await names()).sort(), ['crashed-worker', worker.consumer].sort());
  await waitFor(async () => !(await names()).includes('crashed-worker'), 'the idle consumer to be removed', 20_000);
  assert.deepEqual(await names(), [worker.consumer]);
});

test('close() interrupts the blocking read and returns', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const worker = await startWorker(t, redis);
  await worker.close();
  await worker.close();
});
