/** What a command needs from its process; the entry point passes the real ones, tests their own. */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(text: string): unknown };
  env: Record<string, string | undefined>;
  /** Aborted on SIGINT/SIGTERM: watches stop and the command returns EXIT.INTERRUPTED. */
  signal: AbortSignal;
}

/** Exit codes, documented in the README ("Command-line client"). */
export const EXIT = {
  OK: 0,
  /** The task FAILED. */
  FAILED: 1,
  /** Bad command line (unknown option, malformed id or JSON). */
  USAGE: 2,
  /** The task was CANCELLED. */
  CANCELLED: 3,
  /** No such task (never created or expired), or the server refused the request as invalid. */
  NOT_FOUND: 4,
  /** The server could not be reached or answered with an error. */
  ERROR: 5,
  /** The server refused the token (HTTP 401, close code 4401): none given while auth is on, or a wrong or expired one. */
  UNAUTHORIZED: 6,
  INTERRUPTED: 130,
} as const;

/** Printed after a refused token (exit code 6). */
export const UNAUTHORIZED_HINT = 'pass an API token with --token or TASKCAST_TOKEN (the gateway has auth on)';

/** A command-line mistake: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}
