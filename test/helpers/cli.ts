import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtSrc } from './built-src.js';
import { withTimeout } from './wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  /** Called with each complete line of stdout as it arrives. */
  onLine?: (line: string) => void;
  /** Called with each complete line of stderr as it arrives. */
  onErrLine?: (line: string) => void;
  /** Runs it in a pseudo-terminal of this many columns (util-linux `script`): stdout and stderr are both the terminal's bytes in `stdout`. */
  tty?: { columns: number };
  /** Through `bin/taskcast.js`, the package's bin (tsx in a checkout), instead of src compiled once (builtSrc). */
  bin?: boolean;
}

function lines(onLine: ((line: string) => void) | undefined): (text: string) => void {
  let pending = '';
  return (text) => {
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      onLine?.(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  };
}

const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;

/**
 * Runs the CLI as its own process: src/bin/taskcast.ts compiled (builtSrc), as the image runs
 * dist/bin/taskcast.js, or with `bin` through `bin/taskcast.js`; killed if it runs over 90 s.
 */
export function taskcast(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const argv = [process.execPath, options.bin ? 'bin/taskcast.js' : join(builtSrc(), 'src/bin/taskcast.js'), ...args];
  const [command, ...commandArgs] = options.tty
    ? ['script', '-qefc', `stty cols ${options.tty.columns} rows 24; exec ${argv.map(quote).join(' ')}`, '/dev/null']
    : argv;
  const child = spawn(command!, commandArgs, {
    cwd: ROOT,
    env: { ...process.env, TASKCAST_URL: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const outLines = lines(options.onLine);
  const errLines = lines(options.onErrLine);
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    outLines(chunk.toString('utf8'));
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
    errLines(chunk.toString('utf8'));
  });
  const done = new Promise<CliRun>((resolve) => child.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  return withTimeout(done, `taskcast ${args.join(' ')}`, 90_000).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
}
