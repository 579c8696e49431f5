import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { createApp } from './http/app.js';
import { Hub } from './hub/hub.js';
import type { Redis } from './store/redis.js';
import { TaskStore } from './store/task-store.js';
import type { TaskRegistry } from './worker/registry.js';
import { WsServer } from './ws/ws-server.js';

export interface GatewayDeps {
  redis: Redis;
  logger: Logger;
  config: Config;
  registry: TaskRegistry;
}

export interface Gateway {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  readonly ws: WsServer;
  readonly hub: Hub;
  close(): Promise<void>;
}

/** HTTP API, static page and WebSocket watch endpoint on one port. The caller owns `redis`. */
export async function startGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config, logger } = deps;
  const store = new TaskStore(deps.redis, config.TASK_TTL_S);
  const hub = new Hub({ redis: deps.redis, logger });
  await hub.start();
  const app = createApp({ store, registry: deps.registry, logger });
  const server = createServer(app.callback());
  const ws = new WsServer({ server, hub, store, logger, config });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, config.HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await ws.close();
    await hub.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
  logger.info({ url, port }, 'gateway listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await ws.close();
      await stopped;
      await hub.close();
      logger.info('gateway stopped');
    })());
  return { server, port, url, ws, hub, close };
}
