/**
 * `npm test [-- test/<area>/<file>.test.ts ...]`: runs the test files (by default every
 * test/<area>/*.test.ts) with node:test, each in its own process (which inherits this one's Node
 * flags: Node's own TypeScript support with scripts/ts-imports.ts, or `--import tsx` under
 * `npm run coverage`), TEST_CONCURRENCY at a time (default: five times the available parallelism,
 * 10 on 2 cores: most files spend most of their time waiting on processes, Redis, a browser or a
 * task's stages), each test bounded by TEST_TIMEOUT_MS (a test with subtests: all of them
 * together). Exit code 1 when any test fails. A file whose test timed out is ended once its tests
 * are done (forceExit), even if the abandoned test left timers or sockets behind, so that it
 * cannot hold up the suite.
 *
 * Longest first: a file's duration in the last run (recorded under node_modules/.cache/) or, when
 * there is none, its estimate in SLOW_FILES decides when it starts, so that the long files (a
 * browser, the benchmark, real-time waits) run beside the many short ones instead of after them.
 * The order changes when files start, not what they test: every file still runs in its own
 * process, with its own redis-server.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DURATIONS = join(ROOT, 'node_modules', '.cache', 'taskcast-test', 'durations.json');

/**
 * Seconds each of the longest files took in a full run on a 2-core machine (fourteen files at a
 * time, a fast hour; reclaim.test.ts as it runs with its gated tasks): the order for a checkout
 * with no recorded durations yet.
 */
const SLOW_FILES: Record<string, number> = {
  'test/cli/taskcast.test.ts': 120,
  'test/scripts/bench.test.ts': 101,
  'test/scripts/bench-output.test.ts': 69,
  'test/web/page.test.ts': 64,
  'test/gateway/cluster.test.ts': 61,
  'test/worker/shutdown.test.ts': 59,
  'test/runtime/shutdown.test.ts': 56,
  'test/client/task-watchers.test.ts': 56,
  'test/worker/output-exactly-once.test.ts': 53,
  'test/web/page-output.test.ts': 53,
  'test/web/page-gateway-changes.test.ts': 50,
  'test/ws/ws-slow-consumer.test.ts': 50,
  'test/store/cluster-nodes.test.ts': 48,
  'test/deploy/compose.test.ts': 47,
  'test/security/bad-input.test.ts': 44,
  'test/worker/reclaim.test.ts': 44,
  'test/store/replication.test.ts': 44,
  'test/http/cluster-starts.test.ts': 41,
  'test/cli/watch-output.test.ts': 41,
  'test/hub/feed.test.ts': 39,
  'test/metrics/metrics.test.ts': 38,
};

const concurrency = Number(process.env.TEST_CONCURRENCY ?? 5 * availableParallelism());
/**
 * Time limit of one test, ms. A test with subtests shares it with them; the longest of those take
 * 70 s in a fast hour (reclaim and fencing, with its worker processes), and a slow hour and a busy
 * machine stretch that up to 2.5 times.
 */
const TEST_TIMEOUT_MS = 240_000;
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`TEST_CONCURRENCY must be a positive integer, not ${process.env.TEST_CONCURRENCY}`);

const args = process.argv.slice(2).map((f) => relative(ROOT, resolve(f)));
const files = args.length > 0 ? args : allTestFiles();
const recorded = readDurations();
const estimate = (file: string) => recorded[file] ?? SLOW_FILES[file] ?? 0;
const ordered = [...files].sort((a, b) => estimate(b) - estimate(a) || a.localeCompare(b));

/** Seconds per file in this run: its top-level tests run one after another, so their sum. */
const measured: Record<string, number> = {};
// V8's code cache for the files every test process compiles alike (the libraries, and the sources
// as Node's TypeScript support or tsx turns them into JavaScript). An own NODE_COMPILE_CACHE is kept.
process.env.NODE_COMPILE_CACHE ??= join(ROOT, 'node_modules', '.cache', 'taskcast-test', 'compile-cache');
const stream = run({ files: ordered.map((f) => join(ROOT, f)), concurrency, timeout: TEST_TIMEOUT_MS, forceExit: true });
stream.on('test:fail', (data) => {
  if (!data.todo && !data.skip) process.exitCode = 1;
});
for (const event of ['test:pass', 'test:fail'] as const) {
  stream.on(event, (data) => {
    if (data.nesting !== 0 || !data.file) return;
    const file = relative(ROOT, data.file);
    measured[file] = (measured[file] ?? 0) + data.details.duration_ms / 1000;
  });
}
stream.once('end', () => writeDurations({ ...recorded, ...measured }));
stream.compose(spec).pipe(process.stdout);

function allTestFiles(): string[] {
  return readdirSync(join(ROOT, 'test'), { withFileTypes: true })
    .filter((area) => area.isDirectory())
    .flatMap((area) => readdirSync(join(ROOT, 'test', area.name)).filter((f) => f.endsWith('.test.ts')).map((f) => `test/${area.name}/${f}`));
}

function readDurations(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(DURATIONS, 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

/** Records them, without the files that no longer exist. */
function writeDurations(durations: Record<string, number>): void {
  const kept = Object.fromEntries(Object.entries(durations).filter(([file]) => existsSync(join(ROOT, file))));
  mkdirSync(join(DURATIONS, '..'), { recursive: true });
  writeFileSync(DURATIONS, `${JSON.stringify(kept, null, 1)}\n`);
}
