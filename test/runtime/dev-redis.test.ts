import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { devRedis, freePort } from '../../src/runtime/dev-redis.js';
import { closeRedis } from '../../src/store/redis.js';
import { request } from '../helpers/http.js';
import { connectRedis } from '../helpers/redis.js';
import { spawnEntry, stopProc, type Scope } from '../helpers/processes.js';
import { testScope } from '../helpers/scope.js';
import { answersPing } from '../../src/store/ping.js';
import { killPid, redisServersIn, startRedisServer } from '../helpers/redis-server.js';

const logger = createLogger('silent', 'test');

function tempDataDir(t: Scope): string {
  const dataDir = mkdtempSync(join(tmpdir(), 'taskcast-dev-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  return dataDir;
}

const record = (dataDir: string) => JSON.parse(readFileSync(join(dataDir, 'redis.json'), 'utf8'));

/** `npm start` on a private redis-server in `dataDir`, first port `port`, never the machine's 6379. */
const startEnv = (dataDir: string, port: number) => ({
  REDIS_URL: undefined,
  DEV_REDIS_DIR: dataDir,
  DEV_REDIS_PORT: String(port),
  DEV_REDIS_PROBE_PORT: '0',
  PORT: '0',
  SHUTDOWN_GRACE_MS: '500',
});

test('uses a Redis that already answers PING on the probe port', async (context) => {
  const t = testScope(context);
  const server = await startRedisServer();
  t.after(() => server.close());
  const redis = await devRedis(logger, { dataDir: tempDataDir(t), port: await freePort(), probePort: server.port });
  assert.equal(redis.url, server.url);
  await redis.close();
  assert.equal(server.process.exitCode, null, 'a Redis we did not start is left running');
});

test('starts a private redis-server with AOF under the data dir, and stops it on close', async (context) => {
  const t = testScope(context);
  const dataDir = tempDataDir(t);
  const port = await freePort();
  const redis = await devRedis(logger, { dataDir, port, probePort: 0 });
  t.after(() => redis.close());
  assert.equal(redis.url, `redis://127.0.0.1:${port}`);
  const client = await connectRedis(redis.url);
  assert.equal(await client.config('GET', 'appendonly').then((r) => (r as string[])[1]), 'yes');
  await client.set('k', 'v');
  await closeRedis(client);
  const { pid } = record(dataDir);
  assert.deepEqual(record(dataDir), { port, pid, owner: process.pid });
  await redis.close();
  assert.ok(existsSync(join(dataDir, 'appendonlydir')), 'the AOF lives under the data dir');
  assert.equal(await answersPing(port), false, 'the server is stopped');
  assert.deepEqual(redisServersIn(dataDir), []);
  assert.deepEqual(record(dataDir), { port }, 'the port stays remembered');
});

test('the port is remembered in the data dir; when it is taken, the next free one from the first port', async (context) => {
  const t = testScope(context);
  const dataDir = tempDataDir(t);
  const port = await freePort();
  await (await devRedis(logger, { dataDir, port, probePort: 0 })).close();
  const again = await devRedis(logger, { dataDir, port: await freePort(), probePort: 0 });
  t.after(() => again.close());
  assert.equal(again.url, `redis://127.0.0.1:${port}`, 'the remembered port, whatever the first port says');
  await again.close();

  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => squatter.close(resolve)));
  const moved = await devRedis(logger, { dataDir, port, probePort: 0 });
  t.after(() => moved.close());
  const next = record(dataDir).port;
  assert.ok(next > port, `moved from ${port} to ${next}`);
  assert.equal(moved.url, `redis://127.0.0.1:${next}`);
  assert.equal(await answersPing(next), true);
});

test('without redis-server on PATH it fails at once saying how to get Redis', async (context) => {
  const t = testScope(context);
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  t.after(() => (process.env.PATH = path));
  await assert.rejects(devRedis(logger, { dataDir: tempDataDir(t), port: await freePort(), probePort: 0 }), /redis-server on PATH.*docker compose up/s);
});

test('a SIGKILLed npm start leaves its redis-server running: the next npm start reuses it, and stops it', async (context) => {
  const t = testScope(context);
  const dataDir = tempDataDir(t);
  const port = await freePort();
  const first = spawnEntry('start', startEnv(dataDir, port));
  t.after(() => stopProc(first));
  const started = await first.waitForLog((l) => l.msg === 'started a private redis-server', 'the private redis-server', 30_000);
  const { pid } = record(dataDir);
  t.after(() => killPid(pid));
  assert.deepEqual(record(dataDir), { port, pid, owner: first.child.pid });
  assert.equal(started.redisPid, pid);
  assert.equal(started.url, `redis://127.0.0.1:${port}`);
  assert.equal(started.inspect, `redis-cli -p ${port}`);
  await first.waitForLog((l) => l.msg === 'gateway listening', 'gateway listening', 30_000);

  first.kill('SIGKILL');
  await first.exited;
  assert.equal(await answersPing(port), true, 'the killed start left its server running');

  const second = spawnEntry('start', startEnv(dataDir, port));
  t.after(() => stopProc(second));
  const reused = await second.waitForLog((l) => String(l.msg).startsWith('reusing the private redis-server'), 'the reuse', 30_000);
  assert.equal(reused.redisPid, pid);
  assert.equal(reused.inspect, `redis-cli -p ${port}`);
  const listening = await second.waitForLog((l) => l.msg === 'gateway listening', 'gateway listening', 30_000);
  const res = await request(`http://127.0.0.1:${listening.port}/tasks`, { body: { stage_ms: 0 } });
  assert.equal(res.status, 202);
  assert.deepEqual(redisServersIn(dataDir), [pid], 'one redis-server for the data dir');
  assert.deepEqual(record(dataDir), { port, pid, owner: second.child.pid });

  await stopProc(second);
  assert.equal(await second.exited, 0);
  assert.deepEqual(redisServersIn(dataDir), [], 'its new owner stopped it');
  assert.deepEqual(record(dataDir), { port });
});

test('a second npm start on the data dir of a running one is refused, naming the port to share', async (context) => {
  const t = testScope(context);
  const dataDir = tempDataDir(t);
  const port = await freePort();
  const first = spawnEntry('start', startEnv(dataDir, port));
  t.after(() => stopProc(first));
  await first.waitForLog((l) => l.msg === 'gateway listening', 'gateway listening', 30_000);
  const { pid } = record(dataDir);
  t.after(() => killPid(pid));

  const second = spawnEntry('start', startEnv(dataDir, port));
  t.after(() => stopProc(second));
  const failed = await second.waitForLog((l) => l.msg === 'taskcast failed to start', 'the refusal', 30_000);
  assert.match(String((failed.err as { message: string }).message), new RegExp(`belongs to a running npm start.*REDIS_URL=redis://127.0.0.1:${port}`, 's'));
  assert.equal(await second.exited, 1);
  assert.deepEqual(redisServersIn(dataDir), [pid]);
  assert.deepEqual(record(dataDir), { port, pid, owner: first.child.pid });
});
