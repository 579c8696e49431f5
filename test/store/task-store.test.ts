import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMANDS_STREAM, eventsKey, taskKey } from '../../src/store/keys.js';
import { TaskStore } from '../../src/store/task-store.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';

test('start writes the hash, the first event and the command together', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis);
  const { state, commandId } = await store.start('reference', { stage_ms: 10 }, 1_700_000_000_000);

  assert.deepEqual(await redis.hgetall(taskKey(state.task_id)), {
    status: 'PENDING',
    progress: '0',
    last_event_id: state.last_event_id,
    created_at: '1700000000000',
    updated_at: '1700000000000',
    type: 'reference',
    params: '{"stage_ms":10}',
    step: '0',
    lease: '',
    priority: 'normal',
    queue: COMMANDS_STREAM,
    command_id: commandId,
    // The time of its last feed entry (PENDING), for the feed's progress throttle.
    feed_at: '1700000000000',
  });
  assert.deepEqual(await redis.xrange(eventsKey(state.task_id), '-', '+'), [
    [state.last_event_id, ['type', 'stage', 'status', 'PENDING', 'progress', '0', 'ts', '1700000000000']],
  ]);
  assert.deepEqual(await redis.xrange(COMMANDS_STREAM, '-', '+'), [
    [commandId, ['task_id', state.task_id, 'type', 'reference', 'params', '{"stage_ms":10}']],
  ]);
});

test('no observer ever sees a task without its command or a command without its task', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const observer = await redisFor(t, url);
  const store = new TaskStore(redis);
  let stop = false;
  let snapshots = 0;
  const observe = (async () => {
    while (!stop) {
      // MULTI makes the three reads one snapshot of the keyspace.
      const [[, hashes], [, streams], [, commands]] = (await observer
        .multi()
        .keys('task:*[^s]')
        .keys('task:*:events')
        .xrange(COMMANDS_STREAM, '-', '+')
        .exec()) as [[null, string[]], [null, string[]], [null, [string, string[]][]]];
      const fromHashes = hashes.filter((k) => !k.endsWith(':events')).map((k) => k.slice(5)).sort();
      const fromStreams = streams.map((k) => k.slice(5, -7)).sort();
      const fromCommands = commands.map(([, f]) => f[1]!).sort();
      assert.deepEqual(fromStreams, fromHashes);
      assert.deepEqual(fromCommands, fromHashes);
      snapshots += 1;
    }
  })();
  await Promise.all(Array.from({ length: 300 }, () => store.start('reference', {})));
  stop = true;
  await observe;
  assert.ok(snapshots > 0);
  assert.equal(await redis.xlen(COMMANDS_STREAM), 300);
});

test('events(after) is exclusive and head() reports status and last id', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis);
  const { state } = await store.start('reference', {});
  assert.deepEqual(await store.head(state.task_id), { status: 'PENDING', lastEventId: state.last_event_id });
  assert.deepEqual(await store.events(state.task_id, { after: state.last_event_id }), []);
  assert.equal((await store.events(state.task_id, { after: '0-0' })).length, 1);
  assert.equal(await store.head('00000000-0000-4000-8000-000000000000'), null);
  assert.equal(await store.get('00000000-0000-4000-8000-000000000000'), null);
});

test('starts made while a batch is on its way go together in the next script call', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis);
  await store.start('reference', {});
  const calls = async () => Number(/^cmdstat_evalsha:calls=(\d+)/m.exec(await redis.info('commandstats'))?.[1] ?? 0);
  const before = await calls();
  const started = await Promise.all(Array.from({ length: 5 }, (_, i) => store.start('reference', { stage_ms: i })));
  assert.equal((await calls()) - before, 1, 'five starts of one turn, one script call');
  const commands = await redis.xrange(COMMANDS_STREAM, '-', '+');
  assert.deepEqual(commands.slice(1).map(([id]) => id), started.map((s) => s.commandId));
  for (const [i, s] of started.entries()) {
    assert.deepEqual(await redis.hmget(taskKey(s.state.task_id), 'status', 'params', 'last_event_id'), ['PENDING', `{"stage_ms":${i}}`, s.state.last_event_id]);
  }
});

test('one group commit with one idempotency key many times starts one task; a different request in it is rejected', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const store = new TaskStore(redis, { ttlS: 3600, idempotencyTtlS: 600 });
  const calls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
  const idem = (key: string, fingerprint: string) => ({ idempotency: { scope: 'global', key, fingerprint } });
  await store.start('reference', {}, Date.now(), idem('warm-up', 'f0'));
  const before = await calls();
  const results = await Promise.allSettled([
    ...Array.from({ length: 20 }, () => store.start('reference', {}, Date.now(), idem('k', 'f1'))),
    store.start('reference', {}, Date.now(), idem('k', 'f2')),
    store.start('reference', {}, Date.now(), idem('other', 'f1')),
  ]);
  // The first item goes alone, the rest in one call while it is on its way.
  assert.ok((await calls()) - before <= 2, `script calls ${(await calls()) - before}`);
  const ok = results.slice(0, 20).map((r) => (r.status === 'fulfilled' ? r.value : assert.fail(String(r.reason))));
  assert.equal(ok.filter((r) => !r.replayed).length, 1);
  assert.equal(new Set(ok.map((r) => r.state.task_id)).size, 1);
  const reused = results[20]!;
  assert.equal(reused.status, 'rejected');
  assert.deepEqual([reused.reason.name, reused.reason.reason, reused.reason.taskId], ['IdempotencyConflict', 'reused', ok[0]!.state.task_id]);
  assert.equal(results[21]!.status, 'fulfilled');
  assert.equal(await redis.xlen(COMMANDS_STREAM), 3);
  assert.equal(await redis.get('tasks:idem:global:k'), `f1:${ok[0]!.state.task_id}`);
});
