import Router, { type RouterMiddleware } from '@koa/router';
import { accessOf, guardFor, type Access, type GuardDeps } from './guards.js';

/**
 * The one way routes are registered: each route names its access level, and that level's guard
 * runs before its handlers. It offers no way to add a route without one.
 */
export class AccessRouter {
  private readonly router: Router;

  /** `options.strict` (a trailing slash counts) and `options.sensitive` (case counts) as @koa/router's. */
  constructor(
    private readonly guards: GuardDeps,
    options: { strict?: boolean; sensitive?: boolean } = {},
  ) {
    this.router = new Router(options);
  }

  get(path: string, access: Access, ...handlers: RouterMiddleware[]): this {
    this.router.get(path, guardFor(access, this.guards), ...handlers);
    return this;
  }

  post(path: string, access: Access, ...handlers: RouterMiddleware[]): this {
    this.router.post(path, guardFor(access, this.guards), ...handlers);
    return this;
  }

  /** The middleware to mount, as Router#routes(). */
  routes(): ReturnType<Router['routes']> {
    return this.router.routes();
  }
}

export class RouteAccessError extends Error {
  readonly code = 'ROUTE_ACCESS_UNDECLARED';
}

/** Each route of `router` with the access level its guard enforces (undefined: none declared). */
export function routeAccess(router: Router): { methods: string[]; path: string; access: Access | undefined }[] {
  return router.stack.map((layer) => ({ methods: layer.methods, path: String(layer.path), access: accessOf(layer.stack[0]) }));
}

/**
 * Deny by default: throws a RouteAccessError naming every layer of `router` (a route or a
 * router-level middleware) that was not registered through an AccessRouter, so an app with an
 * undeclared route never starts.
 */
export function assertAccessDeclared(router: Router): void {
  const undeclared = routeAccess(router).filter((route) => route.access === undefined);
  if (undeclared.length === 0) return;
  const names = undeclared.map((route) => `${route.methods.join(',') || '(middleware)'} ${route.path}`);
  throw new RouteAccessError(`routes without a declared access level: ${names.join('; ')}`);
}
