import { validate as isUuid } from 'uuid';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { ApiTokens, signFeedToken, signWatchToken, verifyFeedToken, verifyWatchToken } from './tokens.js';

/**
 * What a caller proved: an API token (by index, never the token itself), one task's watch token,
 * or a feed token (one tag's, or the all-tasks feed's: tag null).
 */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'api'; index: number }
  | { kind: 'watch'; taskId: string }
  | { kind: 'feed'; tag: string | null };

/** A feed token as POST /feed-tokens answers it; token and expires_at are null with auth off (none needed). */
export interface FeedGrant {
  /** The tag whose feed it opens (a tag token); null: the all-tasks feed. */
  tag: string | null;
  token: string | null;
  /** Expiry, epoch seconds. */
  expires_at: number | null;
}

const REALM = 'Bearer realm="taskcast"';

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m ? m[1] : undefined;
}

/**
 * The one authorization policy (README "Threat model"). Off unless API_TOKENS is set, in which
 * case starting, cancelling and listing need an API token, and watching a task (GET, WebSocket,
 * SSE) needs that task's watch token or an API token. Every refusal is UNAUTHORIZED with a
 * WWW-Authenticate header; the message never echoes a token.
 */
export class Auth {
  private readonly apiTokens: ApiTokens;

  constructor(
    private readonly config: Pick<Config, 'API_TOKENS' | 'TOKEN_SECRET' | 'WATCH_TOKEN_TTL_S'>,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.apiTokens = new ApiTokens(config.API_TOKENS);
  }

  get enabled(): boolean {
    return this.apiTokens.size > 0;
  }

  /** Starting, cancelling, listing: an API token is needed when auth is on. */
  requireApi(token: string | undefined): Principal {
    if (!this.enabled) return { kind: 'anonymous' };
    if (token === undefined) throw unauthorized('an API token is required (Authorization: Bearer <token>)', false);
    const index = this.apiTokens.match(token);
    if (index === -1) throw unauthorized('invalid API token', true);
    return { kind: 'api', index };
  }

  /** Watching `rawTaskId`: its watch token or an API token is needed when auth is on. */
  requireWatch(rawTaskId: string, token: string | undefined): Principal {
    if (!this.enabled) return { kind: 'anonymous' };
    if (token === undefined) throw unauthorized('a watch token or API token is required', false);
    const index = this.apiTokens.match(token);
    if (index !== -1) return { kind: 'api', index };
    const taskId = isUuid(rawTaskId) ? rawTaskId.toLowerCase() : rawTaskId;
    if (!verifyWatchToken(this.config.TOKEN_SECRET!, token, taskId, Math.floor(this.nowMs() / 1000))) {
      throw unauthorized('invalid or expired token for this task', true);
    }
    return { kind: 'watch', taskId };
  }

  /**
   * Following a feed, when auth is on: an API token, or a feed token for that feed: that tag's tag
   * token for a tag's feed, an all-tasks feed token for the all-tasks feed (`tag` undefined). Both
   * kinds are bought with an API token (grantFeed), for browsers, which cannot send headers.
   */
  requireFeed(tag: string | undefined, token: string | undefined): Principal {
    if (!this.enabled) return { kind: 'anonymous' };
    if (token === undefined) throw unauthorized('an API token or a feed token is required', false);
    const index = this.apiTokens.match(token);
    if (index !== -1) return { kind: 'api', index };
    if (!verifyFeedToken(this.config.TOKEN_SECRET!, token, tag, Math.floor(this.nowMs() / 1000))) {
      throw unauthorized(`invalid or expired token for ${tag === undefined ? 'the all-tasks feed' : 'this tag'}`, true);
    }
    return { kind: 'feed', tag: tag ?? null };
  }

  /** A feed token for `tag`'s feed (undefined: all tasks), valid for `ttlS` seconds (none with auth off). */
  grantFeed(tag: string | undefined, ttlS = this.config.WATCH_TOKEN_TTL_S): FeedGrant {
    if (!this.enabled) return { tag: tag ?? null, token: null, expires_at: null };
    const exp = Math.floor(this.nowMs() / 1000) + ttlS;
    return { tag: tag ?? null, token: signFeedToken(this.config.TOKEN_SECRET!, tag, exp), expires_at: exp };
  }

  /** The fields a start adds to its response: `watch_token` when auth is on, nothing otherwise. */
  grantWatch(taskId: string): { watch_token?: string } {
    if (!this.enabled) return {};
    const exp = Math.floor(this.nowMs() / 1000) + this.config.WATCH_TOKEN_TTL_S;
    return { watch_token: signWatchToken(this.config.TOKEN_SECRET!, taskId, exp) };
  }
}

function unauthorized(message: string, invalid: boolean): AppError {
  const challenge = invalid ? `${REALM}, error="invalid_token"` : REALM;
  return new AppError('UNAUTHORIZED', message, undefined, { 'WWW-Authenticate': challenge });
}
