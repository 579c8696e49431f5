import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { devRedis, freePort } from '../../src/runtime/dev-redis.js';
import { closeRedis } from '../../src/store/redis.js';
import { connectRedis } from '../helpers/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';

const logger = createLogger('silent', 'test');

test('uses a Redis that already answers on the probe port', async (t) => {
  const server = await startRedisServer();
  t.after(() => server.close());
  const redis = await devRedis(logger, { probePort: server.port });
  assert.equal(redis.url, server.url);
  await redis.close();
  assert.equal(server.process.exitCode, null, 'a Redis we did not start is left running');
});

test('starts a private redis-server with AOF under the data dir, and stops it on close', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'taskcast-dev-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const redis = await devRedis(logger, { dataDir, probePort: await freePort() });
  const client = await connectRedis(redis.url);
  assert.equal(await client.config('GET', 'appendonly').then((r) => (r as string[])[1]), 'yes');
  await client.set('k', 'v');
  await closeRedis(client);
  await redis.close();
  assert.ok(existsSync(join(dataDir, 'appendonlydir')), 'the AOF lives under the data dir');
  await assert.rejects(connectRedisOnce(redis.url), 'the server is stopped');
});

test('without redis-server on PATH it fails at once saying how to get Redis', async (t) => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  t.after(() => (process.env.PATH = path));
  await assert.rejects(devRedis(logger, { probePort: await freePort() }), /redis-server on PATH.*docker compose up/s);
});

async function connectRedisOnce(url: string): Promise<void> {
  const { createConnection } = await import('node:net');
  const { port } = new URL(url);
  await new Promise<void>((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port: Number(port) });
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}
