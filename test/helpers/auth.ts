/** A gateway with auth on: one API token (test-only values, never real secrets). */
export const API_TOKEN = 'tok-client-auth-7f3a91';
export const TOKEN_SECRET = 'client-auth-secret-0123456789abcdef';
export const AUTH_ENV = { API_TOKENS: API_TOKEN, TOKEN_SECRET, WATCH_TOKEN_TTL_S: '600' };

/** A watch token: `<exp>.<43 base64url characters>` (src/auth/tokens.ts). */
export const WATCH_TOKEN_RE = /^\d{1,12}\.[A-Za-z0-9_-]{43}$/;
