import type Router from '@koa/router';
import { Auth } from '../../src/auth/auth.js';
import { createRouter } from '../../src/http/app.js';
import { RateLimiter } from '../../src/http/rate-limit.js';
import { Hub } from '../../src/hub/hub.js';
import { createLogger } from '../../src/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { SseStreams, sseRouter } from '../../src/sse/sse-route.js';
import { closeRedis, createRedis } from '../../src/store/redis.js';
import { FeedStore } from '../../src/store/feed-store.js';
import { TaskStore } from '../../src/store/task-store.js';
import type { TaskRegistry } from '../../src/tasks/registry.js';
import type { Scope } from './processes.js';

/** The gateway's router, SSE included, for inspecting its routes: its Redis client never connects. */
export function appRouter(t: Scope, registry: TaskRegistry): Router {
  const redis = createRedis('redis://127.0.0.1:1', { name: 'unused' });
  t.after(() => closeRedis(redis));
  const logger = createLogger('silent', 'test');
  const store = new TaskStore(redis, { ttlS: 60 });
  const metrics = new Metrics();
  const config = { WS_PING_MS: 1000, WS_MAX_BUFFERED_BYTES: 1 << 20, WS_REPLAY_STALL_MS: 10_000 };
  const hub = new Hub({ redis, logger });
  t.after(() => hub.close());
  const auth = new Auth({ API_TOKENS: [], TOKEN_SECRET: undefined, WATCH_TOKEN_TTL_S: 60 });
  const guards = { auth, startLimiter: new RateLimiter({ burst: 1, refillPerS: 1 }), trustProxyHops: 0 };
  const sse = sseRouter({ hub, store, feeds: new FeedStore(redis), logger, metrics, config, streams: new SseStreams() }, guards);
  return createRouter({ store, registry, logger, metrics, guards, streams: [sse] });
}
