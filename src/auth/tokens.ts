import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed tokens: `<exp>.<mac>`, where exp is the expiry in epoch seconds and mac is
 * base64url(HMAC-SHA256(secret, "<scope>:<exp>")). A watch token's scope is `watch:<task id>`, a
 * feed token's `tag:<tag>` (a tag token: its tag's feed) or `feed:all` (the all-tasks feed): the
 * prefixes keep the kinds apart, and exp (digits only, last) keeps a tag with ':' in it from
 * reading as another tag. They are stateless: any gateway with the same TOKEN_SECRET verifies them,
 * and nothing is stored in Redis.
 */
const TOKEN_RE = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

function mac(secret: string, scope: string, exp: number): Buffer {
  return createHmac('sha256', secret).update(`${scope}:${exp}`).digest();
}

function sign(secret: string, scope: string, expS: number): string {
  return `${expS}.${mac(secret, scope, expS).toString('base64url')}`;
}

export function signWatchToken(secret: string, taskId: string, expS: number): string {
  return sign(secret, `watch:${taskId}`, expS);
}

/** True when `token` was signed for `taskId` under `secret` and has not expired at `nowS`. */
export function verifyWatchToken(secret: string, token: string, taskId: string, nowS: number): boolean {
  return verify(secret, token, `watch:${taskId}`, nowS);
}

const feedScope = (tag: string | undefined): string => (tag === undefined ? 'feed:all' : `tag:${tag}`);

/** A feed token: lets its holder follow the feed of `tag` (a tag token), or of all tasks (undefined), until `expS`. */
export function signFeedToken(secret: string, tag: string | undefined, expS: number): string {
  return sign(secret, feedScope(tag), expS);
}

/** True when `token` was signed for that feed under `secret` and has not expired at `nowS`. */
export function verifyFeedToken(secret: string, token: string, tag: string | undefined, nowS: number): boolean {
  return verify(secret, token, feedScope(tag), nowS);
}

function verify(secret: string, token: string, scope: string, nowS: number): boolean {
  const m = TOKEN_RE.exec(token);
  if (!m) return false;
  const exp = Number(m[1]);
  const given = Buffer.from(m[2]!, 'base64url');
  const expected = mac(secret, scope, exp);
  // Compare first, then check the expiry, so timing does not tell a forged token from an old one.
  const valid = given.length === expected.length && timingSafeEqual(given, expected);
  return valid && exp > nowS;
}

/**
 * The scope of an API token's idempotency keys: base64url(HMAC-SHA256(secret,
 * "idempotency-scope:<token>")), cut to 22 characters (128 bits). It names no token and does not
 * depend on their order in API_TOKENS; a new TOKEN_SECRET starts new scopes.
 */
export function idempotencyScopeOf(secret: string, token: string): string {
  return createHmac('sha256', secret).update(`idempotency-scope:${token}`).digest('base64url').slice(0, 22);
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * The configured API tokens. A presented token is hashed and compared against every configured
 * hash with timingSafeEqual (fixed length, no early exit), so timing reveals neither the tokens
 * nor which one matched.
 */
export class ApiTokens {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(digest);
  }

  get size(): number {
    return this.digests.length;
  }

  /** The index of the matching token (a stable, non-secret key for rate limiting), or -1. */
  match(token: string): number {
    const presented = digest(token);
    let found = -1;
    this.digests.forEach((d, i) => {
      if (timingSafeEqual(d, presented) && found === -1) found = i;
    });
    return found;
  }
}
