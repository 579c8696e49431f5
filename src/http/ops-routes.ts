import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors.js';
import type { Metrics } from '../metrics/metrics.js';
import type { TaskRegistry } from '../tasks/registry.js';
import type { GuardDeps } from './guards.js';
import { AccessRouter } from './route-access.js';

const OWN_DIR = fileURLToPath(new URL('./docs/', import.meta.url));
const SWAGGER_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The files /docs may serve, by name: a fixed list, so no request path ever reaches the file system. */
const DOC_FILES: Record<string, string> = {
  'init.js': join(OWN_DIR, 'init.js'),
  'swagger-ui.css': join(SWAGGER_DIR, 'swagger-ui.css'),
  'swagger-ui-bundle.js': join(SWAGGER_DIR, 'swagger-ui-bundle.js'),
  'favicon-32x32.png': join(SWAGGER_DIR, 'favicon-32x32.png'),
};

export interface OpsRouteDeps {
  registry: TaskRegistry;
  metrics: Metrics;
  guards: GuardDeps;
}

/**
 * /openapi.json, the /docs page (Swagger UI from node_modules, works offline) and /metrics: all
 * public. The document is built on its first request, then served as built (the registry does not
 * change while the gateway runs); its generator is loaded then too, not at start.
 */
export function opsRouter({ registry, metrics, guards }: OpsRouteDeps): AccessRouter {
  const router = new AccessRouter(guards);
  let document: string | undefined;

  router.get('/openapi.json', 'public', async (ctx) => {
    document ??= JSON.stringify((await import('./openapi.js')).buildOpenApiDocument(registry));
    ctx.type = 'application/json';
    ctx.body = document;
  });

  router.get('/docs', 'public', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = createReadStream(join(OWN_DIR, 'index.html'));
  });

  router.get('/docs/:file', 'public', (ctx) => {
    const name = ctx.params.file!;
    const file = Object.hasOwn(DOC_FILES, name) ? DOC_FILES[name] : undefined;
    if (!file) throw new AppError('NOT_FOUND', 'no such documentation file');
    ctx.type = extname(file);
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = createReadStream(file);
  });

  router.get('/metrics', 'public', async (ctx) => {
    const { contentType, body } = await metrics.text();
    ctx.type = contentType;
    ctx.body = body;
  });

  return router;
}
