import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startGateway } from '../gateway.js';
import { Metrics } from '../metrics/metrics.js';
import { closeRedis, createRedis, ensureConnected } from '../store/redis.js';
import { createRegistry } from '../worker/tasks/index.js';
import { Worker } from '../worker/worker.js';
import type { Stop } from './main.js';

/** A gateway with its own Redis client; the returned Stop closes both, in reverse order. */
export async function runGateway(config: Config, logger: Logger, redisUrl: string, metrics = new Metrics()): Promise<Stop> {
  const redis = createRedis(redisUrl, { name: 'gateway', offlineQueue: false, logger });
  await connect(redis, redisUrl, logger);
  const gateway = await startGateway({ redis, logger, config, registry: createRegistry(config), metrics });
  return async () => {
    await gateway.close();
    await closeRedis(redis);
  };
}

/** A worker with its own Redis client; the returned Stop drains it, then closes the client. */
export async function runWorker(config: Config, logger: Logger, redisUrl: string, metrics = new Metrics()): Promise<Stop> {
  const redis = createRedis(redisUrl, { name: 'worker', logger });
  await connect(redis, redisUrl, logger);
  const worker = new Worker({ redis, logger, config, registry: createRegistry(config), metrics });
  await worker.start();
  return async () => {
    await worker.close();
    await closeRedis(redis);
  };
}

async function connect(redis: ReturnType<typeof createRedis>, url: string, logger: Logger): Promise<void> {
  const slow = setTimeout(() => logger.warn({ url: redactUrl(url) }, 'waiting for Redis'), 1000);
  try {
    await ensureConnected(redis);
  } finally {
    clearTimeout(slow);
  }
}

/** Redis URLs may carry a password; logs never show it. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
