import WebSocket from 'ws';
import type { FeedEntry } from '../../src/wire/feed.js';
import { withTimeout } from './wait.js';

export interface FeedConnection {
  entries: FeedEntry[];
  /** The `{ id }` cursor marks (a feed opened without lastEventId sends one first). */
  marks: string[];
  /** Close code seen by the client; 1006 when the client dropped the socket itself. */
  code: number;
  reason: string;
}

export function feedUrl(httpUrl: string, query: { tag?: string; lastEventId?: string; token?: string } = {}): string {
  const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined) as [string, string][]);
  const qs = params.toString();
  return `${httpUrl.replace(/^http/, 'ws')}/ws/feed${qs ? `?${qs}` : ''}`;
}

/**
 * Follows a feed over WebSocket until the server closes it, until `stop` settles (the client then
 * closes with 1000), or, with `take`, until `take` entries arrived and the client drops the
 * connection abruptly (no close handshake). An upgrade refused with a status rejects with it.
 */
export function followFeed(
  url: string,
  options: { take?: number; stop?: Promise<void>; timeoutMs?: number; onEntry?: (e: FeedEntry) => void; onMark?: (id: string) => void } = {},
): Promise<FeedConnection> {
  const ws = new WebSocket(url);
  const got: FeedConnection = { entries: [], marks: [], code: 0, reason: '' };
  const done = new Promise<FeedConnection>((resolve, reject) => {
    ws.on('open', () => {
      if (options.take !== 0) return;
      ws.terminate();
      resolve({ ...got, code: 1006, reason: 'dropped by client' });
    });
    ws.on('message', (data) => {
      if (options.take !== undefined && got.entries.length >= options.take) return;
      const message = JSON.parse(String(data)) as FeedEntry | { id: string };
      if (!('task_id' in message)) {
        got.marks.push(message.id);
        options.onMark?.(message.id);
      } else {
        got.entries.push(message);
        options.onEntry?.(message);
      }
      if (options.take !== undefined && got.entries.length === options.take) {
        ws.terminate();
        resolve({ ...got, code: 1006, reason: 'dropped by client' });
      }
    });
    void options.stop?.then(() => ws.close(1000));
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.on('close', (code, reason) => resolve({ ...got, code, reason: reason.toString() }));
    ws.on('error', reject);
  });
  return withTimeout(done, `feed ${url}`, options.timeoutMs ?? 20_000).finally(() => ws.terminate());
}
