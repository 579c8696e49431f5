import type { Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import { Auth } from './auth/auth.js';
import { listenError, type Config } from './config.js';
import type { Logger } from './logger.js';
import { HealthProbes } from './health/probes.js';
import { createApp } from './http/app.js';
import { createHttpServer } from './http/http-server.js';
import { RateLimiter } from './http/rate-limit.js';
import { Hub } from './hub/hub.js';
import { Metrics } from './metrics/metrics.js';
import { ensureGroup } from './store/consumer-group.js';
import type { Redis } from './store/redis.js';
import { FeedStore } from './store/feed-store.js';
import { ConcurrencyLimits } from './tasks/concurrency.js';
import { TaskStore } from './store/task-store.js';
import type { TaskRegistry } from './tasks/registry.js';
import { SseStreams, sseRouter } from './sse/sse-route.js';
import { WsServer } from './ws/ws-server.js';

export interface GatewayDeps {
  redis: Redis;
  logger: Logger;
  config: Config;
  registry: TaskRegistry;
  /** Where this gateway's metrics go; a process running gateway and worker shares one. */
  metrics?: Metrics;
}

export interface Gateway {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  readonly ws: WsServer;
  readonly hub: Hub;
  readonly health: HealthProbes;
  readonly metrics: Metrics;
  close(): Promise<void>;
}

/** Capped by the kernel (net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;

/** HTTP API, static page and WebSocket watch endpoint on one port. The caller owns `redis`. */
export async function startGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config, logger } = deps;
  const store = new TaskStore(deps.redis, { ttlS: config.TASK_TTL_S, idempotencyTtlS: config.IDEMPOTENCY_TTL_S });
  const feeds = new FeedStore(deps.redis);
  // Readiness requires the group; creating it here (from entry 0) loses no command.
  await ensureGroup(deps.redis);
  const health = new HealthProbes({ redis: deps.redis });
  const metrics = deps.metrics ?? new Metrics();
  metrics.trackQueue(deps.redis, logger);
  const hub = new Hub({ redis: deps.redis, logger, blockMs: config.HUB_BLOCK_MS });
  await hub.start();
  metrics.trackHub(hub);
  const auth = new Auth(config);
  const startLimiter = new RateLimiter({ burst: config.START_BURST, refillPerS: config.START_REFILL_PER_S });
  const guards = { auth, startLimiter, trustProxyHops: config.TRUST_PROXY_HOPS };
  const sse = new SseStreams();
  const app = createApp({
    store, registry: deps.registry, logger, health, metrics, guards, scheduleMaxAheadS: config.SCHEDULE_MAX_AHEAD_S,
    limits: new ConcurrencyLimits(deps.registry, config.TASK_CONCURRENCY), streams: [sseRouter({ hub, store, feeds, logger, metrics, config, streams: sse }, guards)],
  });
  const server = createHttpServer(app.callback(), config, logger);
  const ws = new WsServer({ server, hub, store, feeds, logger, metrics, config, auth });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // A reconnect storm opens thousands of sockets at once: Node's default backlog (511) would
      // drop their SYNs and make clients wait for TCP retransmits (1 s, 3 s, 7 s...).
      server.listen({ port: config.PORT, host: config.HOST, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await ws.close();
    await sse.close();
    await hub.close();
    throw listenError(err, config.HOST);
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
  logger.info({ url, port, auth: auth.enabled }, 'gateway listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      health.drain();
      if (config.SHUTDOWN_READY_DELAY_MS > 0) await delay(config.SHUTDOWN_READY_DELAY_MS);
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // In-flight requests get SHUTDOWN_GRACE_MS to finish; then their connections are cut.
      const cut = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_GRACE_MS);
      // Together: each waits up to 2 s for sockets that do not read, and must not hold the other.
      await Promise.all([ws.close(), sse.close()]);
      // The ended SSE streams leave keep-alive connections that are idle now.
      server.closeIdleConnections();
      await stopped;
      clearTimeout(cut);
      await hub.close();
      logger.info('gateway stopped');
    })());
  return { server, port, url, ws, hub, health, metrics, close };
}
