import { z } from 'zod';
import { AppError } from '../errors.js';
import { TAG_RE, TAG_RULE } from '../wire/feed.js';
import { readJsonBody } from './body.js';
import type { GuardDeps } from './guards.js';
import { AccessRouter } from './route-access.js';

/** POST /feed-tokens body. */
export const feedTokenBody = z.strictObject({
  tag: z
    .string()
    .regex(TAG_RE)
    .optional()
    .describe(`The tag whose feed the token opens (a tag token); absent: the all-tasks feed. ${TAG_RULE}.`),
  ttl_s: z.number().int().min(1).max(365 * 86400).optional().describe('Seconds the token stays valid; default WATCH_TOKEN_TTL_S.'),
});

/**
 * Feed tokens: a backend (or the page) with an API token asks for one and hands it to a browser,
 * which then follows that one feed (GET /ws/feed?tag=, /sse/feed?tag=; without a tag, every
 * task's) with `?token=`, and nothing else. A browser cannot send an API token on a WebSocket
 * without putting it in the URL: this keeps API tokens out of URLs.
 */
export function feedRouter(guards: GuardDeps): AccessRouter {
  const router = new AccessRouter(guards);
  router.post('/feed-tokens', 'api', async (ctx) => {
    const input = await readJsonBody(ctx);
    const parsed = feedTokenBody.safeParse(input ?? {});
    if (!parsed.success) throw new AppError('INVALID_BODY', 'invalid request body', parsed.error.issues);
    ctx.body = guards.auth.grantFeed(parsed.data.tag, parsed.data.ttl_s);
  });
  return router;
}
