import { createServer, type RequestListener, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { endWithError } from './raw-response.js';

type TimeoutConfig = Pick<Config, 'HTTP_HEADERS_TIMEOUT_MS' | 'HTTP_REQUEST_TIMEOUT_MS'>;

/**
 * The gateway's HTTP server. A client must send its headers within HTTP_HEADERS_TIMEOUT_MS and
 * the whole request within HTTP_REQUEST_TIMEOUT_MS, so a slowloris connection is cut with 408
 * instead of holding a socket forever. Requests Node cannot parse get a JSON 400 (431 for
 * oversized headers) like every other error.
 */
export function createHttpServer(listener: RequestListener, config: TimeoutConfig, logger: Logger): Server {
  const server = createServer(
    {
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: Math.max(config.HTTP_REQUEST_TIMEOUT_MS, config.HTTP_HEADERS_TIMEOUT_MS),
      // Timeouts are enforced by a periodic sweep (30 s by default); sweep often enough to honour them.
      connectionsCheckingInterval: Math.min(1000, Math.ceil(config.HTTP_HEADERS_TIMEOUT_MS / 2)),
      // Only a WebSocket upgrade goes to the WebSocket server; any other (h2c, as `curl --http2`
      // asks for) is served as the plain HTTP/1.1 request it also is.
      shouldUpgradeCallback: (req) => req.headers.upgrade?.toLowerCase() === 'websocket',
    },
    listener,
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    logger.debug({ err: err.message, code: err.code }, 'client error');
    const response = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || response?.headersSent) {
      socket.destroy();
      return;
    }
    endWithError(socket, clientErrorOf(err));
  });
  return server;
}

function clientErrorOf(err: NodeJS.ErrnoException): AppError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new AppError('REQUEST_TIMEOUT', 'request not received in time');
  if (err.code === 'HPE_HEADER_OVERFLOW') return new AppError('HEADERS_TOO_LARGE', 'request headers too large');
  return new AppError('BAD_REQUEST', 'malformed HTTP request');
}
