import { STARTUP_TIMEOUT_MS, spawnEntry, startGatewayProc, stopProc, type Scope, type ServiceProc } from './processes.js';

export interface RestartableGateway {
  readonly port: number;
  readonly url: string;
  readonly proc: ServiceProc;
  /** Kills the process (SIGKILL by default: no close handshake reaches the clients) and waits for its exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts a new gateway process on the same port; `env` is added to the first one's (e.g. rotated API_TOKENS). */
  restart(env?: Record<string, string>): Promise<void>;
}

/** A gateway process that a test can kill and start again on the same port, as an outage would. */
export async function startRestartableGateway(
  scope: Scope,
  redisUrl: string,
  env: Record<string, string> = {},
): Promise<RestartableGateway> {
  let proc = await startGatewayProc(scope, redisUrl, env);
  const { port, url } = proc;
  return {
    port,
    url,
    get proc() {
      return proc;
    },
    async kill(signal = 'SIGKILL') {
      proc.kill(signal);
      await proc.exited;
    },
    async restart(more = {}) {
      const next = spawnEntry('gateway', { REDIS_URL: redisUrl, ...env, ...more, PORT: String(port) });
      scope.after(() => stopProc(next));
      await next.waitForLog((l) => l.msg === 'gateway listening', 'gateway listening again', STARTUP_TIMEOUT_MS);
      proc = Object.assign(next, { port, url });
    },
  };
}
