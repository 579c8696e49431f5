import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync, version as esbuildVersion } from 'esbuild';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CACHE = join(ROOT, 'node_modules', '.cache', 'taskcast-test');
/** Compiled with src; the fault-injection task types that processes load through TASK_MODULES. */
const FIXTURES = ['test/fixtures/test-tasks.ts'];

const built = new Map<string, string>();

/**
 * src/ (and FIXTURES, and the .ts files of the directories in `extra`, e.g. the bench's
 * scripts/bench) compiled to JavaScript once per content: a directory `<dir>/src/**.js`,
 * `<dir>/test/fixtures/*.js`, with inline source maps back to the .ts files (coverage and stack
 * traces name src/), src's other files copied, and `<dir>/web` and `<dir>/dist` linked to the
 * checkout's, so paths that src resolves from its own location land where they do in a checkout.
 * Spawned gateways and workers run this instead of loading tsx, which halves their start-up.
 * Concurrent test processes share it: each builds into a private directory and renames it into
 * place; a loser of that race uses the winner's identical build.
 */
export function builtSrc(extra: readonly string[] = []): string {
  const known = built.get(extra.join('\0'));
  if (known) return known;
  const sources = [...listFiles('src'), ...FIXTURES, ...extra.flatMap((d) => listFiles(d).filter((f) => f.endsWith('.ts')))];
  const hash = createHash('sha256').update(esbuildVersion);
  for (const file of sources) hash.update(`\0${file}\0`).update(readFileSync(join(ROOT, file)));
  const dir = join(CACHE, hash.digest('hex').slice(0, 16));
  if (!existsSync(dir)) build(dir, sources);
  built.set(extra.join('\0'), dir);
  return dir;
}

function build(dir: string, sources: string[]): void {
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  buildSync({
    absWorkingDir: ROOT,
    entryPoints: sources.filter((f) => f.endsWith('.ts')),
    outdir: tmp,
    outbase: '.',
    format: 'esm',
    platform: 'node',
    target: 'node24',
    sourcemap: 'inline',
    logLevel: 'error',
  });
  for (const file of sources.filter((f) => !f.endsWith('.ts'))) cpSync(join(ROOT, file), join(tmp, file));
  symlinkSync(join(ROOT, 'web'), join(tmp, 'web'));
  symlinkSync(join(ROOT, 'dist'), join(tmp, 'dist'));
  try {
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dir)) throw err;
  }
}

function listFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(ROOT.length))
    .sort();
}
