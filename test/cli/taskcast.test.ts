import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { decodeEvent } from '../../src/store/events.js';
import { type TaskEvent } from '../../src/wire/events.js';
import { eventsKey, taskKey } from '../../src/store/keys.js';
import { closeRedis, type Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { taskcast } from '../helpers/cli.js';
import { startRestartableGateway, type RestartableGateway } from '../helpers/gateway-restart.js';
import { startWorkerProc, type WorkerProc } from '../helpers/processes.js';
import { connectRedis, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';
import { waitFor } from '../helpers/wait.js';

const UNKNOWN = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';

async function xrangeEvents(redis: Redis, taskId: string): Promise<TaskEvent[]> {
  return (await redis.xrange(eventsKey(taskId), '-', '+')).map(([id, fields]) => decodeEvent(taskId, id, fields));
}

const jsonLines = (text: string) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as TaskEvent);

describe('taskcast CLI against a real gateway and worker', () => {
  let gateway: RestartableGateway;
  let worker: WorkerProc;
  let redis: Redis;
  let url: string;
  const scope = suiteScope();

  before(async () => {
    const redisUrl = await testRedisUrl();
    gateway = await startRestartableGateway(scope, redisUrl);
    worker = await startWorkerProc(scope, redisUrl);
    redis = await connectRedis(redisUrl);
    scope.after(() => closeRedis(redis));
    url = gateway.url;
  });

  test('bin/taskcast.js start --watch exits 0 after COMPLETED, one line per event on stderr (stdout: the output alone); TASKCAST_URL is honoured', async () => {
    const run = await taskcast(['start', '--stage-ms', '50', '--watch'], { env: { TASKCAST_URL: url }, bin: true });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '', 'the reference task has no output');
    const taskId = /started ([0-9a-f-]{36})/.exec(run.stderr)?.[1];
    assert.ok(taskId, run.stderr);
    const events = await xrangeEvents(redis, taskId);
    const lines = run.stderr.split('\n').filter((l) => /^\d{4}-/.test(l));
    assert.equal(lines.length, events.length);
    assert.deepEqual(
      lines.map((l) => l.replace(/^\S+ /, '')),
      events.map((e) => `[${'#'.repeat(Math.round(e.progress * 0.3)).padEnd(30, '-')}] ${String(e.progress).padStart(3)}% ${e.status}`),
    );
    assert.match(run.stderr, new RegExp(`${taskId}: COMPLETED`));
    assert.equal(await redis.hget(taskKey(taskId), 'params'), '{"stage_ms":50}');
  });

  test('watch --json prints exactly XRANGE, across a gateway killed and restarted mid-task', async (t) => {
    // The worker is paused until the gateway is back, so the task is still running when the
    // watch's first event kills the gateway, however long the CLI takes to start.
    worker.kill('SIGSTOP');
    t.after(() => worker.kill('SIGCONT'));
    const start = await taskcast(['start', '--url', url, '--params', '{"stage_ms":300}']);
    assert.equal(start.code, 0, start.stderr);
    const taskId = start.stdout.trim();
    let killed: Promise<void> | undefined;
    const watching = taskcast(['watch', taskId, '--json', '--url', url], {
      onLine: () => {
        killed ??= gateway
          .kill('SIGKILL')
          .then(() => gateway.restart())
          .then(() => worker.kill('SIGCONT'));
      },
    });
    await waitFor(() => killed !== undefined, 'first event', 30_000);
    await killed;
    const run = await watching;
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(jsonLines(run.stdout), await xrangeEvents(redis, taskId));
    assert.match(run.stderr, /reconnecting in \d+ s/);

    const all = await xrangeEvents(redis, taskId);
    const resumed = await taskcast(['watch', taskId, '--json', '--url', url, '--last-event-id', all[1]!.id]);
    assert.equal(resumed.code, 0);
    assert.deepEqual(jsonLines(resumed.stdout), all.slice(2));
    const atEnd = await taskcast(['watch', taskId, '--url', url, '--last-event-id', all.at(-1)!.id]);
    assert.equal(atEnd.code, 0, 'status from the API when nothing is left to replay');
    assert.equal(atEnd.stdout, '');
  });

  test('cancel; exit codes: FAILED 1, CANCELLED 3, unknown id 4, malformed input 2, unreachable 5', async () => {
    const store = new TaskStore(redis);
    const failed = (await store.start('no-such-type', {})).state.task_id;
    const f = await taskcast(['watch', failed, '--url', url]);
    assert.equal(f.code, 1, f.stderr);
    assert.match(f.stderr, /FAILED/);

    const cancelled = (await store.start('reference', { stage_ms: 600_000 })).state.task_id;
    await waitFor(async () => (await redis.hget(taskKey(cancelled), 'lease')) !== '', 'a worker runs the task');
    const cancel = await taskcast(['cancel', cancelled, '--url', url]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.stdout, `cancel requested for ${cancelled}\n`);
    const c = await taskcast(['watch', cancelled, '--json', '--url', url]);
    assert.equal(c.code, 3, c.stderr);
    assert.equal(jsonLines(c.stdout).at(-1)!.status, 'CANCELLED');

    const unknown = await taskcast(['watch', UNKNOWN, '--url', url]);
    assert.equal(unknown.code, 4);
    assert.match(unknown.stderr, /not found/);
    assert.equal((await taskcast(['inspect', UNKNOWN, '--url', url])).code, 4);
    assert.equal((await taskcast(['cancel', UNKNOWN, '--url', url])).code, 4);
    const again = await taskcast(['cancel', cancelled, '--url', url]);
    assert.equal(again.code, 5, 'cancelling a finished task is refused (409)');
    assert.match(again.stderr, /TASK_ALREADY_FINISHED, HTTP 409/);
    assert.equal((await taskcast(['watch', 'not-a-uuid', '--url', url])).code, 2);
    assert.equal((await taskcast(['watch', UNKNOWN, '--last-event-id', 'abc', '--url', url])).code, 2);
    assert.equal((await taskcast(['start', '--params', '{bad', '--url', url])).code, 2);
    assert.equal((await taskcast(['start', '--bogus', '--url', url])).code, 2);
    assert.equal((await taskcast(['nope'])).code, 2);
    assert.equal((await taskcast(['start', '--type', 'no-such-type', '--url', url])).code, 4);
    const down = await taskcast(['ls', '--url', 'http://127.0.0.1:9']);
    assert.equal(down.code, 5);
    assert.match(down.stderr, /cannot reach the server/);
  });

  test('start --priority, --delay-ms / --run-at, --concurrency-key: the task starts so; a SCHEDULED one is cancelled; bad flags exit 2', async () => {
    const run = await taskcast(['start', '--stage-ms', '0', '--priority', 'high', '--delay-ms', '60000', '--concurrency-key', 'c-1', '--json', '--url', url]);
    assert.equal(run.code, 0, run.stderr);
    const state = JSON.parse(run.stdout);
    assert.deepEqual([state.status, state.priority, state.concurrency_key], ['SCHEDULED', 'high', 'c-1']);
    const ls = await taskcast(['ls', '--url', url]);
    assert.match(ls.stdout, new RegExp(`${state.task_id}\\s+SCHEDULED`));
    assert.equal((await taskcast(['cancel', state.task_id, '--url', url])).code, 0);
    assert.equal(await redis.hget(taskKey(state.task_id), 'status'), 'CANCELLED');

    const at = Date.now() + 60_000;
    const byTime = JSON.parse((await taskcast(['start', '--run-at', String(at), '--json', '--url', url])).stdout);
    assert.equal(byTime.run_at, at);
    assert.equal((await taskcast(['start', '--priority', 'urgent', '--url', url])).code, 2);
    assert.equal((await taskcast(['start', '--delay-ms', '1.5', '--url', url])).code, 2);
    const both = await taskcast(['start', '--delay-ms', '10', '--run-at', String(at), '--url', url]);
    assert.equal(both.code, 4, 'the server refuses both (400, as an unknown type)');
    assert.match(both.stderr, /INVALID_BODY, HTTP 400/);
  });

  test('ls, inspect and --help on every command', async () => {
    const start = await taskcast(['start', '--url', url, '--stage-ms', '0', '--watch', '--json']);
    assert.equal(start.code, 0);
    const taskId = jsonLines(start.stdout)[0]!.task_id;

    const ls = await taskcast(['ls', '--url', url, '--limit', '1']);
    assert.equal(ls.code, 0);
    assert.match(ls.stdout, new RegExp(`^${taskId}  COMPLETED  100%  reference  `));
    assert.match(ls.stderr, /more: taskcast ls --cursor \S+/);
    const page = JSON.parse((await taskcast(['ls', '--url', url, '--json'])).stdout);
    assert.equal(page.tasks[0].task_id, taskId);

    const inspect = await taskcast(['inspect', taskId, '--url', url, '--json']);
    assert.equal(inspect.code, 0);
    const body = JSON.parse(inspect.stdout);
    assert.equal(body.state.status, 'COMPLETED');
    assert.deepEqual(body.events, await xrangeEvents(redis, taskId));
    const text = await taskcast(['inspect', taskId, '--url', url]);
    assert.match(text.stdout, /events \(5\):/);

    for (const command of ['start', 'watch', 'ls', 'cancel', 'inspect']) {
      const help = await taskcast([command, '--help']);
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, new RegExp(`^taskcast ${command}`), command);
      assert.match(help.stdout, /--url URL/, command);
    }
    const top = await taskcast(['--help'], { bin: true });
    assert.equal(top.code, 0);
    assert.match(top.stdout, /Commands:/);
  });
});
