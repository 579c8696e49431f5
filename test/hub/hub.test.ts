import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openLiteWs, type LiteWs } from '../../scripts/bench/ws-lite.js';
import type { TaskEvent } from '../../src/wire/events.js';
import { taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { appendEvent } from '../helpers/append.js';
import { startTask } from '../helpers/http.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';
import { eventIds } from '../helpers/task-log.js';

const GATEWAY_CLIENTS = new Set(['taskcast:gateway', 'taskcast:hub-reader']);

/** CLIENT LIST entries of the gateway's own connections, as field maps. */
async function gatewayClients(redis: Redis): Promise<Record<string, string>[]> {
  const list = (await redis.client('LIST')) as string;
  return list
    .trim()
    .split('\n')
    .map((line) => Object.fromEntries(line.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])))
    .filter((c) => GATEWAY_CLIENTS.has(c.name ?? ''));
}

interface Watcher {
  ws: LiteWs;
  events: TaskEvent[];
  closed: Promise<number>;
}

function watch(port: number, taskId: string): Watcher {
  const events: TaskEvent[] = [];
  let done!: (code: number) => void;
  const closed = new Promise<number>((resolve) => (done = resolve));
  const ws = openLiteWs(port, `/ws/task/${taskId}`, { text: (d) => events.push(JSON.parse(d)), close: (code) => done(code) });
  return { ws, events, closed };
}

test('the gateway holds the same Redis connections with 1 and with 1000 watchers, and feeds them all', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  // No worker: the test appends the events itself, when every watcher is in place.
  const gateway = await startGatewayInProcess(t, url);
  const tasks: string[] = [];
  for (let i = 0; i < 100; i++) tasks.push(await startTask(gateway.url));
  const idle = (await gatewayClients(redis)).length;

  const watchers = [watch(gateway.port, tasks[0]!)];
  t.after(() => watchers.forEach((w) => w.ws.destroy()));
  await waitFor(() => watchers[0]!.events.length === 1, 'the first watcher');
  const withOne = await gatewayClients(redis);

  for (let i = 1; i < 1000; i++) watchers.push(watch(gateway.port, tasks[i % tasks.length]!));
  await waitFor(() => watchers.every((w) => w.events.length === 1), '1000 watchers to get PENDING', 60_000);
  const withThousand = await gatewayClients(redis);

  assert.equal(withOne.length, withThousand.length, 'connections with 1 vs 1000 watchers');
  assert.ok(withThousand.length <= 4, `${withThousand.length} connections`);
  assert.ok(withOne.length >= idle);

  const completed = new Map<string, string>();
  for (const taskId of tasks) completed.set(taskId, await appendEvent(redis, taskId, { status: 'COMPLETED', progress: 100, terminal: true }));
  const codes = await withTimeout(Promise.all(watchers.map((w) => w.closed)), 'every watcher closed', 60_000);
  assert.deepEqual(new Set(codes), new Set([1000]));
  for (const [i, w] of watchers.entries()) {
    const taskId = tasks[i % tasks.length]!;
    assert.deepEqual(w.events.map((e) => e.status), ['PENDING', 'COMPLETED']);
    assert.equal(w.events[1]!.id, completed.get(taskId));
  }
  assert.equal((await gatewayClients(redis)).length, withThousand.length);
});

test('a new watcher is served at once while the hub read is parked (HUB_BLOCK_MS = 1 hour)', async (t) => {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  // With a one-hour block, only the CLIENT UNBLOCK wake-up can bring a new stream into the read.
  const gateway = await startGatewayInProcess(t, url, { HUB_BLOCK_MS: '3600000' });
  await startWorkerInProcess(t, url, { SHUTDOWN_GRACE_MS: '0' });

  const quiet = await startTask(gateway.url, { stage_ms: 600_000 });
  const parked = watch(gateway.port, quiet);
  t.after(() => parked.ws.destroy());
  await waitFor(() => parked.events.length === 1, 'the quiet task PENDING');
  await waitFor(
    async () => (await gatewayClients(redis)).some((c) => c.name === 'taskcast:hub-reader' && c.cmd === 'xread' && c.flags?.includes('b')),
    'the hub reader to block on the quiet stream',
  );

  const running = await startTask(gateway.url, { stage_ms: 300 });
  await waitFor(async () => (await redis.hget(taskKey(running), 'status')) === 'STARTED', 'the task to be running');
  const result = await watchTask(wsUrl(gateway.url, running), { timeoutMs: 15_000 });
  assert.equal(result.code, 1000);
  const ids = await eventIds(redis, running);
  assert.deepEqual(result.events.map((e) => e.id), ids);
  assert.deepEqual(result.events.map((e) => e.status), ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED']);
  assert.equal(parked.events.length, 1, 'the quiet watcher got nothing new');
});
