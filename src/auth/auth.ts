import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { FeedGrant } from '../wire/feed.js';
import { parseTaskId } from '../wire/task-id.js';
import { ApiTokens, idempotencyScopeOf, signFeedToken, signWatchToken, verifyFeedToken, verifyWatchToken } from './tokens.js';

/**
 * What a caller proved: an API token (by index, never the token itself), one task's watch token,
 * or a feed token (one tag's, or the all-tasks feed's: tag null).
 */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'api'; index: number }
  | { kind: 'watch'; taskId: string }
  | { kind: 'feed'; tag: string | null };

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
  /** The idempotency scope of each API token, by index. */
  private readonly scopes: string[];

  constructor(
    private readonly config: Pick<Config, 'API_TOKENS' | 'TOKEN_SECRET' | 'WATCH_TOKEN_TTL_S'>,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.apiTokens = new ApiTokens(config.API_TOKENS);
    this.scopes = config.API_TOKENS.map((token) => idempotencyScopeOf(config.TOKEN_SECRET ?? '', token));
  }

  /**
   * Where a start's Idempotency-Key lives: one scope per API token (see idempotencyScopeOf), so
   * two clients can neither collide nor probe each other's keys; `global` with auth off.
   */
  idempotencyScope(principal: Principal | undefined): string {
    return principal?.kind === 'api' ? this.scopes[principal.index]! : 'global';
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
    const taskId = parseTaskId(rawTaskId) ?? rawTaskId;
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
    return { tag: tag ?? null, token: signFeedToken(this.config.TOKEN_SECRET!, tag, exp), expires_at: exp * 1000 };
  }

  /** The fields a start adds to its response: `watch_token` when auth is on, nothing otherwise. */
  grantWatch(taskId: string): { watch_token?: string } {
    const grant = this.issueWatch(taskId);
    return grant ? { watch_token: grant.token } : {};
  }

  /**
   * A fresh watch token for `taskId` (a canonical id), valid for WATCH_TOKEN_TTL_S from now, and
   * its expiry in epoch seconds; null when auth is off (watching needs no token then).
   */
  issueWatch(taskId: string): { token: string; expS: number } | null {
    if (!this.enabled) return null;
    const expS = Math.floor(this.nowMs() / 1000) + this.config.WATCH_TOKEN_TTL_S;
    return { token: signWatchToken(this.config.TOKEN_SECRET!, taskId, expS), expS };
  }
}

function unauthorized(message: string, invalid: boolean): AppError {
  const challenge = invalid ? `${REALM}, error="invalid_token"` : REALM;
  return new AppError('UNAUTHORIZED', message, undefined, { 'WWW-Authenticate': challenge });
}
