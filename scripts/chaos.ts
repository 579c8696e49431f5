/**
 * Chaos soak: `npm run chaos [-- <tasks>]` (default 500). Starts a private redis-server (AOF on),
 * a gateway and WORKERS workers, starts the tasks while killing workers at random (mostly
 * SIGKILL, sometimes SIGTERM) and starting replacements, then checks every task's event log:
 * started, completed, lost, duplicated stages and gaps. Exits 1 unless the last four are 0 and no
 * command is left pending.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { COMMANDS_STREAM, WORKER_GROUP, eventsKey, taskKey } from '../src/store/keys.js';
import { closeRedis } from '../src/store/redis.js';
import { startTask } from '../test/helpers/http.js';
import { startGatewayProc, startWorkerProc, stopProc, type Proc } from '../test/helpers/processes.js';
import { connectRedis } from '../test/helpers/redis.js';
import { startRedisServer } from '../test/helpers/redis-server.js';

const TASKS = Number(process.argv[2] ?? process.env.CHAOS_TASKS ?? 500);
const WORKERS = 3;
const STAGES = ['PENDING', 'STARTED', 'PROCESSING', 'CONCLUDING', 'COMPLETED'];
const WORKER_ENV = { CLAIM_IDLE_MS: '1000', SHUTDOWN_GRACE_MS: '500', WORKER_CONCURRENCY: '16' };

// Every spawned process registers an exit hook that kills it; chaos spawns many.
process.setMaxListeners(0);
const cleanups: (() => unknown)[] = [];
const scope = { after: (fn: () => unknown) => void cleanups.push(fn) };
const say = (text: string) => process.stdout.write(`${text}\n`);

async function main(): Promise<number> {
  const server = await startRedisServer({ appendonly: true });
  scope.after(() => server.close());
  const redis = await connectRedis(server.url);
  scope.after(() => closeRedis(redis));
  // All starts come from one address: the start rate limit (README "Security") is lifted.
  const gateway = await startGatewayProc(scope, server.url, { START_BURST: '1000000', START_REFILL_PER_S: '1000000' });
  const workers: Proc[] = [];
  for (let i = 0; i < WORKERS; i++) workers.push(await startWorkerProc(scope, server.url, WORKER_ENV));

  let kills = 0;
  let terms = 0;
  let chaos = true;
  const monkey = (async () => {
    while (chaos) {
      await delay(200 + Math.random() * 600);
      if (!chaos) break;
      const victim = workers.splice(Math.floor(Math.random() * workers.length), 1)[0]!;
      if (Math.random() < 0.8) {
        victim.kill('SIGKILL');
        kills += 1;
      } else {
        victim.kill('SIGTERM');
        terms += 1;
      }
      await victim.exited;
      workers.push(await startWorkerProc(scope, server.url, WORKER_ENV));
    }
  })();

  const started = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < TASKS; i += 10) {
    const batch = Math.min(10, TASKS - i);
    ids.push(...(await Promise.all(Array.from({ length: batch }, () => startTask(gateway.url, { stage_ms: 100 + Math.floor(Math.random() * 200) })))));
    await delay(150);
  }
  // Chaos goes on until every task has ended, or two minutes pass.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const statuses = await Promise.all(ids.map((id) => redis.hget(taskKey(id), 'status')));
    if (statuses.every((s) => s === 'COMPLETED' || s === 'FAILED' || s === 'CANCELLED') || Date.now() > deadline) break;
    await delay(250);
  }
  chaos = false;
  await monkey;

  let completed = 0;
  let lost = 0;
  let duplicates = 0;
  let gaps = 0;
  for (const id of ids) {
    const statuses = (await redis.xrange(eventsKey(id), '-', '+')).map(([, f]) => f[f.indexOf('status') + 1]!);
    if (statuses.at(-1) === 'COMPLETED') completed += 1;
    else lost += 1;
    const seen = new Map<string, number>();
    for (const s of statuses) seen.set(s, (seen.get(s) ?? 0) + 1);
    for (const n of seen.values()) duplicates += n - 1;
    // A gap: a stage missing before the last one recorded, or stages out of order.
    const last = Math.max(...statuses.map((s) => STAGES.indexOf(s)));
    const expected = STAGES.slice(0, last + 1);
    if ([...new Set(statuses)].join() !== expected.join()) gaps += 1;
  }
  const [pending] = (await redis.xpending(COMMANDS_STREAM, WORKER_GROUP)) as [number];
  const seconds = ((Date.now() - started) / 1000).toFixed(1);

  say(`chaos: ${TASKS} tasks, ${WORKERS} workers, ${kills} SIGKILL + ${terms} SIGTERM of workers, ${seconds} s`);
  say(`  started     ${ids.length}`);
  say(`  completed   ${completed}`);
  say(`  lost        ${lost}`);
  say(`  duplicated  ${duplicates}`);
  say(`  gaps        ${gaps}`);
  say(`  pending     ${pending}`);
  const ok = ids.length === TASKS && lost === 0 && duplicates === 0 && gaps === 0 && pending === 0;
  say(ok ? 'OK' : 'FAILED');
  for (const w of workers) await stopProc(w);
  return ok ? 0 : 1;
}

main()
  .catch((err) => {
    process.stderr.write(`chaos failed: ${String(err instanceof Error ? err.stack : err)}\n`);
    return 1;
  })
  .then(async (code) => {
    for (const fn of cleanups.reverse()) await fn();
    process.exit(code);
  });
