import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { decodeEvent } from '../../src/store/events.js';
import { type TaskEvent } from '../../src/wire/events.js';
import { eventsKey, taskKey } from '../../src/store/keys.js';
import { closeRedis, type Redis } from '../../src/store/redis.js';
import { TaskStore } from '../../src/store/task-store.js';
import { API_TOKEN, AUTH_ENV, WATCH_TOKEN_RE } from '../helpers/auth.js';
import { taskcast } from '../helpers/cli.js';
import { startGatewayInProcess, startWorkerInProcess } from '../helpers/in-process.js';
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
    const beyond = await taskcast(['watch', cancelled, '--last-event-id', '99999999999999-0', '--url', url]);
    assert.equal(beyond.code, 4, 'a well-formed resume point the server refuses (4400) is a refused request');
    assert.match(beyond.stderr, /beyond the task's last event/);
    assert.equal((await taskcast(['start', '--params', '{bad', '--url', url])).code, 2);
    assert.equal((await taskcast(['start', '--bogus', '--url', url])).code, 2);
    assert.equal((await taskcast(['nope'])).code, 2);
    for (const bad of ['notaurl', 'ftp://127.0.0.1:9', 'ws://127.0.0.1:9']) {
      const r = await taskcast(['ls', '--url', bad]);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /invalid --url .*: expected an http:\/\/ or https:\/\/ URL/, bad);
    }
    assert.equal((await taskcast(['start', '--type', 'no-such-type', '--url', url])).code, 4);
    // A refused start names each invalid field, as the server's error details do.
    const invalid = await taskcast(['start', '--params', '{"stage_ms":-1}', '--url', url]);
    assert.equal(invalid.code, 4);
    assert.match(invalid.stderr, /^taskcast start: invalid task params \(INVALID_PARAMS, HTTP 400\)\ntaskcast start:   stage_ms: .*>=0/);
    const down = await taskcast(['ls', '--url', 'http://127.0.0.1:9']);
    assert.equal(down.code, 5);
    assert.match(down.stderr, /cannot reach the server/);
  });

  test('start --tag and --idempotency-key; ls filters, with the filters carried into the next-page hint', async () => {
    const first = await taskcast(['start', '--url', url, '--stage-ms', '0', '--tag', 'cli-a', '--tag', 'cli-both', '--idempotency-key', 'cli-once']);
    assert.equal(first.code, 0, first.stderr);
    const tagged = first.stdout.trim();
    const again = await taskcast(['start', '--url', url, '--stage-ms', '0', '--tag', 'cli-a', '--tag', 'cli-both', '--idempotency-key', 'cli-once']);
    assert.equal(again.stdout.trim(), tagged);
    const reused = await taskcast(['start', '--url', url, '--stage-ms', '1', '--idempotency-key', 'cli-once']);
    assert.equal(reused.code, 4, 'refused as invalid');
    assert.match(reused.stderr, /IDEMPOTENCY_KEY_REUSED, HTTP 422/);
    const other = (await taskcast(['start', '--url', url, '--stage-ms', '0', '--tag', 'cli-both'])).stdout.trim();
    await waitFor(async () => (await redis.hget(taskKey(other), 'status')) === 'COMPLETED', 'the second tagged task to complete');
    await waitFor(async () => (await redis.hget(taskKey(tagged), 'status')) === 'COMPLETED', 'the first tagged task to complete');

    const onlyA = JSON.parse((await taskcast(['ls', '--url', url, '--tag', 'cli-a', '--json'])).stdout);
    assert.deepEqual(onlyA.tasks.map((t: { task_id: string }) => t.task_id), [tagged]);
    assert.deepEqual(onlyA.tasks[0].tags, ['cli-a', 'cli-both']);
    const page1 = await taskcast(['ls', '--url', url, '--tag', 'cli-both', '--status', 'COMPLETED', '--created-after', '2020-01-01T00:00:00Z', '--limit', '1']);
    assert.equal(page1.code, 0, page1.stderr);
    assert.match(page1.stdout, new RegExp(`^${other}  COMPLETED`));
    const hint = /more: taskcast (ls .*)$/m.exec(page1.stderr)?.[1];
    assert.ok(hint, page1.stderr);
    assert.match(hint, / --status COMPLETED --tag cli-both --created-after 2020-01-01T00:00:00Z$/);
    const page2 = await taskcast([...hint.split(' '), '--url', url]);
    assert.equal(page2.code, 0, page2.stderr);
    assert.match(page2.stdout, new RegExp(`^${tagged}  COMPLETED`));
    assert.equal((await taskcast(['ls', '--url', url, '--type', 'typewriter', '--json'])).stdout.trim(), '{"tasks":[],"next_cursor":null}');
    const bad = await taskcast(['ls', '--url', url, '--created-before', 'soon']);
    assert.equal(bad.code, 4);
    assert.match(bad.stderr, /INVALID_QUERY, HTTP 400/);
  });

  test('start --priority, --delay-ms / --run-at, --concurrency-key: the task starts so; a SCHEDULED one is cancelled; bad flags exit 2', async () => {
    const run = await taskcast(['start', '--stage-ms', '0', '--priority', 'high', '--delay-ms', '60000', '--concurrency-key', 'c-1', '--json', '--url', url]);
    assert.equal(run.code, 0, run.stderr);
    const state = JSON.parse(run.stdout);
    assert.deepEqual([state.status, state.priority, state.concurrency_key], ['SCHEDULED', 'high', 'c-1']);
    const ls = await taskcast(['ls', '--url', url]);
    assert.match(ls.stdout, new RegExp(`${state.task_id}\\s+SCHEDULED`));
    const inspect = await taskcast(['inspect', state.task_id, '--url', url]);
    assert.match(inspect.stdout, new RegExp(`^priority: high\nrun at: ${new Date(state.run_at).toISOString()}\nconcurrency key: c-1\n`, 'm'));
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

describe('taskcast CLI against a gateway with auth on: --token and TASKCAST_TOKEN', () => {
  let redis: Redis;
  let url: string;
  const scope = suiteScope();
  const HINT = /pass an API token with --token or TASKCAST_TOKEN/;

  before(async () => {
    const redisUrl = await testRedisUrl();
    url = (await startGatewayInProcess(scope, redisUrl, AUTH_ENV)).url;
    await startWorkerInProcess(scope, redisUrl);
    redis = await connectRedis(redisUrl);
    scope.after(() => closeRedis(redis));
  });

  test('every command works with the API token from --token or TASKCAST_TOKEN; --token wins', async () => {
    const start = await taskcast(['start', '--url', url, '--token', API_TOKEN, '--stage-ms', '20', '--json']);
    assert.equal(start.code, 0, start.stderr);
    const started = JSON.parse(start.stdout);
    assert.match(started.watch_token, WATCH_TOKEN_RE);
    const env = { TASKCAST_TOKEN: API_TOKEN };

    const watch = await taskcast(['watch', started.task_id, '--json', '--url', url], { env });
    assert.equal(watch.code, 0, watch.stderr);
    assert.deepEqual(jsonLines(watch.stdout), await xrangeEvents(redis, started.task_id));
    const byWatchToken = await taskcast(['watch', started.task_id, '--url', url, '--token', started.watch_token]);
    assert.equal(byWatchToken.code, 0, `the start's watch token watches its task: ${byWatchToken.stderr}`);
    const inspect = await taskcast(['inspect', started.task_id, '--url', url, '--token', started.watch_token, '--json']);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal(JSON.parse(inspect.stdout).state.status, 'COMPLETED');

    const ls = await taskcast(['ls', '--url', url, '--json'], { env });
    assert.equal(ls.code, 0, ls.stderr);
    assert.ok(JSON.parse(ls.stdout).tasks.some((t: { task_id: string }) => t.task_id === started.task_id));
    const wins = await taskcast(['ls', '--url', url, '--token', API_TOKEN], { env: { TASKCAST_TOKEN: 'wrong-token' } });
    assert.equal(wins.code, 0, wins.stderr);

    const long = await taskcast(['start', '--url', url, '--stage-ms', '600000'], { env });
    const longId = long.stdout.trim();
    await waitFor(async () => (await redis.hget(taskKey(longId), 'lease')) !== '', 'a worker runs the task');
    assert.equal((await taskcast(['cancel', longId, '--url', url], { env })).code, 0);
    const cancelled = await taskcast(['watch', longId, '--url', url], { env });
    assert.equal(cancelled.code, 3, cancelled.stderr);

    const startWatch = await taskcast(['start', '--url', url, '--stage-ms', '0', '--watch'], { env });
    assert.equal(startWatch.code, 0, startWatch.stderr);
  });

  test('no token or a refused one: a clear message, the hint, exit code 6; the token is never printed', async () => {
    const { task_id: taskId, watch_token: watchToken } = JSON.parse(
      (await taskcast(['start', '--url', url, '--token', API_TOKEN, '--stage-ms', '0', '--json'])).stdout,
    );
    const { task_id: other } = JSON.parse((await taskcast(['start', '--url', url, '--token', API_TOKEN, '--json'])).stdout);
    const runs = [
      { args: ['ls'], message: /an API token is required/ },
      { args: ['start'], message: /an API token is required/ },
      { args: ['ls', '--token', 'wrong-token'], message: /invalid API token/ },
      { args: ['cancel', taskId, '--token', watchToken], message: /invalid API token/ },
      { args: ['inspect', taskId], message: /a watch token or API token is required/ },
      { args: ['watch', taskId], message: /a watch token or API token is required/ },
      { args: ['watch', taskId, '--token', 'wrong-token'], message: /invalid or expired token for this task/ },
      { args: ['watch', other, '--token', watchToken], message: /invalid or expired token for this task/ },
    ];
    for (const { args, message } of runs) {
      const run = await taskcast([...args, '--url', url]);
      assert.equal(run.code, 6, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
      assert.match(run.stderr, HINT, args.join(' '));
      assert.ok(!run.stderr.includes('wrong-token') && !run.stderr.includes(watchToken), run.stderr);
    }
  });
});
