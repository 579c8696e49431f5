import { connect } from 'node:net';
import WebSocket from 'ws';
import { withTimeout } from './wait.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON when the body is JSON, else the text. */
  body: any;
}

function parseResponse(text: string): RawResponse {
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const rest = split === -1 ? '' : text.slice(split + 4);
  const [statusLine, ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body: unknown = rest;
  try {
    body = JSON.parse(rest);
  } catch {
    // Not JSON: keep the text.
  }
  return { status, headers, body };
}

/**
 * Sends bytes exactly as given (no client-side URL normalization) and reads until the server
 * closes. With `trickle`, each piece is sent `trickle.everyMs` apart and `trickle.piece` is
 * repeated after them until the server answers, as a slowloris client does.
 */
export function rawHttp(
  port: number,
  request: string | Buffer,
  options: { trickle?: { everyMs: number; piece: string }; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<RawResponse>((resolve, reject) => {
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err) => (chunks.length > 0 ? undefined : reject(err)));
    socket.on('close', () => {
      clearInterval(timer);
      resolve(parseResponse(Buffer.concat(chunks).toString('utf8')));
    });
  });
  socket.write(request);
  if (options.trickle) {
    const { everyMs, piece } = options.trickle;
    timer = setInterval(() => {
      if (socket.writable && chunks.length === 0) socket.write(piece);
    }, everyMs);
  }
  return withTimeout(done, 'raw HTTP response', options.timeoutMs ?? 15_000).finally(() => {
    clearInterval(timer);
    socket.destroy();
  });
}

/**
 * Sends `request` from a peer that never closes its side (allowHalfOpen, no end()), and resolves
 * with the response once the server has closed the connection for good. The server's FIN alone
 * does not count: after it, a byte is written every 50 ms, which a socket the server still holds
 * takes in silently and a closed one answers with a reset. Rejects after `timeoutMs` otherwise.
 */
export function rawHttpNeverClosing(port: number, request: string, timeoutMs = 5000): Promise<RawResponse> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let probe: NodeJS.Timeout | undefined;
  const done = new Promise<RawResponse>((resolve) => {
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      probe = setInterval(() => socket.write('x'), 50);
    });
    socket.on('close', () => resolve(parseResponse(Buffer.concat(chunks).toString('utf8'))));
  });
  socket.write(request);
  return withTimeout(done, `the server to close the connection after ${JSON.stringify(request.split('\r\n')[0])}`, timeoutMs).finally(() => {
    clearInterval(probe);
    socket.destroy();
  });
}

/** The bytes of a WebSocket upgrade request for `path`, with `headers` added. */
export function upgradeRequest(port: number, path: string, headers: Record<string, string> = {}): string {
  const all = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  const head = Object.entries(all).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return `GET ${path} HTTP/1.1\r\n${head}\r\n`;
}

export interface UpgradeResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  /** The open socket when the upgrade succeeded (status 101); the caller closes it. */
  ws?: WebSocket;
  /**
   * Every text message the socket receives, from the first: frames sent along with the 101 are
   * emitted before any listener added after `open` could see them, so they are recorded here.
   */
  messages: string[];
}

/** Attempts a WebSocket upgrade and reports the HTTP answer, or the open socket. */
export function upgrade(
  url: string,
  options: { headers?: Record<string, string>; origin?: string; localAddress?: string } = {},
): Promise<UpgradeResult> {
  const ws = new WebSocket(url, {
    headers: options.headers,
    ...(options.origin === undefined ? {} : { origin: options.origin }),
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
  });
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(String(data)));
  const result = new Promise<UpgradeResult>((resolve, reject) => {
    ws.once('open', () => resolve({ status: 101, headers: {}, body: undefined, ws, messages }));
    ws.once('unexpected-response', (_req, res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // Not JSON.
        }
        ws.terminate();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, messages });
      });
    });
    ws.once('error', reject);
  });
  return withTimeout(result, `upgrade ${url}`, 15_000);
}

/** The close code and reason the server sends, after the socket closes. */
export function closed(ws: WebSocket, timeoutMs = 15_000): Promise<{ code: number; reason: string }> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve({ code: 1006, reason: 'already closed' });
  const done = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('error', () => undefined);
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  return withTimeout(done, 'socket close', timeoutMs);
}
