import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createLogger, type Logger } from '../../src/logger.js';
import { freePort } from '../../src/runtime/dev-redis.js';
import { closeRedis, createRedis } from '../../src/store/redis.js';
import { Periodic } from '../../src/worker/periodic.js';
import { oneShot, waitFor, withTimeout } from '../helpers/wait.js';

interface Line {
  level: number;
  msg: string;
  err?: unknown;
  failures?: number;
}

const INFO = 30;
const WARN = 40;
const ERROR = 50;
const DEBUG = 20;

function capturingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = createLogger('debug', 'test', { pretty: false, destination: { write: (text: string) => void lines.push(JSON.parse(text) as Line) } });
  return { logger, lines };
}

/** A job that fails as a Redis command fails when no server answers: a real client with nothing at its port. */
async function unreachableRedis(t: TestContext): Promise<() => Promise<void>> {
  const redis = createRedis(`redis://127.0.0.1:${await freePort()}`, { name: 'periodic-test', offlineQueue: false });
  t.after(() => closeRedis(redis));
  return async () => {
    await redis.ping();
  };
}

test('one run at a time: a tick while the job runs joins that run', async (t) => {
  const { logger } = capturingLogger();
  const release = oneShot();
  let runs = 0;
  const job = new Periodic(logger, 'job', 60_000, async () => {
    runs += 1;
    await release.fired;
  });
  t.after(() => job.stop(0));
  const first = job.tick();
  const second = job.tick();
  assert.equal(second, first);
  release.fire();
  await first;
  assert.equal(runs, 1);
  await job.tick();
  assert.equal(runs, 2, 'a tick after the run ended runs the job again');
});

test('Redis trouble is warned once per streak without a stack, then logged at debug; a success ends the streak; failures back off', async (t) => {
  const { logger, lines } = capturingLogger();
  const ping = await unreachableRedis(t);
  let healthy = false;
  let runs = 0;
  const job = new Periodic(logger, 'job', 60_000, async () => {
    runs += 1;
    if (!healthy) await ping();
  });
  t.after(() => job.stop(0));

  await job.tick();
  assert.equal(runs, 1);
  await job.tick();
  assert.equal(runs, 1, 'a tick within the backoff after a failure does not run the job');
  await waitFor(async () => (await job.tick(), runs === 3), 'three failed runs, backed off', 10_000);
  const failed = lines.filter((l) => l.msg === 'job failed');
  assert.deepEqual(failed.map((l) => [l.level, l.failures]), [[WARN, 1], [DEBUG, 2], [DEBUG, 3]]);
  assert.equal(typeof failed[0]!.err, 'string', 'an outage is logged without a stack');
  assert.match(String(failed[0]!.err), /Stream isn't writeable|Connection is closed/);

  healthy = true;
  await waitFor(async () => (await job.tick(), runs === 4), 'a run after the backoff', 10_000);
  healthy = false;
  await job.tick();
  assert.deepEqual(lines.filter((l) => l.msg === 'job failed').slice(3).map((l) => [l.level, l.failures]), [[WARN, 1]], 'a new streak is warned again');
});

test('any other failure is an error, with its stack, each time; without backOff the next tick runs at once', async (t) => {
  const { logger, lines } = capturingLogger();
  let runs = 0;
  const job = new Periodic(logger, 'job', 60_000, async () => {
    runs += 1;
    JSON.parse('{');
  }, false);
  t.after(() => job.stop(0));
  await job.tick();
  await job.tick();
  assert.equal(runs, 2);
  const failed = lines.filter((l) => l.msg === 'job failed');
  assert.deepEqual(failed.map((l) => l.level), [ERROR, ERROR]);
  assert.match(JSON.stringify(failed[0]!.err), /SyntaxError[\s\S]*stack/);
});

test('stop waits at most its time for a run under way; after it, a tick runs nothing', async (t) => {
  const { logger } = capturingLogger();
  let runs = 0;
  const job = new Periodic(logger, 'job', 20, async () => {
    runs += 1;
    await new Promise(() => undefined);
  });
  job.start();
  await waitFor(() => runs === 1, 'the timer to run the job');
  const stopped = Date.now();
  await withTimeout(job.stop(200), 'stop to give up on the hung run', 5000);
  assert.ok(Date.now() - stopped >= 190, 'stop waited for the run');
  await job.tick();
  assert.equal(runs, 1);
  t.after(() => job.stop(0));
});

test('a run that neither ends nor fails (Redis hangs) is warned once, after three periods and at least 5 s; its late end is logged', async (t) => {
  const { logger, lines } = capturingLogger();
  const answer = oneShot();
  const job = new Periodic(logger, 'job', 20, () => answer.fired);
  t.after(() => job.stop(0));
  const began = Date.now();
  void job.tick();
  await waitFor(() => (void job.tick(), lines.some((l) => l.msg === 'job is still waiting on Redis')), 'the hung run to be warned', 15_000);
  assert.ok(Date.now() - began >= 5000, 'not before 5 s');
  for (let i = 0; i < 10; i++) void job.tick();
  const hung = lines.filter((l) => l.msg === 'job is still waiting on Redis') as (Line & { waited_ms?: number })[];
  assert.deepEqual(hung.map((l) => l.level), [WARN], 'once per run');
  assert.ok(Number(hung[0]!.waited_ms) >= 5000);
  answer.fire();
  await job.tick();
  const answered = lines.filter((l) => l.msg === "job got Redis's answer") as (Line & { waited_ms?: number })[];
  assert.deepEqual(answered.map((l) => l.level), [INFO], 'its end, once');
  assert.ok(Number(answered[0]!.waited_ms) >= Number(hung[0]!.waited_ms));
});
