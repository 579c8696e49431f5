import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { stopDeadlineMs } from '../../src/runtime/main.js';
import { redisTarget, runGateway, runWorker } from '../../src/runtime/services.js';
import { redisEnv, type ClusterSeeds, type Scope } from './processes.js';
import { withTimeout } from './wait.js';

export type { ClusterSeeds };

type LogLine = Record<string, unknown>;

/** A gateway or worker running in the test's own process, with the log lines it wrote. */
export interface InProcessService {
  /** Every JSON log line it wrote so far. */
  readonly logs: LogLine[];
  /** Resolves with the first log line matching `match`. */
  waitForLog(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
}

export interface InProcessGateway extends InProcessService {
  port: number;
  url: string;
}

export interface InProcessWorker extends InProcessService {
  /** Base URL of its probe server (HEALTH_PORT=0 unless `env` sets it). */
  healthUrl: string;
}

/**
 * A gateway started as src/bin/gateway.ts starts it (same config parsing, runGateway), but in
 * this process: for tests of what it serves, not of the process around it (signals, exit codes,
 * crashes: those use startGatewayProc). Stopped, as SIGTERM would, when the test ends.
 */
export async function startGatewayInProcess(t: Scope, redisUrl: string | ClusterSeeds, env: Record<string, string> = {}): Promise<InProcessGateway> {
  const service = await start(t, 'gateway', { ...env, ...redisEnv(redisUrl), PORT: '0' });
  const line = await service.waitForLog((l) => l.msg === 'gateway listening', 'gateway listening');
  const port = Number(line.port);
  return Object.assign(service, { port, url: `http://127.0.0.1:${port}` });
}

/**
 * A worker started as src/bin/worker.ts starts it, in this process; stopped when the test ends.
 * SHUTDOWN_GRACE_MS is 0 unless `env` sets it: the stop at the end of a test hands running tasks
 * back at once instead of waiting up to 10 s for them (the grace itself is tested with processes).
 */
export async function startWorkerInProcess(t: Scope, redisUrl: string | ClusterSeeds, env: Record<string, string> = {}): Promise<InProcessWorker> {
  const service = await start(t, 'worker', { HEALTH_PORT: '0', SHUTDOWN_GRACE_MS: '0', ...env, ...redisEnv(redisUrl) });
  const health = await service.waitForLog((l) => l.msg === 'health listening', 'health listening');
  return Object.assign(service, { healthUrl: `http://127.0.0.1:${Number(health.port)}` });
}

/** TASK_MODULES naming test/fixtures/test-tasks.ts, for services in this process (loaded as the test process loads TypeScript). */
export function inProcessTestTasksEnv(): { TASK_MODULES: string } {
  return { TASK_MODULES: fileURLToPath(new URL('../fixtures/test-tasks.ts', import.meta.url)) };
}

async function start(t: Scope, name: 'gateway' | 'worker', env: Record<string, string | undefined>): Promise<InProcessService> {
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'info', ...env });
  const logs: LogLine[] = [];
  const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  const logger = createLogger(config.LOG_LEVEL, name, {
    pretty: false,
    destination: {
      write(text: string) {
        const line = JSON.parse(text) as LogLine;
        logs.push(line);
        for (const w of waiters) {
          if (w.match(line)) {
            waiters.delete(w);
            w.resolve(line);
          }
        }
      },
    },
  });
  const run = name === 'gateway' ? runGateway : runWorker;
  const stop = await run(config, logger, redisTarget(config));
  // As the process would give up on a stop that takes too long, a test fails on it.
  t.after(() => withTimeout(stop(), `${name} to stop`, stopDeadlineMs(config)));
  return {
    logs,
    waitForLog(match, what, timeoutMs = 15_000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return withTimeout(new Promise<LogLine>((resolve) => waiters.add({ match, resolve })), `${name}: ${what}`, timeoutMs);
    },
  };
}
