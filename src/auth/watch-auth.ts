import type { Auth, Principal } from './auth.js';
import { bearerToken } from './auth.js';

export interface WatchCredentials {
  /** The raw task id from the path (validated later by openWatch). */
  taskId: string;
  /** The Authorization header, if any. */
  authorization: string | undefined;
  /**
   * `?token=` for WebSocket and SSE, where browsers cannot set headers; undefined for plain GETs,
   * which must use the header (a token in a URL ends up in proxy logs and history).
   */
  queryToken?: string | null | undefined;
}

/**
 * The single check every watch transport runs before it starts streaming (WebSocket before the
 * upgrade, SSE and GET before any byte of the response): throws UNAUTHORIZED, or returns who asked.
 */
export function authorizeWatch(auth: Auth, creds: WatchCredentials): Principal {
  const token = bearerToken(creds.authorization) ?? (creds.queryToken || undefined);
  return auth.requireWatch(creds.taskId, token);
}

/** The check of the feed transports (WebSocket, SSE): as authorizeWatch, for `tag`'s feed or the all-tasks feed. */
export function authorizeFeed(auth: Auth, creds: Omit<WatchCredentials, 'taskId'> & { tag: string | undefined }): Principal {
  const token = bearerToken(creds.authorization) ?? (creds.queryToken || undefined);
  return auth.requireFeed(creds.tag, token);
}
