import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/runtime/dev-redis.js';
import { answersPing } from '../../src/store/ping.js';

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** The server process, for fault injection (kill -9, SIGSTOP). */
  readonly process: ChildProcess;
  /** Starts it again on the same port and data dir (AOF replays what was acknowledged). */
  restart(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  close(): Promise<void>;
}

export function assertRedisServerBinary(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(
      'redis-server is not on PATH: the tests need a real Redis. Install it (apt-get install -y redis-server) ' +
        'or set REDIS_URL to a scratch server.',
    );
  }
}

/**
 * Spawns a private redis-server on a free port in a temp dir (AOF on by default). `fsyncAlways`
 * for a test that kills it (-9) and counts on every acknowledged write: with `appendfsync
 * everysec` Redis may hold writes back from the AOF for up to 2 s while an fsync is slow (a busy
 * disk), replying meanwhile, and a kill then loses them.
 */
export async function startRedisServer(options: { appendonly?: boolean; fsyncAlways?: boolean } = {}): Promise<RedisServer> {
  assertRedisServerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'taskcast-redis-'));
  const port = await freePort();
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', options.appendonly === false ? 'no' : 'yes', '--maxmemory-policy', 'noeviction',
    ...(options.fsyncAlways ? ['--appendfsync', 'always'] : []),
  ];
  let child = await launch(args, port);
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get process() {
      return child;
    },
    async restart() {
      if (child.exitCode === null && child.signalCode === null) await stop(child, 'SIGKILL');
      child = await launch(args, port);
    },
    kill: (signal = 'SIGKILL') => stop(child, signal),
    async close() {
      await stop(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

const alive = new Set<ChildProcess>();
// Servers live as long as the test process at most, whatever ends it.
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

/** Spawns redis-server with `args` (which must listen on `port`); resolves once it answers PING (5 s at most). Killed when this process exits. */
export async function launch(args: string[], port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  child.unref();
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    if (await answersPing(port)) return child;
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not answer within 5 s');
}

/** Sends `signal` to `child` unless it has exited; resolves when it has. */
export function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    // Waiting for the exit must keep the event loop alive (the child itself is unref'd).
    child.ref();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/**
 * The pids of the live redis-server processes working in `dir` (Redis runs in its --dir), from
 * /proc: Linux only. Redis rewrites its command line, so the cwd is what tells the data dir.
 */
export function redisServersIn(dir: string): number[] {
  const wanted = realpathSync(dir);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (stat.includes('(redis-server)') && state !== 'Z' && readlinkSync(`/proc/${entry}/cwd`) === wanted) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

/** SIGKILLs `pid` if it still runs (cleanup of a server a test's process left behind). */
export function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
