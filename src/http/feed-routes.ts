import { z } from 'zod';
import { AppError } from '../errors.js';
import { TAG_RE } from '../wire/feed.js';
import { readJsonBody } from './body.js';
import type { GuardDeps } from './guards.js';
import { AccessRouter } from './route-access.js';

/** POST /tag-tokens body. */
export const tagTokenBody = z.strictObject({
  tag: z.string().regex(TAG_RE).describe('The tag whose feed the token opens: 1 to 64 of the characters A-Z a-z 0-9 _ . : = @ / + -.'),
  ttl_s: z.number().int().min(1).max(365 * 86400).optional().describe('Seconds the token stays valid; default WATCH_TOKEN_TTL_S.'),
});

/**
 * Tag tokens: a backend with an API token asks for one and hands it to a browser, which then
 * follows that tag's feed (GET /ws/feed?tag=, /sse/feed?tag=) and nothing else.
 */
export function feedRouter(guards: GuardDeps): AccessRouter {
  const router = new AccessRouter(guards);
  router.post('/tag-tokens', 'api', async (ctx) => {
    const input = await readJsonBody(ctx);
    const parsed = tagTokenBody.safeParse(input ?? {});
    if (!parsed.success) throw new AppError('INVALID_BODY', 'invalid request body', parsed.error.issues);
    ctx.body = guards.auth.grantTag(parsed.data.tag, parsed.data.ttl_s);
  });
  return router;
}
