import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';
import { CLOSED_PORT, spawnEntry } from '../helpers/processes.js';
import { startRedisServer } from '../helpers/redis-server.js';

test('defaults', () => {
  const c = loadConfig({});
  assert.equal(c.REDIS_URL, undefined);
  assert.equal(c.HOST, '127.0.0.1');
  assert.equal(c.PORT, 8000);
  assert.equal(c.STAGE_MS, 5000);
  assert.equal(c.WORKER_CONCURRENCY, 16);
  assert.equal(c.TASK_TTL_S, 86400);
  assert.equal(c.LOG_LEVEL, 'info');
});

test('values are coerced from strings', () => {
  const c = loadConfig({ PORT: '0', STAGE_MS: '250', REDIS_URL: 'redis://h:1/2', LOG_LEVEL: 'warn' });
  assert.equal(c.PORT, 0);
  assert.equal(c.STAGE_MS, 250);
  assert.equal(c.REDIS_URL, 'redis://h:1/2');
  assert.equal(c.LOG_LEVEL, 'warn');
});

test('TASK_CONCURRENCY: name=limit pairs, blanks around them ignored; SCHEDULE_MAX_AHEAD_S defaults to 30 days', () => {
  assert.deepEqual(loadConfig({ TASK_CONCURRENCY: ' report=2, email = 10 ,' }).TASK_CONCURRENCY, { report: 2, email: 10 });
  assert.deepEqual(loadConfig({}).TASK_CONCURRENCY, {});
  assert.equal(loadConfig({}).SCHEDULE_MAX_AHEAD_S, 30 * 86400);
});

test('REDIS_CLUSTER_NODES: host:port seeds (IPv6 in brackets); with REDIS_URL as well it names both', () => {
  assert.deepEqual(loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7001,redis-2:7002 , [::1]:7003' }).REDIS_CLUSTER_NODES, [
    { host: '10.0.0.1', port: 7001 }, { host: 'redis-2', port: 7002 }, { host: '::1', port: 7003 },
  ]);
  assert.equal(loadConfig({}).REDIS_CLUSTER_WAIT_REPLICAS, 1);
  assert.throws(() => loadConfig({ REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'b:2' }), /REDIS_CLUSTER_NODES=.*either REDIS_URL/);
});

test('a bad value throws a ConfigError naming the variable', () => {
  for (const [name, value] of [['PORT', 'abc'], ['PORT', '70000'], ['STAGE_MS', '-1'], ['STAGE_MS', '1.5'],
    ['WORKER_CONCURRENCY', '0'], ['TASK_TTL_S', 'x'], ['LOG_LEVEL', 'loud'], ['REDIS_URL', 'not a url'],
    ['TASK_CONCURRENCY', 'report'], ['TASK_CONCURRENCY', 'report=0'], ['TASK_CONCURRENCY', 'report=2,email=x'], ['TASK_CONCURRENCY', 'report=2,report=3'],
    ['SCHEDULE_MAX_AHEAD_S', '0'], ['SCHEDULE_POLL_MS', '5'],
    ['REDIS_CLUSTER_NODES', 'localhost'], ['REDIS_CLUSTER_NODES', 'a:1,b:70000'], ['REDIS_CLUSTER_NODES', ' , '], ['REDIS_CLUSTER_NODES', 'a b:1'],
    ['REDIS_CLUSTER_WAIT_REPLICAS', '-1'], ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['ALLOWED_ORIGINS', 'https://good.example/, notanorigin'], ['ALLOWED_ORIGINS', 'https://app.example/page'],
    // An empty value (`PORT=${PORT}` in compose with PORT unset) is an error too, never 0.
    ['PORT', ''], ['SHUTDOWN_GRACE_MS', ' '], ['REDIS_CLUSTER_WAIT_REPLICAS', ''], ['STAGE_MS', '1e3']]) {
    assert.throws(() => loadConfig({ [name!]: value }), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, new RegExp(`${name}=`));
      return true;
    }, `${name}=${value}`);
  }
});

