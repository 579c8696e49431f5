import { compareEventIds } from '../../src/wire/event-id.js';
import { taskKey } from '../../src/store/keys.js';
import type { Redis } from '../../src/store/redis.js';
import { checkExact, idOf, nowMs, openWatchers, startTasks, until } from './fanout.js';
import { LiteHttp } from './http-lite.js';
import { round, STAGE0 } from './load.js';
import { namedClients, rssBytes, type Service } from './procs.js';

/** The Redis clients a gateway holds (CLIENT SETNAME), counted by the fan-out measure. */
const GATEWAY_CLIENTS = ['taskcast:gateway', 'taskcast:hub-reader'];

/** W watchers on live tasks: the worker is paused (SIGSTOP) until every watcher is in place. */
export async function fanout(
  { port, gateway, worker, admin }: { port: number; gateway: Service; worker: Service; admin: Redis },
  opt: { watchers: number; fanoutTasks: number },
): Promise<Record<string, unknown>> {
  const http = new LiteHttp(port);
  worker.child.kill('SIGSTOP');
  try {
    const tasks = await startTasks(http, opt.fanoutTasks, STAGE0);
    const rssBefore = rssBytes(gateway.child.pid!);
    let lastAt = 0;
    const plan = Array.from({ length: opt.watchers }, (_, i) => [tasks[i % tasks.length]!, undefined] as [string, undefined]);
    const watchers = await openWatchers(port, plan, 500, (_i, _d, at) => (lastAt = at));
    await until(() => watchers.every((w) => w.messages.length >= 1), 'every watcher to get PENDING', 120_000);
    const rssAfter = rssBytes(gateway.child.pid!);
    const conns = await namedClients(admin, GATEWAY_CLIENTS);
    const started = nowMs();
    worker.child.kill('SIGCONT');
    const codes = await Promise.race([
      Promise.all(watchers.map((w) => w.closed)),
      new Promise<null>((r) => setTimeout(() => r(null), 120_000).unref()),
    ]);
    const exact = await checkExact(admin, watchers.map((w, i) => ({ taskId: tasks[i % tasks.length]!, ids: w.messages.map(idOf) })));
    const live = watchers.reduce((n, w) => n + w.messages.length - 1, 0);
    const result = {
      watchers: opt.watchers,
      tasks: opt.fanoutTasks,
      all_delivered: exact.gaps === 0 && exact.duplicates === 0 && exact.wrong === 0 && codes !== null,
      ...exact,
      closed_1000: codes?.filter((c) => c === 1000).length ?? 0,
      live_events: live,
      events_per_s: round((live / (lastAt - started)) * 1000),
      gateway_rss_mb: round(rssAfter / 2 ** 20),
      rss_per_watcher_kb: round((rssAfter - rssBefore) / opt.watchers / 1024),
      gateway_redis_connections: conns,
    };
    for (const w of watchers) w.ws.destroy();
    return result;
  } finally {
    worker.child.kill('SIGCONT');
    http.close();
  }
}

/** Watchers dropped mid-task, then all resumed at once with their lastEventId. */
export async function storm(
  { port, admin }: { port: number; admin: Redis },
  opt: { storm: number; stormTasks: number },
): Promise<Record<string, unknown>> {
  const http = new LiteHttp(port);
  const tasks = await startTasks(http, opt.stormTasks, JSON.stringify({ stage_ms: 1000 }));
  http.close();
  const plan = Array.from({ length: opt.storm }, (_, i) => [tasks[i % tasks.length]!, undefined] as [string, undefined]);
  const first = await openWatchers(port, plan, 500);
  await until(() => first.every((w) => w.messages.length >= 2), 'every watcher past STARTED', 60_000);
  for (const w of first) w.ws.destroy();
  const lastSeen = first.map((w) => idOf(w.messages.at(-1)!));
  // Resume only once every task has moved on, so that each resumption has a gap to replay.
  const heads = new Map<string, string>();
  for (;;) {
    for (const taskId of tasks) heads.set(taskId, (await admin.hget(taskKey(taskId), 'last_event_id')) ?? '');
    if (first.every((_, i) => heads.get(tasks[i % tasks.length]!) !== lastSeen[i])) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const resumedAt: number[] = new Array(opt.storm).fill(0);
  const started = nowMs();
  const second = await openWatchers(
    port,
    plan.map(([taskId], i) => [taskId, lastSeen[i]]),
    opt.storm,
    (i, data, at) => {
      if (resumedAt[i] === 0 && compareEventIds(idOf(data), heads.get(tasks[i % tasks.length]!)!) >= 0) resumedAt[i] = at;
    },
  );
  await until(() => resumedAt.every((at) => at > 0), 'every watcher to resume', 120_000);
  const resumed = nowMs();
  await Promise.all(second.map((w) => w.closed));
  const exact = await checkExact(
    admin,
    first.map((w, i) => ({ taskId: tasks[i % tasks.length]!, ids: [...w.messages, ...second[i]!.messages].map(idOf) })),
  );
  return {
    watchers: opt.storm,
    tasks: opt.stormTasks,
    full_resumption_ms: round(resumed - started),
    gaps: exact.gaps,
    duplicates: exact.duplicates,
    out_of_order: exact.wrong,
    delivered: exact.delivered,
    expected: exact.expected,
  };
}
