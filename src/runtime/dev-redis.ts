import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { resolve } from 'node:path';
import type { Logger } from '../logger.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface DevRedis {
  url: string;
  close(): Promise<void>;
}

/**
 * For `npm start` without REDIS_URL: use a Redis at 127.0.0.1:6379 if one answers, otherwise
 * start a private redis-server from PATH (data under `dataDir`, AOF on) and stop it on close.
 */
export async function devRedis(
  logger: Logger,
  options: { dataDir?: string; probePort?: number } = {},
): Promise<DevRedis> {
  const { dataDir = resolve('data'), probePort = 6379 } = options;
  if (await answers(probePort)) return { url: `redis://127.0.0.1:${probePort}`, close: async () => undefined };
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--appendonly', 'yes', '--save', '',
      '--maxmemory-policy', 'noeviction'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await new Promise<void>((ok, fail) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'ENOENT'
          ? new Error(
              'no Redis at 127.0.0.1:6379 and no redis-server on PATH. Install Redis ' +
                '(apt-get install redis-server, brew install redis) or run `docker compose up`, ' +
                'or set REDIS_URL.',
            )
          : err,
      ),
    );
    child.once('spawn', () => ok());
  });
  await waitUntilAnswers(port, child);
  const url = `redis://127.0.0.1:${port}`;
  logger.info({ url, dataDir }, 'started a private redis-server');
  return { url, close: () => stop(child) };
}

function answers(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      ok(true);
    });
    socket.once('error', () => ok(false));
    socket.once('timeout', () => {
      socket.destroy();
      ok(false);
    });
  });
}

async function waitUntilAnswers(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    if (await answers(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('redis-server did not start within 5 s');
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    child.once('exit', () => ok());
    child.kill('SIGTERM');
  });
}
