import { runCli } from '../cli/cli.js';

/** The `taskcast` command-line client (see README "Command-line client"). */
const controller = new AbortController();
const onSignal = () => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal }).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`taskcast: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(5);
  },
);
