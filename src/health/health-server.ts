import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { HealthProbes } from './probes.js';

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
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'probes answer GET and HEAD only' } });
      return;
    }
    if (path === '/metrics' && deps.metrics) {
      deps.metrics.text().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        () => send(500, { error: { code: 'INTERNAL', message: 'internal error' } }),
      );
      return;
    }
    deps.probes.probe(path).then(
      (reply) => (reply ? send(reply.status, reply.body) : send(404, { error: { code: 'NOT_FOUND', message: `no probe at ${path}` } })),
      () => send(503, { status: 'unavailable' }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
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
