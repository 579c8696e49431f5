import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import Router from '@koa/router';
import Koa from 'koa';
import { Auth } from '../../src/auth/auth.js';
import { signWatchToken } from '../../src/auth/tokens.js';
import { ACCESS_LEVELS, type Access } from '../../src/http/guards.js';
import { errorsAndLogging } from '../../src/http/middleware.js';
import { RateLimiter } from '../../src/http/rate-limit.js';
import { AccessRouter, assertAccessDeclared, RouteAccessError, routeAccess } from '../../src/http/route-access.js';
import { createLogger } from '../../src/logger.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { createRegistry } from '../../src/tasks/builtin/index.js';
import { appRouter } from '../helpers/app-router.js';
import { request } from '../helpers/http.js';

/** Every route the gateway serves, with the access it must keep (README "Route access"). */
const EXPECTED: Record<string, Access> = {
  'POST /tasks': 'start',
  'POST /start-task': 'start',
  'GET /tasks': 'api',
  'GET /tasks/:id': 'watch',
  'POST /tasks/:id/cancel': 'api',
  'POST /tasks/:id/watch-token': 'api',
  'GET /tasks/:id/events': 'watch',
  'GET /tasks/:id/output': 'watch',
  'GET /sse/task/:id': 'watch-stream',
  'GET /sse/feed': 'feed-stream',
  // A plain GET of a WebSocket endpoint (426), with the access of its handshake.
  'GET /ws/task/:id': 'watch-stream',
  'GET /ws/feed': 'feed-stream',
  'GET /ws': 'public',
  'POST /feed-tokens': 'api',
  'GET /openapi.json': 'public',
  'GET /docs': 'public',
  'GET /docs/:file': 'public',
  'GET /metrics': 'public',
};

const SECRET = 'route-access-secret-0123456789abcdef';
const API = 'tok-route-access-91ab';
const TASK = '5f0c1c1e-8a57-4d5b-9d5c-0a6b7e1f2a3b';

const guards = (burst = 100) => ({
  auth: new Auth({ API_TOKENS: [API], TOKEN_SECRET: SECRET, WATCH_TOKEN_TTL_S: 60 }),
  startLimiter: new RateLimiter({ burst, refillPerS: 0.001 }),
  trustProxyHops: 0,
});

/** An app serving `router` the way the gateway does (errors as JSON); closed when the test ends. */
async function serve(t: TestContext, router: Router): Promise<string> {
  const app = new Koa();
  app.use(errorsAndLogging(createLogger('silent', 'test'), new Metrics()));
  app.use(router.routes());
  const server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** One GET route per access level at /<level>/:id, answering 200 with the principal the guard set. */
function routerOfEveryLevel(burst?: number): Router {
  const routes = new AccessRouter(guards(burst));
  for (const access of ACCESS_LEVELS) routes.get(`/${access}/:id`, access, (ctx) => (ctx.body = { principal: ctx.state.principal ?? null }));
  const router = new Router();
  router.use(routes.routes());
  return router;
}

describe('route access: declared with each route, denied by default', () => {
  test('every route of the app’s routers declares its access level, the one it has always had', (t) => {
    const routes = routeAccess(appRouter(t, createRegistry({ STAGE_MS: 5000 })));
    const got: Record<string, Access | undefined> = {};
    for (const route of routes) {
      for (const method of route.methods.filter((m) => m !== 'HEAD')) got[`${method} ${route.path}`] = route.access;
    }
    for (const [route, access] of Object.entries(got)) assert.ok(access !== undefined, `${route} declares no access level`);
    assert.deepEqual(got, EXPECTED);
  });

  test('a router with a route or middleware added around the helper does not build', () => {
    const declared = new AccessRouter(guards()).get('/fine', 'public', (ctx) => (ctx.body = 'ok'));
    const raw = new Router();
    raw.get('/admin/:id', (ctx) => (ctx.body = 'secret'));
    const app = new Router();
    app.use(declared.routes());
    assert.doesNotThrow(() => assertAccessDeclared(app));
    app.use(raw.routes());
    assert.throws(() => assertAccessDeclared(app), (err: unknown) => {
      assert.ok(err instanceof RouteAccessError);
      assert.equal(err.code, 'ROUTE_ACCESS_UNDECLARED');
      assert.match(err.message, /HEAD,GET \/admin\/:id/);
      assert.doesNotMatch(err.message, /\/fine/);
      return true;
    });
    const withMiddleware = new Router();
    withMiddleware.use(declared.routes());
    withMiddleware.use(async (_ctx, next) => next());
    assert.throws(() => assertAccessDeclared(withMiddleware), /\(middleware\)/);
  });

  test('with auth on, each level lets in exactly whom it names', async (t) => {
    const base = await serve(t, routerOfEveryLevel());
    const watchToken = signWatchToken(SECRET, TASK, Math.floor(Date.now() / 1000) + 60);
    const status = async (access: Access, how: 'none' | 'api' | 'watch' | 'watch-query') => {
      const query = how === 'watch-query' ? `?token=${encodeURIComponent(watchToken)}` : '';
      const token = how === 'api' ? API : how === 'watch' ? watchToken : undefined;
      const res = await request(`${base}/${access}/${TASK}${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      if (res.status === 401) assert.equal(res.body.error.code, 'UNAUTHORIZED');
      return res.status;
    };
    const table: Record<Access, Record<'none' | 'api' | 'watch' | 'watch-query', number>> = {
      public: { none: 200, api: 200, watch: 200, 'watch-query': 200 },
      api: { none: 401, api: 200, watch: 401, 'watch-query': 401 },
      start: { none: 401, api: 200, watch: 401, 'watch-query': 401 },
      watch: { none: 401, api: 200, watch: 200, 'watch-query': 401 },
      'watch-stream': { none: 401, api: 200, watch: 200, 'watch-query': 200 },
      // No ?tag: the all-tasks feed; an API token (feed tokens: test/http/feed-routes.test.ts).
      'feed-stream': { none: 401, api: 200, watch: 401, 'watch-query': 401 },
    };
    for (const access of ACCESS_LEVELS) {
      for (const how of ['none', 'api', 'watch', 'watch-query'] as const) {
        assert.equal(await status(access, how), table[access][how], `${access} with ${how}`);
      }
    }
    const api = await request(`${base}/api/${TASK}`, { headers: { authorization: `Bearer ${API}` } });
    assert.deepEqual(api.body.principal, { kind: 'api', index: 0 });
    const watch = await request(`${base}/watch/${TASK}`, { headers: { authorization: `Bearer ${watchToken}` } });
    assert.deepEqual(watch.body.principal, { kind: 'watch', taskId: TASK });
  });

  test('start: the API token first, then the start rate limit; the other levels take no start token', async (t) => {
    const base = await serve(t, routerOfEveryLevel(2));
    const call = (access: Access, token?: string) =>
      request(`${base}/${access}/${TASK}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    assert.equal((await call('start')).status, 401, 'refused for its token: no start taken');
    for (const access of ['api', 'watch', 'watch-stream'] as const) assert.equal((await call(access, API)).status, 200);
    assert.equal((await call('start', API)).status, 200);
    assert.equal((await call('start', API)).status, 200);
    const limited = await call('start', API);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });
});
