import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

const URL_FIELDS = ['url', 'originalUrl'];

/** Secrets that must never reach a log line, wherever a caller puts them. */
export const REDACT_PATHS = [
  'authorization',
  'token',
  'watch_token',
  'password',
  '*.authorization',
  '*.token',
  '*.watch_token',
  '*.password',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'query.token',
  'req.query.token',
  'api_token',
  '*.api_token',
  '*.*.authorization',
  '*.*.token',
  ...URL_FIELDS.flatMap((f) => [f, `*.${f}`]),
];

/** `token=` query values in a URL, replaced (request URLs of WebSocket and SSE watches carry them). */
export function redactTokenParams(url: string): string {
  return url.replace(/([?&](?:token|access_token)=)[^&#]*/gi, '$1[Redacted]');
}

/** Secret fields are replaced; URL fields keep everything but their token parameters. */
function censor(value: unknown, path: string[]): unknown {
  return URL_FIELDS.includes(path.at(-1)!) && typeof value === 'string' ? redactTokenParams(value) : '[Redacted]';
}

export interface LoggerTarget {
  /** Pretty-print for a person; default: only when stdout is a TTY and pino-pretty is installed. */
  pretty?: boolean;
  /** Where JSON lines go (tests); default stdout. */
  destination?: DestinationStream;
}

/** JSON lines, or pino-pretty output on a terminal; secrets redacted either way. */
export function createLogger(level: string, name: string, target: LoggerTarget = {}): Logger {
  const options: LoggerOptions = { name, level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor } };
  const pretty = target.pretty ?? (process.stdout.isTTY === true && prettyInstalled());
  if (pretty && !target.destination) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  if (target.destination) return pino(options, target.destination);
  // Asynchronous writes, as pino's default, with the bytes not yet written counted for settleLogs.
  const stream = pino.destination({ dest: 1, sync: false });
  let pending = 0;
  stream.on('write', (n: number) => (pending -= n));
  const hooks = {
    streamWrite: (line: string) => {
      pending += Buffer.byteLength(line);
      return line;
    },
  };
  const logger = pino({ ...options, hooks }, stream);
  stdoutLogs.set(logger, { stream, pending: () => pending });
  return logger;
}

const stdoutLogs = new WeakMap<Logger, { stream: ReturnType<typeof pino.destination>; pending(): number }>();

/**
 * Resolves once the lines `logger` wrote to stdout are written, or after `timeoutMs` (ms). Call
 * it before process.exit: pino flushes synchronously on exit and retries a write that stdout does
 * not take (its reader stopped or died) forever, so the process could never exit. After the
 * timeout the stream is destroyed instead, and the lines still waiting are dropped.
 */
export async function settleLogs(logger: Logger, timeoutMs: number): Promise<void> {
  const out = stdoutLogs.get(logger);
  if (!out || out.pending() <= 0) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      out.stream.off('write', onWrite);
      resolve();
    };
    const onWrite = () => {
      if (out.pending() <= 0) done();
    };
    const timer = setTimeout(done, timeoutMs);
    out.stream.on('write', onWrite);
  });
  if (out.pending() > 0) out.stream.destroy();
}

/**
 * A child logger built on first use. A child costs a pass of its bindings through the redaction,
 * and at LOG_LEVEL warn most requests, watches and runs log nothing, so hot paths take this.
 */
export function lazyChild(logger: Logger, bindings: () => Record<string, unknown>): () => Logger {
  let child: Logger | undefined;
  return () => (child ??= logger.child(bindings()));
}

/** pino-pretty is a dev dependency: the production image has none and logs JSON. */
function prettyInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
