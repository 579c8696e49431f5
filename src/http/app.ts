import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import Koa from 'koa';
import type { HealthProbes } from '../health/probes.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { TaskStore } from '../store/task-store.js';
import type { TaskRegistry } from '../tasks/registry.js';
import type { GuardDeps } from './guards.js';
import { healthMiddleware } from './health-routes.js';
import { errorsAndLogging } from './middleware.js';
import { securityHeaders } from './security-headers.js';
import { staticFiles } from './static-files.js';
import { opsRouter } from './ops-routes.js';
import { assertAccessDeclared, type AccessRouter } from './route-access.js';
import { tasksRouter } from './tasks-routes.js';
import { upgradeRouter } from './upgrade-routes.js';
import type { ConcurrencyLimits } from '../tasks/concurrency.js';
import { feedRouter } from './feed-routes.js';

export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));
/** The page's script bundle, built by `npm run build:web` (scripts/build-web.ts). */
export const BUNDLE_ROOT = fileURLToPath(new URL('../../dist/public/', import.meta.url));

export interface AppDeps {
  store: TaskStore;
  registry: TaskRegistry;
  logger: Logger;
  metrics: Metrics;
  /** Probes served at /livez, /readyz, /healthz (ahead of logging: probes are frequent). */
  health?: HealthProbes;
  /** Routes mounted beside the API's, each with its declared access: the gateway gives SSE's (src/sse). */
  streams?: AccessRouter[];
  /** Authentication, start rate limit and proxy trust (README "Threat model"). */
  guards: GuardDeps;
  /** SCHEDULE_MAX_AHEAD_S (default 30 days). */
  scheduleMaxAheadS?: number;
  /** The task types' concurrency limits (with TASK_CONCURRENCY); default: the registry's. */
  limits?: ConcurrencyLimits;
}

/**
 * Every HTTP route in one router, each with the access level it declared (AccessRouter); throws
 * RouteAccessError when one has none. test/http/openapi.test.ts checks each is in /openapi.json.
 */
export function createRouter(deps: Omit<AppDeps, 'health'>): Router {
  const router = new Router();
  const routers = [tasksRouter(deps), feedRouter(deps.guards), opsRouter(deps), upgradeRouter(deps.guards), ...(deps.streams ?? [])];
  for (const routes of routers) router.use(routes.routes());
  assertAccessDeclared(router);
  return router;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  // ctx.ip then agrees with clientAddress(): the TRUST_PROXY_HOPS-th X-Forwarded-For entry from the right.
  app.proxy = deps.guards.trustProxyHops > 0;
  app.maxIpsCount = deps.guards.trustProxyHops;
  app.silent = true;
  const router = createRouter(deps);
  app.use(securityHeaders());
  if (deps.health) app.use(healthMiddleware(deps.health));
  app.use(errorsAndLogging(deps.logger, deps.metrics));
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use(staticFiles(WEB_ROOT));
  app.use(staticFiles(BUNDLE_ROOT, { index: false }));
  if (!existsSync(`${BUNDLE_ROOT}app.js`)) {
    deps.logger.warn({ dir: BUNDLE_ROOT }, 'web bundle missing: the page will not work until `npm run build:web` runs');
  }
  return app;
}
