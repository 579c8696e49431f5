import type { Middleware } from 'koa';
import { PROBE_METHODS, PROBE_PATHS, wrongMethod, type HealthProbes } from '../health/probes.js';

const PROBES: ReadonlySet<string> = new Set(PROBE_PATHS);

/**
 * Serves GET/HEAD /livez, /readyz and /healthz before any other route (no auth, no body, no log
 * line); another method on them is 405 with `Allow`, as on a worker's health port.
 */
export function healthMiddleware(probes: HealthProbes): Middleware {
  return async (ctx, next) => {
    if (!PROBES.has(ctx.path)) return next();
    ctx.set('Cache-Control', 'no-store');
    if (!PROBE_METHODS.includes(ctx.method)) {
      const answer = wrongMethod();
      ctx.set(answer.headers);
      ctx.status = answer.status;
      ctx.body = answer.body;
      return;
    }
    const reply = await probes.probe(ctx.path);
    if (!reply) return next();
    ctx.status = reply.status;
    ctx.body = reply.body;
  };
}
