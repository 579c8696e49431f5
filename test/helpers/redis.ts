import type { TestContext } from 'node:test';
import { rmSync } from 'node:fs';
import { DEFAULT_FEED_SETTINGS, closeRedis, createRedis, ensureConnected, type Redis } from '../../src/store/redis.js';
import { startRedisServer, type RedisServer } from './redis-server.js';

let shared: Promise<{ url: string; server?: RedisServer }> | undefined;

/**
 * The Redis of this test file: REDIS_URL when given (a scratch server: it is flushed), else a
 * redis-server spawned for this file. Each call flushes it, so every test starts clean.
 */
export async function testRedisUrl(): Promise<string> {
  shared ??= (async () => {
    if (process.env.REDIS_URL) return { url: process.env.REDIS_URL };
    const server = await startRedisServer();
    process.once('exit', () => rmSync(server.dir, { recursive: true, force: true }));
    return { url: server.url, server };
  })();
  const { url } = await shared;
  const admin = await connectRedis(url);
  await admin.flushall();
  await closeRedis(admin);
  return url;
}

/** A connected client with our scripts defined. */
export async function connectRedis(url: string, name = 'test'): Promise<Redis> {
  const client = createRedis(url, { name });
  await ensureConnected(client);
  return client;
}

/** A connected client closed when the test ends. */
export async function redisFor(t: TestContext, url: string): Promise<Redis> {
  const client = await connectRedis(url);
  t.after(() => closeRedis(client));
  return client;
}

/**
 * A connected client, closed when the test ends, whose scripts keep each feed to `feedMaxLen`
 * entries (FEED_MAXLEN), as a gateway or worker started with that bound does.
 */
export async function redisWithFeedBound(t: TestContext, url: string, feedMaxLen: number): Promise<Redis> {
  const client = createRedis(url, { name: 'test', feed: { ...DEFAULT_FEED_SETTINGS, maxLen: feedMaxLen } });
  t.after(() => closeRedis(client));
  await ensureConnected(client);
  return client;
}
