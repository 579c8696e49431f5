import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtSrc } from './built-src.js';
import { withTimeout } from './wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A port nothing listens on, for a Redis that does not answer: below the ephemeral range that
 * freePort and every server of the suite draw from (a port freed for one test can be taken by
 * another's gateway meanwhile, which answers HTTP).
 */
export const CLOSED_PORT = 1;

/** Where cleanup is registered: a TestContext (`t`), or `{ after }` from node:test for a whole file. */
export interface Scope {
  after(fn: () => unknown): void;
}

export interface Proc {
  readonly child: ChildProcess;
  /** Every JSON log line the process printed so far. */
  readonly logs: Record<string, unknown>[];
  /** Resolves with the first log line matching `match`. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | NodeJS.Signals>;
}

export interface ServiceProc extends Proc {
  port: number;
  url: string;
}

const alive = new Set<ChildProcess>();
// Spawned services live as long as the test process at most, whatever ends it (one listener for all).
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

/** Runs an entry point of src/bin as its own process, as in production: compiled, without a loader (see builtSrc); an undefined `env` value unsets it. */
export function spawnEntry(entry: 'gateway' | 'worker' | 'start', env: Record<string, string | undefined>): Proc {
  const child = spawn(process.execPath, [join(builtSrc(), `src/bin/${entry}.js`)], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }>();
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text);
      } catch {
        continue;
      }
      logs.push(line);
      for (const w of waiters) {
        if (w.match(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal!)),
  );
  return {
    child,
    logs,
    exited,
    kill: (signal = 'SIGTERM') => void child.kill(signal),
    waitForLog(match, what, timeoutMs = 15_000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      const wait = new Promise<Record<string, unknown>>((resolve, reject) => {
        waiters.add({ match, resolve });
        void exited.then((code) => reject(new Error(`${entry} exited (${code}) before ${what}\n${stderr}`)));
      });
      return withTimeout(wait, `${entry}: ${what}\n${stderr}`, timeoutMs);
    },
  };
}

/** How long a process may take to start: start-up speed is not under test, and a loaded machine slows it many times over. */
export const STARTUP_TIMEOUT_MS = 60_000;

/** TASK_MODULES naming test/fixtures/test-tasks.ts as compiled with src, for spawned processes. */
export function testTasksEnv(): { TASK_MODULES: string } {
  return { TASK_MODULES: join(builtSrc(), 'test/fixtures/test-tasks.js') };
}

/** A Redis Cluster's seed nodes, as REDIS_CLUSTER_NODES takes them (test/helpers/redis-cluster.ts). */
export interface ClusterSeeds {
  seeds: string;
}

/** REDIS_URL for a URL; for a cluster REDIS_CLUSTER_NODES, and no REDIS_URL (not even one this process has: both is an error). */
export function redisEnv(redis: string | ClusterSeeds): Record<string, string | undefined> {
  return typeof redis === 'string' ? { REDIS_URL: redis } : { REDIS_URL: undefined, REDIS_CLUSTER_NODES: redis.seeds };
}

/** A gateway process on a free port, on one Redis (its URL) or a cluster; killed when the test ends. */
export async function startGatewayProc(t: Scope, redis: string | ClusterSeeds, env: Record<string, string> = {}): Promise<ServiceProc> {
  const proc = spawnEntry('gateway', { ...redisEnv(redis), PORT: '0', ...env });
  t.after(() => stopProc(proc));
  const line = await proc.waitForLog((l) => l.msg === 'gateway listening', 'gateway listening', STARTUP_TIMEOUT_MS);
  const port = Number(line.port);
  return Object.assign(proc, { port, url: `http://127.0.0.1:${port}` });
}

export interface WorkerProc extends Proc {
  /** Base URL of the worker's probe server (HEALTH_PORT=0 unless `env` sets it). */
  healthUrl: string;
}

/** A worker process, on one Redis (its URL) or a cluster; killed when the test ends. */
export async function startWorkerProc(t: Scope, redis: string | ClusterSeeds, env: Record<string, string> = {}): Promise<WorkerProc> {
  const proc = spawnEntry('worker', { ...redisEnv(redis), HEALTH_PORT: '0', ...env });
  t.after(() => stopProc(proc));
  const health = await proc.waitForLog((l) => l.msg === 'health listening', 'health listening', STARTUP_TIMEOUT_MS);
  await proc.waitForLog((l) => l.msg === 'worker started', 'worker started', STARTUP_TIMEOUT_MS);
  return Object.assign(proc, { healthUrl: `http://127.0.0.1:${Number(health.port)}` });
}

/** SIGTERM, then SIGKILL if it has not exited within 5 s. */
export async function stopProc(proc: Proc): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await proc.exited;
  clearTimeout(timer);
}
