import type { RouterContext, RouterMiddleware } from '@koa/router';
import type { Auth, Principal } from '../auth/auth.js';
import { bearerToken } from '../auth/auth.js';
import { authorizeFeed, authorizeWatch } from '../auth/watch-auth.js';
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
    /** Who the guard let in (anonymous when auth is off). */
    principal?: Principal;
  }
}

/**
 * Who may call a route; every route declares one (src/http/route-access.ts). With auth off,
 * every level lets everyone in, and `start` still limits starts per client address.
 * - `public`: anyone (documentation, metrics).
 * - `api`: an API token (listing, cancelling).
 * - `start`: an API token, then the start rate limit per API token (or per address without auth).
 * - `watch`: the `:id` task's watch token or an API token, in the Authorization header only (a
 *   token in a URL ends up in proxy logs and history).
 * - `watch-stream`: the same, also as `?token=` (SSE: EventSource cannot set headers).
 * - `feed-stream`: the feed of `?tag` (without it, of all tasks): an API token or a feed token for
 *   that feed (a tag token for a tag's feed), in the header or as `?token=`.
 */
export const ACCESS_LEVELS = ['public', 'api', 'start', 'watch', 'watch-stream', 'feed-stream'] as const;
export type Access = (typeof ACCESS_LEVELS)[number];

const ACCESS = Symbol('access');

/** A route's first middleware: it enforces `access`, and names it for assertAccessDeclared. */
export type Guard = RouterMiddleware & { readonly [ACCESS]: Access };

/** The access level a route's first middleware enforces, or undefined when it is no guard. */
export function accessOf(middleware: unknown): Access | undefined {
  return typeof middleware === 'function' ? (middleware as Partial<Guard>)[ACCESS] : undefined;
}

export function guardFor(access: Access, deps: GuardDeps): Guard {
  const check = checkFor(access, deps);
  const guard: RouterMiddleware = async (ctx, next) => {
    check(ctx);
    await next();
  };
  return Object.assign(guard, { [ACCESS]: access });
}

type Check = (ctx: RouterContext) => void;

function checkFor(access: Access, { auth, startLimiter, trustProxyHops }: GuardDeps): Check {
  const apiToken: Check = (ctx) => {
    ctx.state.principal = auth.requireApi(bearerToken(ctx.get('authorization') || undefined));
  };
  const watchToken = (via: 'header' | 'header-or-query'): Check => (ctx) => {
    ctx.state.principal = authorizeWatch(auth, {
      taskId: ctx.params.id ?? '',
      authorization: ctx.get('authorization') || undefined,
      queryToken: via === 'header-or-query' ? queryParam(ctx.query, 'token') : undefined,
    });
  };
  const checks: Record<Access, Check> = {
    public: () => undefined,
    api: apiToken,
    start: (ctx) => {
      apiToken(ctx);
      const p = ctx.state.principal;
      startLimiter.take(p?.kind === 'api' ? `api:${p.index}` : `ip:${clientAddress(ctx.req, trustProxyHops)}`);
    },
    watch: watchToken('header'),
    'watch-stream': watchToken('header-or-query'),
    'feed-stream': (ctx) => {
      ctx.state.principal = authorizeFeed(auth, {
        tag: queryParam(ctx.query, 'tag'),
        authorization: ctx.get('authorization') || undefined,
        queryToken: queryParam(ctx.query, 'token'),
      });
    },
  };
  return checks[access];
}
