import Router, { type RouterMiddleware } from '@koa/router';
import type { Auth, Principal } from '../auth/auth.js';
import { bearerToken } from '../auth/auth.js';
import { authorizeWatch } from '../auth/watch-auth.js';
import { clientAddress } from './client-address.js';
import { queryParam } from './query.js';
import type { RateLimiter } from './rate-limit.js';

export interface GuardDeps {
  auth: Auth;
  startLimiter: RateLimiter;
  trustProxyHops: number;
}

declare module 'koa' {
  interface DefaultState {
    /** Who the guards let in (anonymous when auth is off). */
    principal?: Principal;
  }
}

/** Any route that needs an API token when auth is on: starting, cancelling, listing. */
export const requireApiToken =
  (auth: Auth): RouterMiddleware =>
  async (ctx, next) => {
    ctx.state.principal = auth.requireApi(bearerToken(ctx.get('authorization') || undefined));
    await next();
  };

/**
 * Any route that streams or reads one task (`:id`): its watch token or an API token. `query`
 * also accepts `?token=` (SSE, where EventSource cannot set headers); plain GETs take the header only.
 */
export const requireWatchToken =
  (auth: Auth, via: 'header' | 'header-or-query'): RouterMiddleware =>
  async (ctx, next) => {
    ctx.state.principal = authorizeWatch(auth, {
      taskId: ctx.params.id ?? '',
      authorization: ctx.get('authorization') || undefined,
      queryToken: via === 'header-or-query' ? queryParam(ctx.query, 'token') : undefined,
    });
    await next();
  };

/** Task starts per API token, or per client address when the caller has none. */
export const limitStarts =
  ({ startLimiter, trustProxyHops }: GuardDeps): RouterMiddleware =>
  async (ctx, next) => {
    const p = ctx.state.principal;
    startLimiter.take(p?.kind === 'api' ? `api:${p.index}` : `ip:${clientAddress(ctx.req, trustProxyHops)}`);
    await next();
  };

/**
 * The access table: mounted before every other router, with the same path syntax and matching
 * rules (case-insensitive, optional trailing slash), so a guard covers exactly the route it names.
 * A new route that starts, cancels, lists or watches tasks gets its line here.
 */
export function guardRouter(deps: GuardDeps): Router {
  const router = new Router();
  const api = requireApiToken(deps.auth);
  const start = [api, limitStarts(deps)];
  router.post('/tasks', ...start);
  router.post('/start-task', ...start);
  router.post('/tasks/:id/cancel', api);
  router.get('/tasks', api);
  router.get('/tasks/:id', requireWatchToken(deps.auth, 'header'));
  router.get('/tasks/:id/events', requireWatchToken(deps.auth, 'header'));
  router.get('/tasks/:id/output', requireWatchToken(deps.auth, 'header'));
  router.get('/sse/task/:id', requireWatchToken(deps.auth, 'header-or-query'));
  return router;
}
