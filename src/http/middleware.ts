import type { Middleware } from 'koa';
import { v4 as uuidv4 } from 'uuid';
import { AppError, errorBody, toAppError } from '../errors.js';
import { lazyChild, type Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';

/** An incoming X-Request-Id is kept when it is short printable ASCII; otherwise a new one is made. */
const REQUEST_ID_RE = /^[\x21-\x7e]{1,128}$/;

/** The `route` label of a request that matched no route (static files, 404s): never the raw path. */
export const UNMATCHED_ROUTE = '(unmatched)';

/**
 * One log line per request, every error turned into `{error: {code, message}}`, and the request
 * duration by route pattern. The log line carries the path without its query string, so query
 * tokens never reach the logs.
 */
export function errorsAndLogging(logger: Logger, metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID_RE.test(incoming) ? incoming : uuidv4();
    ctx.set('X-Request-Id', requestId);
    const requestLog = lazyChild(logger, () => ({ requestId }));
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404) throw new AppError('NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
        // The router answers an unknown method with 501: client input, so a 4xx like any other.
        if (ctx.status === 405 || ctx.status === 501) {
          throw new AppError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}`);
        }
      }
    } catch (err) {
      const appErr = toAppError(err);
      if (!appErr.exposed) requestLog().error({ err }, 'request failed');
      ctx.status = appErr.status;
      ctx.set(appErr.headers);
      ctx.body = errorBody(appErr);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const route = typeof ctx._matchedRoute === 'string' ? ctx._matchedRoute : UNMATCHED_ROUTE;
    metrics.httpRequest(ctx.method, route, ctx.status, seconds);
    if (!logger.isLevelEnabled('info')) return;
    const fields = { method: ctx.method, path: ctx.path, route, status: ctx.status, ms: Math.round(seconds * 1e4) / 10 };
    // Routes that concern one task name it in ctx.state.taskId, so the line is bound to it.
    const line = ctx.state.taskId ? requestLog().child({ taskId: ctx.state.taskId }) : requestLog();
    line.info(fields, 'request');
  };
}
