/**
 * A WebSocket URL on the gateway at `baseUrl`: `path` with the query's non-empty values, ws for
 * http and wss for https.
 */
export function socketUrl(baseUrl: string, path: string, query: Record<string, string | undefined> = {}): string {
  const url = new URL(path, baseUrl);
  url.protocol = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss:' : 'ws:';
  for (const [name, value] of Object.entries(query)) if (value) url.searchParams.set(name, value);
  return url.toString();
}
