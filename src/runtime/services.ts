import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startGateway } from '../gateway.js';
import { startHealthServer } from '../health/health-server.js';
import { HealthProbes } from '../health/probes.js';
import { Metrics } from '../metrics/metrics.js';
import { closeRedis, createRedis, type FeedSettings, type RedisTarget } from '../store/redis.js';
import { waitForRedis } from '../store/wait-for-redis.js';
import type { ReplicaWait } from '../store/replication.js';
import { DEFAULT_REDIS_URL } from './dev-redis.js';
import { createRegistry } from '../tasks/builtin/index.js';
import { loadTaskModules } from '../tasks/task-modules.js';
import { Worker } from '../worker/worker.js';
import { ConcurrencyLimits } from '../tasks/concurrency.js';
import type { Stop } from './main.js';

/** A gateway with its own Redis client; the returned Stop closes both, in reverse order. */
export async function runGateway(config: Config, logger: Logger, redisUrl: RedisTarget, metrics = new Metrics()): Promise<Stop> {
  const registry = await loadTaskModules(createRegistry(config), config.TASK_MODULES);
  const redis = createRedis(redisUrl, {
    name: 'gateway',
    offlineQueue: false,
    logger,
    ...storeSettings(config),
    readFromReplicas: config.REDIS_CLUSTER_WAIT_REPLICAS > 0,
  });
  await waitForRedis(redis, redisUrl, logger, config.REDIS_CLUSTER_CONNECT_TIMEOUT_MS);
  const gateway = await startGateway({ redis, logger, config, registry, metrics });
  return async () => {
    await gateway.close();
    await closeRedis(redis);
  };
}

/**
 * A worker with its own Redis client and, unless `healthServer` is false (the combined process,
 * whose gateway already serves the probes and metrics), a probe and /metrics server on
 * HEALTH_PORT. The returned Stop marks it not ready, drains it, then closes the probe server and
 * the client.
 */
export async function runWorker(
  config: Config,
  logger: Logger,
  redisUrl: RedisTarget,
  options: { healthServer?: boolean; metrics?: Metrics } = {},
): Promise<Stop> {
  const registry = await loadTaskModules(createRegistry(config), config.TASK_MODULES);
  // Before connecting: a TASK_CONCURRENCY naming an unknown type is a configuration error.
  const limits = new ConcurrencyLimits(registry, config.TASK_CONCURRENCY);
  const metrics = options.metrics ?? new Metrics();
  const redis = createRedis(redisUrl, { name: 'worker', logger, ...storeSettings(config) });
  await waitForRedis(redis, redisUrl, logger, config.REDIS_CLUSTER_CONNECT_TIMEOUT_MS);
  const probes = new HealthProbes({ redis });
  const health =
    options.healthServer === false
      ? undefined
      : await startHealthServer({ probes, metrics, host: config.HOST, port: config.HEALTH_PORT, logger });
  const worker = new Worker({ redis, logger, config, registry, metrics, limits });
  try {
    await worker.start();
  } catch (err) {
    await health?.close();
    throw err;
  }
  return async () => {
    probes.drain();
    await worker.close();
    await health?.close();
    await closeRedis(redis);
  };
}

/**
 * The feed bounds the Lua scripts apply (FEED_MAXLEN, FEED_PROGRESS_MS, TASK_TTL_S for tag feeds)
 * and, in cluster mode, the write confirmation.
 */
function storeSettings(config: Config): { feed: FeedSettings; replicaWait: ReplicaWait } {
  return {
    feed: { maxLen: config.FEED_MAXLEN, progressMs: config.FEED_PROGRESS_MS, tagTtlS: config.TASK_TTL_S },
    replicaWait: { replicas: config.REDIS_CLUSTER_WAIT_REPLICAS, timeoutMs: config.REDIS_CLUSTER_WAIT_TIMEOUT_MS },
  };
}

/** Where the gateway and worker find Redis: the cluster of REDIS_CLUSTER_NODES, else REDIS_URL (default local). */
export function redisTarget(config: Config): RedisTarget {
  return config.REDIS_CLUSTER_NODES ? { cluster: config.REDIS_CLUSTER_NODES } : (config.REDIS_URL ?? DEFAULT_REDIS_URL);
}
