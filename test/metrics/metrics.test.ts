import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { register as promGlobalRegistry } from 'prom-client';
import { Metrics } from '../../src/metrics/metrics.js';
import { TaskStore } from '../../src/store/task-store.js';
import { COMMANDS_STREAM, WORKER_GROUP, taskKey } from '../../src/store/keys.js';
import { request, startTask } from '../helpers/http.js';
import { scrape } from '../helpers/metrics.js';
import { spawnEntry, startGatewayProc, startWorkerProc, stopProc, type ServiceProc } from '../helpers/processes.js';
import { suiteScope } from '../helpers/scope.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { watchTask, wsUrl } from '../helpers/ws-client.js';

const T = { type: 'reference' };
const UNKNOWN = { type: '(unknown)' };

describe('/metrics of a process running gateway and worker (npm start)', () => {
  let app: ServiceProc;
  let redisUrl: string;
  const scope = suiteScope();

  before(async () => {
    redisUrl = await testRedisUrl();
    const proc = spawnEntry('start', { REDIS_URL: redisUrl, PORT: '0' });
    scope.after(() => stopProc(proc));
    const line = await proc.waitForLog((l) => l.msg === 'gateway listening', 'gateway listening');
    app = Object.assign(proc, { port: Number(line.port), url: `http://127.0.0.1:${line.port}` });
  });

  test('after 3 tasks complete, started/completed totals and histograms grew by exactly 3', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const before = await scrape(app.url);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await startTask(app.url, { stage_ms: 0 }));
    for (const id of ids) {
      await waitFor(async () => (await redis.hget(taskKey(id), 'status')) === 'COMPLETED', `task ${id} completed`);
    }
    // The counters are bumped right after the terminal append: wait for them rather than sleep.
    const afterRun = await waitFor(async () => {
      const s = await scrape(app.url);
      return s.count('taskcast_tasks_completed_total', T) - before.count('taskcast_tasks_completed_total', T) >= 3 ? s : undefined;
    }, 'completed counter');
    const delta = (name: string, labels: Record<string, string> = T) => afterRun.count(name, labels) - before.count(name, labels);
    assert.equal(delta('taskcast_tasks_started_total'), 3);
    assert.equal(delta('taskcast_tasks_completed_total'), 3);
    assert.equal(delta('taskcast_tasks_failed_total'), 0);
    assert.equal(delta('taskcast_task_duration_seconds_count', { type: 'reference', status: 'COMPLETED' }), 3);
    for (const stage of ['STARTED', 'PROCESSING', 'CONCLUDING']) {
      assert.equal(delta('taskcast_stage_duration_seconds_count', { type: 'reference', stage }), 3, stage);
    }
    assert.equal(delta('taskcast_http_request_duration_seconds_count', { method: 'POST', route: '/tasks', status: '202' }), 3);
    for (const id of ids) assert.ok(!afterRun.text.includes(id), 'no task id in any label');
  });

  test('a task that fails counts as failed; a refused start is a 400 request, not a task', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const before = await scrape(app.url);
    // A command naming a type this deployment does not run fails its task (see worker/run-command.ts).
    const store = new TaskStore(redis);
    const { state } = await store.start('retired-type', {});
    await waitFor(async () => (await redis.hget(taskKey(state.task_id), 'status')) === 'FAILED', 'failure');
    const res = await request(`${app.url}/tasks`, { body: { type: 'nope' } });
    assert.equal(res.status, 400);
    const now = await waitFor(async () => {
      const s = await scrape(app.url);
      return s.count('taskcast_tasks_failed_total', UNKNOWN) > before.count('taskcast_tasks_failed_total', UNKNOWN) ? s : undefined;
    }, 'failed counter');
    assert.equal(now.count('taskcast_tasks_failed_total', UNKNOWN) - before.count('taskcast_tasks_failed_total', UNKNOWN), 1);
    const http400 = { method: 'POST', route: '/tasks', status: '400' };
    assert.equal(
      now.count('taskcast_http_request_duration_seconds_count', http400) -
        before.count('taskcast_http_request_duration_seconds_count', http400),
      1,
    );
    assert.equal(now.get('taskcast_tasks_started_total', { type: 'nope' }), undefined, 'a refused type is no label');
    assert.ok(!now.text.includes('retired-type'), 'labels only carry registered task types');
  });

  test('replayed and live deliveries, the delivery latency and the open-connection gauge', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const ws = { transport: 'ws' };
    const done = await startTask(app.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(done), 'status')) === 'COMPLETED', 'completion');

    const s0 = await scrape(app.url);
    const replay = await watchTask(wsUrl(app.url, done));
    assert.equal(replay.events.length, 5);
    const s1 = await waitFor(async () => {
      const s = await scrape(app.url);
      return s.get('taskcast_open_connections', ws) === 0 ? s : undefined;
    }, 'the socket to be counted closed');
    assert.equal(s1.count('taskcast_events_delivered_total', ws) - s0.count('taskcast_events_delivered_total', ws), 5);
    assert.equal(s1.count('taskcast_events_replayed_total', ws) - s0.count('taskcast_events_replayed_total', ws), 5);
    assert.equal(
      s1.count('taskcast_event_delivery_latency_seconds_count', ws) - s0.count('taskcast_event_delivery_latency_seconds_count', ws),
      0,
      'replayed events have no delivery latency',
    );

    const live = await startTask(app.url, { stage_ms: 400 });
    let open: number | undefined;
    let streams: number | undefined;
    const watching = watchTask(wsUrl(app.url, live), {
      onEvent: (e) => {
        if (e.status !== 'STARTED') return;
        void scrape(app.url).then((s) => {
          open = s.get('taskcast_open_connections', ws);
          streams = s.get('taskcast_hub_streams');
        });
      },
    });
    const result = await watching;
    assert.equal(result.events.length, 5);
    assert.equal(open, 1, 'one socket open while watching');
    assert.equal(streams, 1, "the task's stream in the hub's read while watched");
    const s2 = await waitFor(async () => {
      const s = await scrape(app.url);
      return s.get('taskcast_open_connections', ws) === 0 ? s : undefined;
    }, 'the socket to be counted closed');
    const delivered = s2.count('taskcast_events_delivered_total', ws) - s1.count('taskcast_events_delivered_total', ws);
    const replayed = s2.count('taskcast_events_replayed_total', ws) - s1.count('taskcast_events_replayed_total', ws);
    const timed =
      s2.count('taskcast_event_delivery_latency_seconds_count', ws) - s1.count('taskcast_event_delivery_latency_seconds_count', ws);
    assert.equal(delivered, 5);
    assert.equal(s2.get('taskcast_hub_streams'), 0, 'the stream left the read after COMPLETED');
    assert.ok(replayed >= 1, 'PENDING predates the watch');
    assert.ok(timed >= 1, 'COMPLETED came live, 1.6 s after the start');
    assert.equal(replayed + timed, 5);
  });

  test('Node process metrics, prefixed', async () => {
    const s = await scrape(app.url);
    assert.ok((s.get('taskcast_process_cpu_seconds_total') ?? -1) >= 0);
    assert.ok((s.get('taskcast_nodejs_heap_size_used_bytes') ?? 0) > 0);
    assert.ok((s.get('taskcast_process_resident_memory_bytes') ?? 0) > 0);
    for (const [key] of s.samples) assert.ok(key.startsWith('taskcast_'), key);
  });
});

