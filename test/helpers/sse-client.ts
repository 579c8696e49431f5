import { connect } from 'node:net';
import type { TaskEvent } from '../../src/wire/events.js';
import type { Scope } from './processes.js';
import { withTimeout } from './wait.js';

export interface SseResult {
  status: number;
  contentType: string;
  /** The `id:` field of each message, in order. */
  ids: string[];
  /** The parsed `data:` field of each message. */
  events: TaskEvent[];
  /** The `event:` field of each message, or null for an unnamed one. */
  names: (string | null)[];
  /** The JSON error body when the status is neither 200 nor 204 (nothing to send). */
  error?: { error: { code: string; message: string } };
}

export function sseUrl(httpUrl: string, taskId: string, lastEventId?: string): string {
  const query = lastEventId === undefined ? '' : `?lastEventId=${encodeURIComponent(lastEventId)}`;
  return `${httpUrl}/sse/task/${taskId}${query}`;
}

/**
 * Reads an SSE response until the server ends it, or, with `take`, until `take` messages arrived
 * and the client aborts. `onEvent` sees each message as it arrives.
 */
export function watchSse(
  url: string,
  options: { lastEventId?: string; take?: number; timeoutMs?: number; onEvent?: (event: TaskEvent) => void } = {},
): Promise<SseResult> {
  const abort = new AbortController();
  const run = async (): Promise<SseResult> => {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
    const res = await fetch(url, { headers, signal: abort.signal });
    const contentType = res.headers.get('content-type') ?? '';
    if (res.status === 204) return { status: 204, contentType, ids: [], events: [], names: [] };
    if (res.status !== 200) return { status: res.status, contentType, ids: [], events: [], names: [], error: await res.json() };
    const result: SseResult = { status: 200, contentType, ids: [], events: [], names: [] };
    const decoder = new TextDecoder();
    let text = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        let sep: number;
        while ((sep = text.indexOf('\n\n')) !== -1) {
          const message = text.slice(0, sep);
          text = text.slice(sep + 2);
          const lines = message.split('\n');
          const id = lines.find((l) => l.startsWith('id: '))?.slice(4);
          const data = lines.find((l) => l.startsWith('data: '))?.slice(6);
          if (id === undefined || data === undefined) continue;
          result.ids.push(id);
          result.names.push(lines.find((l) => l.startsWith('event: '))?.slice(7) ?? null);
          result.events.push(JSON.parse(data) as TaskEvent);
          options.onEvent?.(result.events.at(-1)!);
          if (options.take !== undefined && result.events.length >= options.take) {
            abort.abort();
            return result;
          }
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
    return result;
  };
  return withTimeout(run(), `sse ${url}`, options.timeoutMs ?? 20_000).finally(() => abort.abort());
}

/**
 * A raw HTTP/1.1 client (keep-alive, as browsers are) that stops reading after the first bytes,
 * as a stuck browser tab would. `started` settles with its first bytes; `resume()` reads on until
 * the gateway closes the connection, and gives the ids it got and whether the response's last
 * chunk came (an ended stream) or not (a cut connection).
 */
export function stuckReader(t: Scope, port: number, taskId: string): { started: Promise<void>; resume(): Promise<{ ids: string[]; lastChunk: boolean }> } {
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  let raw = '';
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  const started = new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.on('data', (d: Buffer) => {
    if (raw === '') socket.pause();
    raw += d.toString('latin1');
  });
  socket.write(`GET /sse/task/${taskId} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
  return {
    started,
    async resume() {
      socket.resume();
      await withTimeout(ended, 'the gateway to close the connection', 60_000);
      return { ids: [...raw.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]!), lastChunk: raw.endsWith('\r\n0\r\n\r\n') };
    },
  };
}
