const LOCALHOST = new Set(['localhost', '127.0.0.1', '[::1]']);

/** `scheme://host[:port]` in the form browsers send, or null when `text` is not an origin. */
export function normalizeOrigin(text: string): string | null {
  try {
    const url = new URL(text);
    return url.origin === 'null' ? null : url.origin;
  } catch {
    return null;
  }
}

/**
 * Cross-site WebSocket hijacking guard: browsers always send Origin on a WebSocket upgrade and
 * never let a page forge it. Allowed: no Origin (not a browser), the gateway's own host
 * (same-origin; the scheme is not compared so that a TLS-terminating proxy in front keeps
 * working), localhost when `allowed` is empty, and exactly the origins in `allowed`.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  const normalized = normalizeOrigin(origin);
  if (normalized === null) return false;
  const url = new URL(normalized);
  if (host !== undefined && url.host === host.toLowerCase()) return true;
  if (allowed.length === 0) return LOCALHOST.has(url.hostname);
  return allowed.some((entry) => normalizeOrigin(entry) === normalized);
}