describe('queue gauges, collected from Redis on scrape', () => {
  test('pending commands (XPENDING) and consumer-group lag move exactly', async (t) => {
    const redisUrl = await testRedisUrl();
    const redis = await redisFor(t, redisUrl);
    // A gateway without workers: commands queue up.
    const gateway = await startGatewayProc(t, redisUrl);
    const labels = { stream: COMMANDS_STREAM, group: WORKER_GROUP };
    // The gateway creates the group at start.
    let s = await scrape(gateway.url);
    assert.equal(s.get('taskcast_pending_commands', labels), 0);
    assert.equal(s.get('taskcast_consumer_group_lag', labels), 0);

    await startTask(gateway.url, { stage_ms: 0 });
    await startTask(gateway.url, { stage_ms: 0 });
    s = await scrape(gateway.url);
    assert.equal(s.get('taskcast_pending_commands', labels), 0);
    assert.equal(s.get('taskcast_consumer_group_lag', labels), 2);

    await redis.xreadgroup('GROUP', WORKER_GROUP, 'test-consumer', 'COUNT', 1, 'STREAMS', COMMANDS_STREAM, '>');
    s = await scrape(gateway.url);
    assert.equal(s.get('taskcast_pending_commands', labels), 1);
    assert.equal(s.get('taskcast_consumer_group_lag', labels), 1);
  });
});

