import type { IncomingMessage } from 'node:http';

/**
 * The client's address for per-client limits. With TRUST_PROXY_HOPS = n > 0 the gateway sits
 * behind n proxies that each append to X-Forwarded-For, so the client is the n-th entry from the
 * right; entries further left are client-supplied and never trusted. With 0 the header is ignored.
 */
export function clientAddress(req: IncomingMessage, trustProxyHops: number): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (trustProxyHops === 0) return peer;
  const header = req.headers['x-forwarded-for'];
  const list = (Array.isArray(header) ? header.join(',') : header ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) return peer;
  return list[Math.max(0, list.length - trustProxyHops)]!;
}
