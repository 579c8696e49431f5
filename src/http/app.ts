import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import serve from 'koa-static';
import type { Logger } from '../logger.js';
import type { TaskStore } from '../store/task-store.js';
import type { TaskRegistry } from '../worker/registry.js';
import { errorsAndLogging } from './middleware.js';
import { tasksRouter } from './tasks-routes.js';

export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));
/** The page's script bundle, built by `npm run build:web` (scripts/build-web.ts). */
export const BUNDLE_ROOT = fileURLToPath(new URL('../../dist/public/', import.meta.url));

export interface AppDeps {
  store: TaskStore;
  registry: TaskRegistry;
  logger: Logger;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  const router = tasksRouter(deps);
  app.use(errorsAndLogging(deps.logger));
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use(serve(WEB_ROOT, { hidden: false, index: 'index.html' }));
  app.use(serve(BUNDLE_ROOT, { hidden: false, index: false }));
  if (!existsSync(`${BUNDLE_ROOT}app.js`)) {
    deps.logger.warn({ dir: BUNDLE_ROOT }, 'web bundle missing: the page will not work until `npm run build:web` runs');
  }
  return app;
}
