import type { TestContext } from 'node:test';
import { appendBurst, appendEvent } from './append.js';
import { startTask } from './http.js';
import { startGatewayProc, type ServiceProc } from './processes.js';
import { redisFor, testRedisUrl } from './redis.js';
import { eventIds } from './task-log.js';
import { oneShot, withTimeout } from './wait.js';

/**
 * A gateway with a 4 KiB WS_MAX_BUFFERED_BYTES and a task that `watch` follows from its PENDING;
 * then 64 events of about 400 bytes in one hub read (about 26 KB written in one turn, six times
 * the limit, all of which loopback takes at once) and COMPLETED. Gives what `watch` resolved
 * with, and the task's ids in XRANGE.
 */
export async function liveBurst<R>(
  t: TestContext,
  watch: (gateway: ServiceProc, taskId: string, onEvent: () => void) => Promise<R>,
): Promise<{ gateway: ServiceProc; watched: R; all: string[] }> {
  const url = await testRedisUrl();
  const redis = await redisFor(t, url);
  const gateway = await startGatewayProc(t, url, { WS_MAX_BUFFERED_BYTES: '4096' });
  const taskId = await startTask(gateway.url);
  const first = oneShot();
  const watching = watch(gateway, taskId, first.fire);
  await withTimeout(first.fired, 'the PENDING event');
  await appendBurst(redis, taskId, 64, 'x'.repeat(300));
  await appendEvent(redis, taskId, { status: 'COMPLETED', progress: 100, terminal: true });
  return { gateway, watched: await watching, all: await eventIds(redis, taskId) };
}
