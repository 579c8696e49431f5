import type { RouterContext } from '@koa/router';
import { AppError } from '../errors.js';
import { FEED_WS_PATH, MUX_PATH, TASK_WS_PREFIX } from '../wire/ws-paths.js';
import type { GuardDeps } from './guards.js';
import { AccessRouter } from './route-access.js';

function upgradeRequired(ctx: RouterContext): never {
  throw new AppError(
    'UPGRADE_REQUIRED',
    `${ctx.path} is a WebSocket endpoint: open it with a WebSocket client (wscat -c ws://<gateway>${ctx.path}); /sse/ serves the same over HTTP`,
    undefined,
    { Upgrade: 'websocket', Connection: 'Upgrade' },
  );
}

/**
 * A GET of a WebSocket endpoint without `Upgrade: websocket` (curl, a browser tab): 426
 * UPGRADE_REQUIRED naming the protocol, where a path that does not exist answers 404. Each route
 * has the access level of its handshake (src/ws/upgrade-guard.ts), so it tells no more than the
 * handshake would, and matches the paths as the WebSocket server does: exactly (no trailing
 * slash, case counts).
 */
export function upgradeRouter(guards: GuardDeps): AccessRouter {
  return new AccessRouter(guards, { strict: true, sensitive: true })
    .get(`${TASK_WS_PREFIX}:id`, 'watch-stream', upgradeRequired)
    .get(FEED_WS_PATH, 'feed-stream', upgradeRequired)
    .get(MUX_PATH, 'public', upgradeRequired);
}
