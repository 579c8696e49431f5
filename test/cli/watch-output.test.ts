import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { TaskEvent } from '../../src/wire/events.js';
import { taskcast } from '../helpers/cli.js';
import { startTask } from '../helpers/http.js';
import { inProcessTestTasksEnv, startGatewayInProcess, startWorkerInProcess, type InProcessGateway } from '../helpers/in-process.js';
import { startWorkerProc, testTasksEnv } from '../helpers/processes.js';
import { redisFor, testRedisUrl } from '../helpers/redis.js';
import { suiteScope } from '../helpers/scope.js';
import { taskEvents } from '../helpers/task-log.js';
import { renderTerminal } from '../helpers/terminal.js';
import { waitFor } from '../helpers/wait.js';

/** For the worker processes of the SIGKILL test; the gateway and the other workers run in this process (the CLI is the process under test). */
const TEST_TASKS = testTasksEnv();
const IN_PROCESS_TASKS = inProcessTestTasksEnv();
const lines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i}\n`).join('');
/** `text` as a terminal of `columns` columns wraps it. */
const rows = (text: string, columns: number) => Array.from({ length: Math.ceil(text.length / columns) }, (_, i) => text.slice(i * columns, (i + 1) * columns));
const jsonLines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as TaskEvent);

describe('taskcast watch and inspect with task output', () => {
  let gateway: InProcessGateway;
  let redisUrl: string;
  const scope = suiteScope();
  before(async () => {
    redisUrl = await testRedisUrl();
    gateway = await startGatewayInProcess(scope, redisUrl, IN_PROCESS_TASKS);
  });

  test('watch to a pipe: stdout is exactly the output; progress messages, result and status on stderr', async (t) => {
    await startWorkerInProcess(t, redisUrl, IN_PROCESS_TASKS);
    const run = await taskcast(['start', '--url', gateway.url, '--type', 'chatter', '--params', '{"lines":25,"line_ms":5}', '--watch']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, lines(25));
    const taskId = /started (\S+)/.exec(run.stderr)![1]!;
    assert.match(run.stderr, / 38% STARTED {2}10 of 25 lines\n/);
    assert.match(run.stderr, / 70% STARTED {2}20 of 25 lines\n/);
    assert.ok(run.stderr.endsWith(`${taskId}: result {"lines":25}\n${taskId}: COMPLETED\n`), run.stderr);
  });

  test('watch --json: one event per line, every type, equal to XRANGE; nothing else on stdout', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await startWorkerInProcess(t, redisUrl, IN_PROCESS_TASKS);
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 25 } });
    const run = await taskcast(['watch', taskId, '--json', '--url', gateway.url]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.endsWith('}\n'));
    const events = await taskEvents(redis, taskId);
    assert.deepEqual(jsonLines(run.stdout), events);
    assert.deepEqual(new Set(events.map((e) => e.type)), new Set(['stage', 'output', 'progress']));
    assert.deepEqual(events.at(-1)!.result, { lines: 25 });
  });

  test('exactly once under a worker SIGKILL mid-output: stdout holds the 40 lines once, stderr tells of the restart', async (t) => {
    const redis = await redisFor(t, redisUrl);
    const first = await startWorkerProc(t, redisUrl, { ...TEST_TASKS, CLAIM_IDLE_MS: '500' });
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 40, line_ms: 40 } });
    const watching = taskcast(['watch', taskId, '--url', gateway.url]);
    await waitFor(async () => (await taskEvents(redis, taskId)).filter((e) => e.type === 'output').length >= 10, 'ten output lines from the first run');
    first.kill('SIGKILL');
    await first.exited;
    await startWorkerProc(t, redisUrl, { ...TEST_TASKS, CLAIM_IDLE_MS: '500' });

    const run = await watching;
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, lines(40));
    assert.match(run.stderr, /restarted by a new run\n/);
    assert.match(run.stderr, /\[stage restarted by a new run: \d+ tentative output chunks are void \(never written to stdout\); the output follows again\]/);
    assert.ok(run.stderr.endsWith(`${taskId}: result {"lines":40}\n${taskId}: COMPLETED\n`), run.stderr);
    const events = await taskEvents(redis, taskId);
    assert.ok(events.filter((e) => e.type === 'output').length > 40, 'the first run\'s lines are in the log too');
  });

  test('exactly once when the handler throws half way and is retried: stdout holds the lines once', async (t) => {
    await startWorkerInProcess(t, redisUrl, { ...IN_PROCESS_TASKS, RETRY_BASE_MS: '20' });
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 30, fail_attempts: 1 } });
    const run = await taskcast(['watch', taskId, '--url', gateway.url]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, lines(30));
    assert.match(run.stderr, /RETRYING {2}fails half way on attempt 1\n/);
    assert.match(run.stderr, /\[stage restarted after a failed attempt \(fails half way on attempt 1\): 15 tentative output chunks are void/);
  });

  test('watch on a terminal: output above the live bar, a notice for voided chunks, the final bar and the result', async (t) => {
    await startWorkerInProcess(t, redisUrl, { ...IN_PROCESS_TASKS, RETRY_BASE_MS: '20' });
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 12, fail_attempts: 1 } });
    const run = await taskcast(['watch', taskId, '--url', gateway.url], { tty: { columns: 60 } });
    assert.equal(run.code, 0, run.stdout);
    assert.deepEqual(renderTerminal(run.stdout, 60), [
      ...lines(6).trimEnd().split('\n'),
      ...rows('[stage restarted after a failed attempt (fails half way on attempt 1): the last 6 output chunks are void; the output follows again]', 60),
      ...lines(12).trimEnd().split('\n'),
      `[${'#'.repeat(30)}] 100% COMPLETED`,
      'result:',
      '{',
      '  "lines": 12',
      '}',
      `${taskId}: COMPLETED`,
      '',
    ]);
    assert.match(run.stdout, / 70% RETRYING {2}10 of 12 l…/, 'the progress message beside the bar, cut to the width');
  });

  test('inspect: result, latest message, the last output lines (all with --output-lines all), every event over pages', async (t) => {
    const redis = await redisFor(t, redisUrl);
    await startWorkerInProcess(t, redisUrl, IN_PROCESS_TASKS);
    const taskId = await startTask(gateway.url, { type: 'chatter', params: { lines: 1200 } });
    assert.equal((await taskcast(['watch', taskId, '--url', gateway.url])).code, 0);
    const events = await taskEvents(redis, taskId);
    assert.ok(events.length > 1000, 'more than one page of GET /tasks/<id>/events');

    const json = await taskcast(['inspect', taskId, '--json', '--url', gateway.url]);
    assert.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout);
    assert.deepEqual(body.events, events);
    assert.equal(body.output, lines(1200));
    assert.deepEqual(body.state.result, { lines: 1200 });

    const text = await taskcast(['inspect', taskId, '--url', gateway.url]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /\nresult: \{\n {2}"lines": 1200\n\}\n/);
    assert.match(text.stdout, new RegExp(`\\nevents \\(${events.length}\\):\\n`));
    assert.match(text.stdout, / output +STARTED +10% {2}10 chunks, to /);
    const tail = `output as of event ${events.at(-1)!.id} (1200 lines; the last 20 follow, --output-lines all for every line):\n`;
    assert.ok(text.stdout.endsWith(`${tail}${lines(1200).split('\n').slice(1180).join('\n')}`), text.stdout.slice(-600));
    const all = await taskcast(['inspect', taskId, '--output-lines', 'all', '--url', gateway.url]);
    assert.ok(all.stdout.endsWith(`(1200 lines):\n${lines(1200)}`));

    const running = await startTask(gateway.url, { type: 'chatter', params: { lines: 1000, line_ms: 50 } });
    await waitFor(async () => (await taskEvents(redis, running)).some((e) => e.type === 'progress'), 'a progress message');
    const live = await taskcast(['inspect', running, '--output-lines', '0', '--url', gateway.url]);
    assert.match(live.stdout, /\nmessage: \d+ of 1000 lines\n/);
    assert.equal((await taskcast(['inspect', running, '--output-lines', 'x', '--url', gateway.url])).code, 2);
    assert.equal((await taskcast(['cancel', running, '--url', gateway.url])).code, 0);
  });
});
