import type { TestContext } from 'node:test';
import type { Redis } from '../../src/store/redis.js';
import { appendHistory } from './append.js';
import { startTask } from './http.js';
import { startGatewayProc, type ServiceProc } from './processes.js';
import { redisFor, testRedisUrl } from './redis.js';
import { eventIds } from './task-log.js';

/**
 * A gateway with a 64 KiB WS_MAX_BUFFERED_BYTES and a 2 s WS_REPLAY_STALL_MS (a reader that reads
 * stalls for less, even starved of CPU on a loaded machine), and a finished task of 300 events of
 * 64 KiB: each replay page (100 events, 6.4 MB) is more than loopback buffers hold, so a page
 * written at once would leave the backlog far over the limit.
 */
export async function bigReplay(t: TestContext): Promise<{ redis: Redis; gateway: ServiceProc; taskId: string; all: string[] }> {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayProc(t, url, { WS_MAX_BUFFERED_BYTES: '65536', WS_REPLAY_STALL_MS: '2000' });
  const taskId = await startTask(gateway.url);
  await appendHistory(redis, taskId, 300, { note: 'x'.repeat(64 * 1024) });
  return { redis, gateway, taskId, all: await eventIds(redis, taskId) };
}
