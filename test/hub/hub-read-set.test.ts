import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hub } from '../../src/hub/hub.js';
import { createLogger } from '../../src/logger.js';
import type { WireEvent } from '../../src/store/events.js';
import { eventsKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { appendEvent } from '../helpers/append.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const logger = createLogger('silent', 'test');

function sink() {
  const events: WireEvent[] = [];
  const errors: Error[] = [];
  return { events, errors, event: (e: WireEvent) => events.push(e), error: (err: Error) => errors.push(err) };
}

/** The keys of every XREAD the server runs from now on, seen through MONITOR. */
async function xreadKeys(t: { after(fn: () => unknown): void }, redis: Redis): Promise<string[][]> {
  const seen: string[][] = [];
  const monitor = await redis.monitor();
  t.after(() => monitor.disconnect());
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() !== 'xread') return;
    const at = args.findIndex((a) => a.toUpperCase() === 'STREAMS');
    const rest = args.slice(at + 1);
    seen.push(rest.slice(0, rest.length / 2));
  });
  return seen;
}

test('watchers of one task share its read; streams leave the read set when unwatched or ended', async (t) => {
  const redis = await redisFor(t, await testRedisUrl());
  const hub = new Hub({ redis, logger });
  await hub.start();
  t.after(() => hub.close());
  const reads = await xreadKeys(t, redis);
  const store = new TaskStore(redis);
  const a = (await store.start('reference', {})).state;
  const b = (await store.start('reference', {})).state;

  const [a1, a2, b1] = [sink(), sink(), sink()];
  const subA1 = hub.subscribe(a.task_id, a.last_event_id, a1);
  const subA2 = hub.subscribe(a.task_id, a.last_event_id, a2);
  hub.subscribe(b.task_id, b.last_event_id, b1);
  assert.equal(hub.watchedStreams, 2);
  const both = await waitFor(() => reads.find((keys) => keys.includes(eventsKey(a.task_id)) && keys.includes(eventsKey(b.task_id))), 'a read of both streams');
  assert.deepEqual([...both].sort(), [eventsKey(a.task_id), eventsKey(b.task_id)].sort(), 'each stream read once, however many watchers');

  const started = await appendEvent(redis, a.task_id, { status: 'STARTED', progress: 25 });
  await waitFor(() => a1.events.length === 1 && a2.events.length === 1, 'both watchers of a to get STARTED');
  assert.deepEqual([a1.events[0]!.id, a2.events[0]!.id], [started, started]);

  subA1.close();
  assert.equal(hub.watchedStreams, 2, 'a still has a watcher');
  subA2.close();
  assert.equal(hub.watchedStreams, 1, 'a left the read set with its last watcher');

  const completed = await appendEvent(redis, b.task_id, { status: 'COMPLETED', progress: 100, terminal: true });
  await waitFor(() => b1.events.length === 1, 'b to deliver COMPLETED');
  assert.equal(b1.events[0]!.id, completed);
  assert.equal(hub.watchedStreams, 0, 'b left the read set after its terminal event');

  const count = reads.length;
  await appendEvent(redis, a.task_id, { status: 'PROCESSING', progress: 50 });
  const c = (await store.start('reference', {})).state;
  hub.subscribe(c.task_id, c.last_event_id, sink());
  const next = await waitFor(() => reads.slice(count).find((keys) => keys.includes(eventsKey(c.task_id))), 'a read of c');
  assert.deepEqual(next, [eventsKey(c.task_id)], 'neither a nor b is read any more');
  assert.equal(a2.events.length, 1, 'an unsubscribed watcher gets nothing more');
  assert.deepEqual([...a1.errors, ...a2.errors, ...b1.errors], []);
});
