import { pino, type Logger } from 'pino';

export type { Logger };

const SECRET_FIELDS = ['authorization', 'token', 'watch_token', 'api_token', 'cookie'];
const URL_FIELDS = ['url', 'originalUrl'];

/** `token=` query values in a URL, replaced (for request URLs of WebSocket and SSE watches). */
export function redactTokenParams(url: string): string {
  return url.replace(/([?&](?:token|access_token)=)[^&#]*/gi, '$1[REDACTED]');
}

/**
 * Tokens never reach the logs: secret fields are censored wherever they appear one or two levels
 * deep (e.g. `headers.authorization`), and URLs keep everything but their token parameters.
 */
export const redaction = {
  paths: [
    ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
    ...URL_FIELDS.flatMap((f) => [f, `*.${f}`]),
  ],
  censor: (value: unknown, path: string[]): unknown =>
    URL_FIELDS.includes(path.at(-1)!) && typeof value === 'string' ? redactTokenParams(value) : '[REDACTED]',
};

export function createLogger(level: string, name: string): Logger {
  return pino({ name, level, base: { pid: process.pid }, redact: redaction });
}
