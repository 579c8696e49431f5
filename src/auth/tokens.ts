import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Watch tokens: `<exp>.<mac>`, where exp is the expiry in epoch seconds and mac is
 * base64url(HMAC-SHA256(secret, "watch:<task id>:<exp>")). They are stateless: any gateway with
 * the same TOKEN_SECRET verifies them, and nothing is stored in Redis.
 */
const TOKEN_RE = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

function mac(secret: string, taskId: string, exp: number): Buffer {
  return createHmac('sha256', secret).update(`watch:${taskId}:${exp}`).digest();
}

export function signWatchToken(secret: string, taskId: string, expS: number): string {
  return `${expS}.${mac(secret, taskId, expS).toString('base64url')}`;
}

/** True when `token` was signed for `taskId` under `secret` and has not expired at `nowS`. */
export function verifyWatchToken(secret: string, token: string, taskId: string, nowS: number): boolean {
  const m = TOKEN_RE.exec(token);
  if (!m) return false;
  const exp = Number(m[1]);
  const given = Buffer.from(m[2]!, 'base64url');
  const expected = mac(secret, taskId, exp);
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
