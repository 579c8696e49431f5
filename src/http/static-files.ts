import type { Middleware } from 'koa';
import serve from 'koa-static';
import { AppError } from '../errors.js';

/**
 * The page's files under `root`: GET and HEAD only, dotfiles hidden, no directory listings
 * (koa-send serves a directory's index.html or nothing). koa-send refuses traversal (`..`,
 * `%2e%2e`), NUL bytes and bad percent-encoding with 400/403 errors; they are all answered as
 * NOT_FOUND, so a probe learns nothing about what exists outside `root`.
 */
export function staticFiles(root: string, options: { index: string | false } = { index: 'index.html' }): Middleware {
  const send = serve(root, { hidden: false, index: options.index });
  return async (ctx, next) => {
    let served = true;
    try {
      await send(ctx, async () => {
        served = false;
      });
    } catch (err) {
      const status = (err as { status?: unknown }).status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        throw new AppError('NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
      }
      throw err;
    }
    if (!served) await next();
  };
}
