import { resolve } from 'node:path';
import { Metrics } from '../metrics/metrics.js';
import { devRedis } from '../runtime/dev-redis.js';
import { runMain } from '../runtime/main.js';
import { redisTarget, runGateway, runWorker } from '../runtime/services.js';
import { logStrayRejections } from '../runtime/stray-rejections.js';
import { describeTarget } from '../store/wait-for-redis.js';

/**
 * Gateway and worker in one process; without REDIS_URL or REDIS_CLUSTER_NODES it finds or starts
 * a local Redis.
 */
runMain('taskcast', async ({ config, logger }) => {
  logStrayRejections(logger);
  const redis = config.REDIS_URL || config.REDIS_CLUSTER_NODES
    ? { url: redisTarget(config), close: async () => undefined }
    : await devRedis(logger, {
        dataDir: resolve(config.DEV_REDIS_DIR),
        port: config.DEV_REDIS_PORT,
        probePort: config.DEV_REDIS_PROBE_PORT,
      });
  logger.info({ redis: describeTarget(redis.url) }, 'using Redis');
  try {
    // One registry for both, so the gateway's /metrics shows the worker's task metrics too.
    const metrics = new Metrics();
    const stopWorker = await runWorker(config, logger, redis.url, { healthServer: false, metrics });
    const stopGateway = await runGateway(config, logger, redis.url, metrics);
    return async () => {
      await stopGateway();
      await stopWorker();
      await redis.close();
    };
  } catch (err) {
    await redis.close();
    throw err;
  }
});
