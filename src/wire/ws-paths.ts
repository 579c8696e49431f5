/**
 * The WebSocket endpoints of the gateway (src/ws/ws-server.ts). A GET of one of them without a
 * WebSocket upgrade is answered 426 UPGRADE_REQUIRED (src/http/upgrade-routes.ts).
 */
export { MUX_PATH } from './mux.js';

/** `/ws/task/<id>`: one task's events. */
export const TASK_WS_PREFIX = '/ws/task/';
/** `/ws/feed`: a feed of task changes. */
export const FEED_WS_PATH = '/ws/feed';

/** The WebSocket path of task `taskId` (any string: it is URL-encoded). */
export function taskWsPath(taskId: string): string {
  return `${TASK_WS_PREFIX}${encodeURIComponent(taskId)}`;
}

/** The task id part of a `/ws/task/<id>` path as sent (not decoded), or undefined for any other path. */
export function taskIdOfWsPath(pathname: string): string | undefined {
  if (!pathname.startsWith(TASK_WS_PREFIX)) return undefined;
  const rest = pathname.slice(TASK_WS_PREFIX.length);
  return rest.includes('/') ? undefined : rest;
}
