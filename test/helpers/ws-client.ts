import WebSocket from 'ws';
import type { TaskEvent } from '../../src/wire/events.js';
import { withTimeout } from './wait.js';

export interface WatchResult {
  events: TaskEvent[];
  /** Close code seen by the client; 1006 when the client dropped the socket itself. */
  code: number;
  reason: string;
}

export function wsUrl(httpUrl: string, taskId: string, lastEventId?: string): string {
  const base = httpUrl.replace(/^http/, 'ws');
  const query = lastEventId === undefined ? '' : `?lastEventId=${encodeURIComponent(lastEventId)}`;
  return `${base}/ws/task/${taskId}${query}`;
}

/**
 * Watches until the server closes the socket, or, with `take`, until `take` events arrived and
 * the client drops the connection abruptly (no close handshake), as a broken network would.
 */
export function watchTask(
  url: string,
  options: { take?: number; timeoutMs?: number; onEvent?: (e: TaskEvent) => void } = {},
): Promise<WatchResult> {
  const ws = new WebSocket(url);
  const events: TaskEvent[] = [];
  const done = new Promise<WatchResult>((resolve, reject) => {
    const drop = () => {
      ws.terminate();
      resolve({ events, code: 1006, reason: 'dropped by client' });
    };
    ws.on('open', () => {
      if (options.take === 0) drop();
    });
    ws.on('message', (data) => {
      if (options.take !== undefined && events.length >= options.take) return;
      const event = JSON.parse(String(data)) as TaskEvent;
      events.push(event);
      options.onEvent?.(event);
      if (options.take !== undefined && events.length === options.take) drop();
    });
    ws.on('close', (code, reason) => resolve({ events, code, reason: reason.toString() }));
    ws.on('error', reject);
  });
  return withTimeout(done, `watch ${url}`, options.timeoutMs ?? 20_000).finally(() => ws.terminate());
}

/**
 * Watches a task to its end as a resuming client does: after a close that is not the normal end
 * (1000), it reconnects from its last event, at most `attempts` times. The ids it got, in order.
 */
export async function watchToEnd(httpUrl: string, taskId: string, options: { attempts?: number; timeoutMs?: number } = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let attempt = 0; attempt < (options.attempts ?? 5); attempt++) {
    const r = await watchTask(wsUrl(httpUrl, taskId, ids.at(-1)), { timeoutMs: options.timeoutMs ?? 60_000 });
    ids.push(...r.events.map((e) => e.id));
    if (r.code === 1000) return ids;
  }
  throw new Error(`the watcher of ${taskId} did not reach the end (${ids.length} events)`);
}
