import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type AppError, errorBody } from '../errors.js';
import { SECURITY_HEADERS } from './security-headers.js';

/**
 * Answers on a bare socket, where no Koa context exists (a refused WebSocket upgrade, a request
 * Node's parser rejected or timed out): the same JSON error body and headers as any other
 * response, then the socket is destroyed once the response is written: Node's HTTP server is
 * half-open, so ending alone would keep the socket until a peer that never sends FIN goes away.
 * The answer to a HEAD request (`method`, when the request was parsed) has no body, only its
 * Content-Length.
 */
export function endWithError(socket: Duplex, err: AppError, method?: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(err));
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    ...err.headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
  };
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\n${head}\r\n${method === 'HEAD' ? '' : body}`);
}
