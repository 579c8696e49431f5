import type { Middleware } from 'koa';
import { v4 as uuidv4 } from 'uuid';
import { AppError, errorBody, toAppError } from '../errors.js';
import type { Logger } from '../logger.js';

/** One log line per request, and every error turned into `{error: {code, message}}`. */
export function errorsAndLogging(logger: Logger): Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const requestId = ctx.get('x-request-id').slice(0, 128) || uuidv4();
    ctx.set('X-Request-Id', requestId);
    // Built on first use: with the `request` line below disabled (LOG_LEVEL warn), most requests log nothing.
    let log: Logger | undefined;
    const requestLog = () => (log ??= logger.child({ requestId }));
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404) throw new AppError('NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
        if (ctx.status === 405) {
          throw new AppError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}`);
        }
      }
    } catch (err) {
      const appErr = toAppError(err);
      if (!appErr.exposed) requestLog().error({ err }, 'request failed');
      ctx.status = appErr.status;
      ctx.body = errorBody(appErr);
    }
    if (!logger.isLevelEnabled('info')) return;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const fields = { method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms * 10) / 10 };
    // Routes that concern one task name it in ctx.state.taskId, so the line is bound to it.
    const line = ctx.state.taskId ? requestLog().child({ taskId: ctx.state.taskId }) : requestLog();
    line.info(fields, 'request');
  };
}
