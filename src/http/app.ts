import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import serve from 'koa-static';
import type { HealthProbes } from '../health/probes.js';
import type { Logger } from '../logger.js';
import type { TaskStore } from '../store/task-store.js';
import type { TaskRegistry } from '../worker/registry.js';
import { healthMiddleware } from './health-routes.js';
import { errorsAndLogging } from './middleware.js';
import { tasksRouter } from './tasks-routes.js';
import { sseRouter, type SseDeps } from '../sse/sse-route.js';

export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));

export interface AppDeps {
  store: TaskStore;
  registry: TaskRegistry;
  logger: Logger;
  /** Probes served at /livez, /readyz, /healthz (ahead of logging: probes are frequent). */
  health?: HealthProbes;
  /** Serves GET /sse/task/<id> when given (the gateway always gives it). */
  sse?: SseDeps;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  const router = tasksRouter(deps);
  if (deps.health) app.use(healthMiddleware(deps.health));
  app.use(errorsAndLogging(deps.logger));
  app.use(router.routes());
  app.use(router.allowedMethods());
  if (deps.sse) app.use(sseRouter(deps.sse).routes());
  app.use(serve(WEB_ROOT, { hidden: false, index: 'index.html' }));
  return app;
}
