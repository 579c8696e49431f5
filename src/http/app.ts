import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import Koa from 'koa';
import serve from 'koa-static';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { TaskStore } from '../store/task-store.js';
import type { TaskRegistry } from '../worker/registry.js';
import { errorsAndLogging } from './middleware.js';
import { opsRouter } from './ops-routes.js';
import { tasksRouter } from './tasks-routes.js';

export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));

export interface AppDeps {
  store: TaskStore;
  registry: TaskRegistry;
  logger: Logger;
  metrics: Metrics;
}

/** Every HTTP route in one router; test/http/openapi.test.ts checks each is in /openapi.json. */
export function createRouter(deps: AppDeps): Router {
  const router = new Router();
  for (const routes of [tasksRouter(deps), opsRouter(deps)]) router.use(routes.routes());
  return router;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  const router = createRouter(deps);
  app.use(errorsAndLogging(deps.logger, deps.metrics));
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use(serve(WEB_ROOT, { hidden: false, index: 'index.html' }));
  return app;
}