test('an integer out of its range, or not an integer, is told the range', () => {
  for (const [name, value, range] of [['PORT', '70000', 'from 0 to 65535'], ['PORT', '-1', 'from 0 to 65535'], ['PORT', 'abc', 'from 0 to 65535'],
    ['WORKER_CONCURRENCY', '0', 'from 1 to 10000'], ['STAGE_MS', '1.5', 'from 0 to'], ['FEED_MAXLEN', '5', 'from 100 to']]) {
    assert.throws(() => loadConfig({ [name!]: value }), new RegExp(`${name}="${value!.replace('.', '\\.')}": expected an integer ${range}`), `${name}=${value}`);
  }
});

test('ALLOWED_ORIGINS: origins as browsers send them, a trailing slash allowed; anything else names the entry', () => {
  assert.deepEqual(loadConfig({ ALLOWED_ORIGINS: 'https://good.example/, http://localhost:5173' }).ALLOWED_ORIGINS, ['https://good.example/', 'http://localhost:5173']);
  assert.throws(() => loadConfig({ ALLOWED_ORIGINS: 'https://good.example, notanorigin' }), /ALLOWED_ORIGINS=.*: expected origins \(scheme:\/\/host\[:port\]\), got "notanorigin"/);
});

test('TASK_MODULES naming no file: the gateway exits 2 naming the variable and the path, before it connects', async () => {
  const proc = spawnEntry('gateway', { TASK_MODULES: '/nonexistent/tasks.js', REDIS_URL: `redis://127.0.0.1:${CLOSED_PORT}`, PORT: '0' });
  let stderr = '';
  proc.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  assert.equal(await proc.exited, 2);
  assert.match(stderr, /TASK_MODULES="\/nonexistent\/tasks\.js": \/nonexistent\/tasks\.js does not exist/);
});

test('a HOST that is no address of this machine: the gateway exits 2 naming HOST', async (t) => {
  const redis = await startRedisServer();
  t.after(() => redis.close());
  // 192.0.2.0/24 is TEST-NET-1: never a local address, and no name to resolve.
  const proc = spawnEntry('gateway', { HOST: '192.0.2.1', REDIS_URL: redis.url, PORT: '0' });
  let stderr = '';
  proc.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  assert.equal(await proc.exited, 2);
  assert.match(stderr, /HOST="192\.0\.2\.1": cannot listen there \(listen EADDRNOTAVAIL/);
});

test('an entry point with a bad value exits non-zero with a message naming the variable', async () => {
  const proc = spawnEntry('gateway', { STAGE_MS: 'soon' });
  let stderr = '';
  proc.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  assert.equal(await proc.exited, 2);
  assert.match(stderr, /STAGE_MS="soon"/);
});

test('seed nodes that do not answer: the gateway exits 2 naming REDIS_CLUSTER_NODES once REDIS_CLUSTER_CONNECT_TIMEOUT_MS is over', async () => {
  const port = CLOSED_PORT;
  const proc = spawnEntry('gateway', { REDIS_CLUSTER_NODES: `127.0.0.1:${port}`, REDIS_CLUSTER_CONNECT_TIMEOUT_MS: '1000', PORT: '0' });
  let stderr = '';
  proc.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  assert.equal(await proc.exited, 2);
  assert.match(stderr, new RegExp(`REDIS_CLUSTER_NODES="127\\.0\\.0\\.1:${port}": no cluster answered within 1000 ms`));
});

test('a worker whose TASK_CONCURRENCY names an unknown task type exits 2 naming the variable and the type', async () => {
  const proc = spawnEntry('worker', { TASK_CONCURRENCY: 'reference=2,nope=3', HEALTH_PORT: '0' });
  let stderr = '';
  proc.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  assert.equal(await proc.exited, 2);
  assert.match(stderr, /TASK_CONCURRENCY names an unknown task type "nope"/);
});