describe('Metrics object', () => {
  test("uses a registry of its own, never prom-client's global one", async () => {
    const metrics = new Metrics();
    metrics.taskStarted('reference');
    assert.equal((await promGlobalRegistry.getMetricsAsJSON()).length, 0);
    const text = (await metrics.text()).body;
    assert.match(text, /^taskcast_tasks_started_total\{type="reference"\} 1$/m);
    assert.doesNotMatch(text, /^taskcast_pending_commands\{/m, 'no Redis to read from: no sample, rather than a false 0');
    metrics.registry.clear();
  });
});

describe('separate processes: the worker serves its metrics on HEALTH_PORT', () => {
  test('tasks counted where they happen: started on the gateway, completed on the worker, cancelled on the gateway', async (t) => {
    const redisUrl = await testRedisUrl();
    const redis = await redisFor(t, redisUrl);
    const gateway = await startGatewayProc(t, redisUrl);
    // Cancelled before any worker exists: the gateway records CANCELLED itself.
    const cancelled = await startTask(gateway.url, { stage_ms: 0 });
    assert.equal((await request(`${gateway.url}/tasks/${cancelled}/cancel`, { method: 'POST' })).status, 202);
    let g = await scrape(gateway.url);
    assert.equal(g.get('taskcast_tasks_cancelled_total', T), 1);
    assert.equal(g.get('taskcast_task_duration_seconds_count', { type: 'reference', status: 'CANCELLED' }), 1);

    const worker = await startWorkerProc(t, redisUrl, { HEALTH_PORT: '0' });
    const health = await worker.waitForLog((l) => l.msg === 'health listening', 'health listening');
    const workerUrl = `http://127.0.0.1:${health.port}`;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await startTask(gateway.url, { stage_ms: 0 }));
    for (const id of ids) {
      await waitFor(async () => (await redis.hget(taskKey(id), 'status')) === 'COMPLETED', `task ${id} completed`);
    }
    const w = await waitFor(async () => {
      const s = await scrape(workerUrl);
      return s.count('taskcast_tasks_completed_total', T) >= 3 ? s : undefined;
    }, 'the worker to count 3 completions');
    assert.equal(w.get('taskcast_tasks_completed_total', T), 3);
    assert.equal(w.get('taskcast_task_duration_seconds_count', { type: 'reference', status: 'COMPLETED' }), 3);
    assert.equal(w.get('taskcast_stage_duration_seconds_count', { type: 'reference', stage: 'PROCESSING' }), 3);
    assert.equal(w.get('taskcast_tasks_started_total', T), undefined, 'starts are counted by the gateway');
    assert.ok((w.get('taskcast_process_resident_memory_bytes') ?? 0) > 0);
    g = await scrape(gateway.url);
    assert.equal(g.get('taskcast_tasks_started_total', T), 4);
    assert.equal(g.get('taskcast_tasks_completed_total', T), undefined, 'completions are counted by the worker');
  });

  test('SSE watchers: open connections, delivered and replayed events by transport', async (t) => {
    const redisUrl = await testRedisUrl();
    const redis = await redisFor(t, redisUrl);
    const gateway = await startGatewayProc(t, redisUrl);
    await startWorkerProc(t, redisUrl, { HEALTH_PORT: '0' });
    const id = await startTask(gateway.url, { stage_ms: 0 });
    await waitFor(async () => (await redis.hget(taskKey(id), 'status')) === 'COMPLETED', 'completion');
    const sse = { transport: 'sse' };
    const res = await fetch(`${gateway.url}/sse/task/${id}`);
    assert.equal((await res.text()).split('\n\n').filter((f) => f.startsWith('id: ')).length, 5);
    const s = await waitFor(async () => {
      const now = await scrape(gateway.url);
      return now.get('taskcast_open_connections', sse) === 0 ? now : undefined;
    }, 'the SSE stream to be counted closed');
    assert.equal(s.get('taskcast_events_delivered_total', sse), 5);
    assert.equal(s.get('taskcast_events_replayed_total', sse), 5);
    assert.equal(s.get('taskcast_events_delivered_total', { transport: 'ws' }), undefined);
  });
});
