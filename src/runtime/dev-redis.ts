import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { answersPing } from '../store/ping.js';
import { alive, DevRedisError, readRecord, recordPath, withRecordLock, writeRecord, type DevRedisRecord } from './dev-redis-record.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface DevRedis {
  url: string;
  close(): Promise<void>;
}

export interface DevRedisOptions {
  /** Where the private server keeps its AOF and `redis.json`. */
  dataDir: string;
  /** The private server's port when the data dir remembers none, or the next free one above it. */
  port: number;
  /** A Redis answering PING here is used instead of a private one; 0: never probe. */
  probePort: number;
}

/** Ports tried above `port` before giving up. */
const PORT_RANGE = 100;
/** How long a server may take to answer PING: start-up, or loading a large AOF. */
const ANSWER_WAIT_MS = 30_000;

/**
 * For `npm start` without REDIS_URL: a Redis answering on `probePort`, else the data dir's private
 * redis-server. There is never more than one per data dir: a live one recorded in `redis.json`
 * (left by a killed `npm start`) is taken over and reused; one owned by a running `npm start` is
 * refused (DEV_REDIS_IN_USE). Otherwise one is started on the remembered port (at first `port`,
 * or the next free one), AOF on. The owner stops it on close; the port stays remembered.
 */
export async function devRedis(logger: Logger, options: DevRedisOptions): Promise<DevRedis> {
  const { dataDir, probePort } = options;
  if (probePort !== 0 && (await answersPing(probePort))) {
    return { url: `redis://127.0.0.1:${probePort}`, close: async () => undefined };
  }
  mkdirSync(dataDir, { recursive: true });
  const record = await withRecordLock(dataDir, async () => (await adopt(dataDir)) ?? (await start(options)));
  const url = `redis://127.0.0.1:${record.port}`;
  logger.info(
    { url, redisPid: record.pid, dataDir, inspect: `redis-cli -p ${record.port}` },
    record.started ? 'started a private redis-server' : 'reusing the private redis-server a killed npm start left running',
  );
  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= stop(record.pid, record.port, logger).then(() => writeRecord(dataDir, { port: record.port }))),
  };
}

type Owned = Required<DevRedisRecord> & { started: boolean };

/** The data dir's recorded server when it still runs, now owned by this process. */
async function adopt(dataDir: string): Promise<Owned | undefined> {
  const record = readRecord(dataDir);
  if (record?.pid === undefined || !alive(record.pid)) return undefined;
  const { pid, port } = record;
  if (record.owner !== undefined && record.owner !== process.pid && alive(record.owner)) {
    throw new DevRedisError(
      'DEV_REDIS_IN_USE',
      `the private redis-server of ${dataDir} (pid ${pid}, port ${port}) belongs to a running npm start (pid ${record.owner}): ` +
        `stop that one first, or share its Redis with REDIS_URL=redis://127.0.0.1:${port}`,
    );
  }
  if (!(await answersWithin(port, () => alive(pid)))) {
    throw new DevRedisError(
      'DEV_REDIS_NOT_ANSWERING',
      `redis-server pid ${pid}, recorded in ${recordPath(dataDir)}, runs but does not answer PING on port ${port}: ` +
        `stop it (kill ${pid}) and start again`,
    );
  }
  const owned = { port, pid, owner: process.pid };
  writeRecord(dataDir, owned);
  return { ...owned, started: false };
}

async function start({ dataDir, port: firstPort }: DevRedisOptions): Promise<Owned> {
  const remembered = readRecord(dataDir)?.port;
  const port = remembered !== undefined && (await isFree(remembered)) ? remembered : await nextFreePort(firstPort);
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--appendonly', 'yes', '--save', '',
      '--maxmemory-policy', 'noeviction'],
    // Its own process group: a Ctrl-C meant for npm start does not stop Redis under the graceful shutdown.
    { stdio: 'ignore', detached: true },
  );
  child.unref();
  await new Promise<void>((ok, fail) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'ENOENT'
          ? new DevRedisError(
              'DEV_REDIS_NO_BINARY',
              'no Redis answering and no redis-server on PATH. Install Redis ' +
                '(apt-get install redis-server, brew install redis) or run `docker compose up`, ' +
                'or set REDIS_URL.',
            )
          : err,
      ),
    );
    child.once('spawn', () => ok());
  });
  const pid = child.pid!;
  writeRecord(dataDir, { port, pid, owner: process.pid });
  if (!(await answersWithin(port, () => child.exitCode === null && child.signalCode === null))) {
    await stop(pid, port);
    throw new Error(`redis-server on port ${port} exited or did not answer within ${ANSWER_WAIT_MS / 1000} s`);
  }
  return { port, pid, owner: process.pid, started: true };
}

/** SIGTERM (Redis then writes its AOF and exits), waiting for the exit; SIGKILL after 10 s. */
async function stop(pid: number, port: number, logger?: Logger): Promise<void> {
  if (!alive(pid)) return;
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      logger?.warn({ pid, port }, 'redis-server did not exit within 10 s of SIGTERM; killing it');
      signal(pid, 'SIGKILL');
      return;
    }
    await delay(50);
  }
}

/** Signals `pid`, which may have exited meanwhile. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Re-checks PING until it answers (true), `running` turns false, or ANSWER_WAIT_MS passes. */
async function answersWithin(port: number, running: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ANSWER_WAIT_MS;
  while (running() && Date.now() < deadline) {
    if (await answersPing(port)) return true;
    await delay(50);
  }
  return false;
}

async function nextFreePort(first: number): Promise<number> {
  for (let port = first; port < first + PORT_RANGE && port <= 65535; port++) {
    if (await isFree(port)) return port;
  }
  throw new DevRedisError('DEV_REDIS_NO_PORT', `no free port in ${first}..${first + PORT_RANGE - 1} for the private redis-server`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const server = createServer();
    server.once('error', () => ok(false));
    server.listen(port, '127.0.0.1', () => server.close(() => ok(true)));
  });
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
