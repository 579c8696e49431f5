import assert from 'node:assert/strict';
import { spawn, type SpawnOptionsWithStdioTuple } from 'node:child_process';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../src/logger.js';
import { withTimeout } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, lines: () => text.trim().split('\n').map((l) => JSON.parse(l)) };
}

test('secrets are redacted wherever a caller puts them', () => {
  const out = capture();
  const log = createLogger('info', 'test', { destination: out.stream, pretty: false });
  log.child({ requestId: 'r1' }).info(
    {
      headers: { authorization: 'Bearer A' },
      req: { headers: { authorization: 'Bearer B', cookie: 'C' }, query: { token: 'D' } },
      query: { token: 'E' },
      token: 'F',
      body: { watch_token: 'G', password: 'H' },
      authorization: 'I',
      kept: 'visible',
    },
    'hello',
  );
  const [line] = out.lines();
  const text = JSON.stringify(line);
  for (const secret of ['Bearer A', 'Bearer B', '"C"', '"D"', '"E"', '"F"', '"G"', '"H"', '"I"']) {
    assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
  }
  assert.equal(line!.kept, 'visible');
  assert.equal(line!.requestId, 'r1');
  assert.equal((line!.headers as Record<string, string>).authorization, '[Redacted]');
});

/** Runs a one-line program that logs, with stdout a pipe or (through `script`) a terminal. */
async function logOnce(tty: boolean): Promise<string> {
  const program = "import('./src/logger.ts').then((m) => m.createLogger('info', 'demo').info({ token: 'T0P' }, 'hello there'))";
  const args = ['--import', 'tsx', '-e', program];
  const options: SpawnOptionsWithStdioTuple<'ignore', 'pipe', 'inherit'> = { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] };
  // `script` runs the command on a pseudo-terminal; the program has no double quotes to escape.
  const command = [process.execPath, ...args.slice(0, 3), `"${program}"`].join(' ');
  const child = tty ? spawn('script', ['-qec', command, '/dev/null'], options) : spawn(process.execPath, args, options);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const code = await withTimeout(new Promise((resolve) => child.once('exit', resolve)), 'logger process', 30_000);
  assert.equal(code, 0);
  return out;
}

test('JSON lines when stdout is not a terminal', async () => {
  const out = await logOnce(false);
  const line = JSON.parse(out.trim());
  assert.equal(line.msg, 'hello there');
  assert.equal(line.name, 'demo');
  assert.equal(line.token, '[Redacted]');
});

test('pretty-printed (pino-pretty) when stdout is a terminal, still redacted', async () => {
  const out = await logOnce(true);
  assert.match(out, /INFO.*\(demo\/\d+\).*hello there/);
  assert.throws(() => JSON.parse(out.trim()));
  assert.ok(!out.includes('T0P'));
  assert.match(out, /\[Redacted\]/);
});
