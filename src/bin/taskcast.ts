import { runCli } from '../cli/cli.js';

/** The `taskcast` command-line client (see README "Command-line client"). */
const controller = new AbortController();
const onSignal = () => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

/** Exits once stdout and stderr have taken everything written (a pipe may still hold some back). */
function exitAfterWrites(code: number): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal }).then(
  exitAfterWrites,
  (err: unknown) => {
    process.stderr.write(`taskcast: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    exitAfterWrites(5);
  },
);
