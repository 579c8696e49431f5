import type { Middleware } from 'koa';
import type { HealthProbes } from '../health/probes.js';

/** Serves GET/HEAD /livez, /readyz and /healthz before any other route (no auth, no body). */
export function healthMiddleware(probes: HealthProbes): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    const reply = await probes.probe(ctx.path);
    if (!reply) return next();
    ctx.set('Cache-Control', 'no-store');
    ctx.status = reply.status;
    ctx.body = reply.body;
  };
}
