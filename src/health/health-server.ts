import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenError } from '../config.js';
import { AppError, errorBody } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { PROBE_METHODS, wrongMethod, type HealthProbes } from './probes.js';

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A bare HTTP server answering only the probes (and /metrics), for processes without an API (the worker).
 * Port 0 picks a free port; the chosen one is logged ('health listening').
 */
export async function startHealthServer(deps: {
  probes: HealthProbes;
  /** Also served, at /metrics, when given. */
  metrics?: Metrics;
  host: string;
  port: number;
  logger: Logger;
}): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://health').pathname;
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
    };
    const sendError = (err: AppError) => send(err.status, errorBody(err));
    if (!PROBE_METHODS.includes(req.method ?? '')) {
      const answer = wrongMethod();
      send(answer.status, answer.body, answer.headers);
      return;
    }
    if (path === '/metrics' && deps.metrics) {
      deps.metrics.text().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: unknown) => {
          deps.logger.error({ err }, 'could not render the metrics');
          sendError(new AppError('INTERNAL', 'could not render the metrics'));
        },
      );
      return;
    }
    deps.probes.probe(path).then(
      (reply) => (reply ? send(reply.status, reply.body) : sendError(new AppError('NOT_FOUND', `no probe at ${path}`))),
      // A probe that fails is a probe that says no: the body is a probe's, as /readyz answers it.
      (err: unknown) => {
        deps.logger.warn({ err }, 'probe failed');
        send(503, { status: 'unavailable' });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(err, deps.host)));
    server.listen(deps.port, deps.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  deps.logger.info({ port, host: deps.host }, 'health listening');
  let closing: Promise<void> | undefined;
  return {
    port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
