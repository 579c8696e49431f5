import { ConfigError, loadConfig, type Config } from '../config.js';
import { createLogger, settleLogs, type Logger } from '../logger.js';

export type Stop = () => Promise<void>;

/**
 * How long a stop may take before the process gives up on it and exits 1, ms: the grace periods
 * plus STOP_MARGIN_MS, which covers the bounded steps around a worker's grace when Redis hangs
 * (ending its reads and handing back commands before it, releasing them and closing after it).
 */
export function stopDeadlineMs(config: Pick<Config, 'SHUTDOWN_READY_DELAY_MS' | 'SHUTDOWN_GRACE_MS'>): number {
  return config.SHUTDOWN_READY_DELAY_MS + config.SHUTDOWN_GRACE_MS + STOP_MARGIN_MS;
}

export const STOP_MARGIN_MS = 10_000;

/**
 * The shared shape of our entry points: parse config once (a bad value exits 2 naming the
 * variable), start, and on SIGTERM/SIGINT stop gracefully within SHUTDOWN_READY_DELAY_MS +
 * SHUTDOWN_GRACE_MS (plus a margin). A second signal exits at once.
 */
export function runMain(name: string, start: (ctx: { config: Config; logger: Logger }) => Promise<Stop>): void {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    process.stderr.write(`${name}: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.LOG_LEVEL, name);
  // Log lines stdout has not taken within this are dropped at exit (see settleLogs).
  const exit = (code: number) => void settleLogs(logger, LOG_SETTLE_MS).then(() => process.exit(code));
  let stop: Stop | undefined;
  let stopping = false;

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal; exiting now');
      exit(1);
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      exit(1);
    }, stopDeadlineMs(config)).unref();
    // Before start() resolved there is nothing to stop: exit at once.
    if (stop) stopNow(stop);
    else exit(0);
  };
  /** Exits 0 once `s` resolved, 1 when it rejected. */
  const stopNow = (s: Stop) =>
    void s().then(
      () => exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  start({ config, logger }).then(
    (s) => {
      stop = s;
      if (stopping) stopNow(s);
    },
    (err) => {
      if (err instanceof ConfigError) {
        process.stderr.write(`${name}: ${err.message}\n`);
        exit(2);
        return;
      }
      logger.fatal({ err }, `${name} failed to start`);
      exit(1);
    },
  );
}

/** How long an exit waits for its log lines to reach stdout, ms. */
const LOG_SETTLE_MS = 1000;
