import { ConfigError } from '../config.js';
import type { Logger } from '../logger.js';
import { ensureConnected, type Redis, type RedisTarget } from './redis.js';

/** While Redis does not answer: a first warn line after 1 s, then one every WAIT_LOG_EVERY_MS. */
const WAIT_LOG_EVERY_MS = 5000;

/**
 * Waits for Redis, saying so in the log (with the last connection error): as long as it takes for
 * one server (it may come later, e.g. under docker compose); a cluster whose seeds do not answer
 * within `clusterTimeoutMs` (REDIS_CLUSTER_CONNECT_TIMEOUT_MS) is a configuration error.
 */
export async function waitForRedis(redis: Redis, target: RedisTarget, logger: Logger, clusterTimeoutMs: number): Promise<void> {
  const since = Date.now();
  let lastError: string | undefined;
  const onError = (err: Error) => (lastError = err.message);
  redis.on('error', onError);
  let repeat: NodeJS.Timeout | undefined;
  let giveUp: NodeJS.Timeout | undefined;
  const where = describeTarget(target);
  const say = () => logger.warn({ url: where, waited_s: Math.round((Date.now() - since) / 1000), err: lastError }, 'waiting for Redis');
  const first = setTimeout(() => {
    say();
    repeat = setInterval(say, WAIT_LOG_EVERY_MS);
  }, 1000);
  try {
    const ready = ensureConnected(redis);
    if (typeof target === 'string') return await ready;
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => {
        giveUp = setTimeout(() => {
          redis.disconnect();
          reject(new ConfigError(`REDIS_CLUSTER_NODES=${JSON.stringify(where)}: no cluster answered within ${clusterTimeoutMs} ms (${lastError ?? 'no reply'})`));
        }, clusterTimeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(first);
    clearTimeout(giveUp);
    clearInterval(repeat);
    redis.off('error', onError);
  }
}

/** The target as logs show it: a URL without its password, or the seed list. */
export function describeTarget(target: RedisTarget): string {
  return typeof target === 'string' ? redactUrl(target) : target.cluster.map((n) => `${n.host}:${n.port}`).join(',');
}

/** Redis URLs may carry a password; logs never show it. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
