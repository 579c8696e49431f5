import type { Redis } from '../../src/store/redis.js';
import { MUX_PATH } from '../../src/wire/mux.js';
import { checkExact, startTasks, until } from './fanout.js';
import { LiteHttp } from './http-lite.js';
import { round, STAGE0 } from './load.js';
import { cpuMs, namedClients, rssBytes, type Service } from './procs.js';
import { openLiteWs, type LiteWs } from './ws-lite.js';

/** One subscription as the load generator sees it: its task, the ids it got, and how it ended. */
interface Sub {
  taskId: string;
  ids: string[];
  ended: number | undefined;
}

interface Client {
  ws: LiteWs;
  opened: boolean;
  subs: Sub[];
}

type Mode = 'mux' | 'socket';

/** The Redis clients a gateway holds (CLIENT SETNAME). */
const GATEWAY_CLIENTS = ['taskcast:gateway', 'taskcast:hub-reader'];

/**
 * C clients each watching K tasks (client i: tasks i*K .. i*K+K-1, modulo T), once with one
 * multiplexed `/ws` connection per client (K subscriptions each) and once with one
 * `/ws/task/<id>` socket per task, each mode on a fresh gateway process (so its RSS baseline is
 * its own). The worker is paused (SIGSTOP) while the clients connect; then every task runs to its
 * end. Gateway RSS growth per subscription (after connecting, before the events) and gateway CPU
 * per delivered event (from the first connect to the last end) are reported, with mux/socket ratios.
 */
export async function muxFanout(
  { startGateway, worker, admin }: { startGateway: () => Promise<Service>; worker: Service; admin: Redis },
  opt: { muxClients: number; muxPerClient: number; muxTasks: number },
): Promise<Record<string, unknown>> {
  const modes: Record<Mode, Record<string, unknown>> = {} as Record<Mode, Record<string, unknown>>;
  for (const mode of ['socket', 'mux'] as const) {
    const others = await namedClients(admin, GATEWAY_CLIENTS);
    const gateway = await startGateway();
    try {
      modes[mode] = await runMode(mode, gateway, worker, admin, others, opt);
    } finally {
      await gateway.stop();
    }
  }
  const ratio = (key: string) => round(Number(modes.mux[key]) / Number(modes.socket[key]), 3);
  return {
    clients: opt.muxClients,
    tasks_per_client: opt.muxPerClient,
    tasks: opt.muxTasks,
    mux: modes.mux,
    socket: modes.socket,
    rss_per_subscription_ratio: ratio('rss_per_subscription_kb'),
    cpu_per_event_ratio: ratio('cpu_us_per_event'),
  };
}

async function runMode(
  mode: Mode,
  gateway: Service,
  worker: Service,
  admin: Redis,
  /** Redis connections of the other gateways (not this mode's). */
  others: number,
  opt: { muxClients: number; muxPerClient: number; muxTasks: number },
): Promise<Record<string, unknown>> {
  const http = new LiteHttp(gateway.port);
  worker.child.kill('SIGSTOP');
  try {
    const tasks = await startTasks(http, opt.muxTasks, STAGE0);
    const plan = Array.from({ length: opt.muxClients }, (_, i) =>
      Array.from({ length: opt.muxPerClient }, (_, j) => tasks[(i * opt.muxPerClient + j) % tasks.length]!),
    );
    const pid = gateway.child.pid!;
    const rssBefore = rssBytes(pid);
    const cpuBefore = cpuMs(pid);
    const clients: Client[] = [];
    // At most 500 handshakes at a time, so that the listen backlog is not what gets measured.
    const sockets = mode === 'mux' ? plan.map((taskIds) => taskIds) : plan.flat().map((taskId) => [taskId]);
    for (let i = 0; i < sockets.length; i += 500) {
      const group = sockets.slice(i, i + 500).map((taskIds) => connect(gateway.port, mode, taskIds));
      clients.push(...group);
      await until(() => group.every((c) => c.opened), 'sockets to open', 120_000);
    }
    const subs = clients.flatMap((c) => c.subs);
    await until(() => subs.every((s) => s.ids.length >= 1), 'every subscription to get PENDING', 120_000);
    const rssAfter = rssBytes(pid);
    const conns = (await namedClients(admin, GATEWAY_CLIENTS)) - others;
    worker.child.kill('SIGCONT');
    await until(() => subs.every((s) => s.ended !== undefined), 'every subscription to end', 180_000);
    const cpu = cpuMs(pid) - cpuBefore;
    const exact = await checkExact(admin, subs.map((s) => ({ taskId: s.taskId, ids: s.ids })));
    for (const c of clients) c.ws.destroy();
    return {
      sockets: clients.length,
      subscriptions: subs.length,
      all_delivered: exact.gaps === 0 && exact.duplicates === 0 && exact.wrong === 0 && subs.every((s) => s.ended === 1000),
      ...exact,
      rss_per_subscription_kb: round((rssAfter - rssBefore) / subs.length / 1024),
      cpu_us_per_event: round((cpu * 1000) / exact.delivered),
      gateway_redis_connections: conns,
    };
  } finally {
    worker.child.kill('SIGCONT');
    http.close();
  }
}

/** One socket: `/ws` with a subscribe per task, or `/ws/task/<id>` for its one task. */
function connect(port: number, mode: Mode, taskIds: string[]): Client {
  const subs: Sub[] = taskIds.map((taskId) => ({ taskId, ids: [], ended: undefined }));
  const byTask = new Map(subs.map((s) => [s.taskId, s]));
  const client: Client = { opened: false, subs, ws: undefined as unknown as LiteWs };
  client.ws = openLiteWs(port, mode === 'mux' ? MUX_PATH : `/ws/task/${taskIds[0]}`, {
    open: () => {
      client.opened = true;
      if (mode === 'mux') for (const task of taskIds) client.ws.send(JSON.stringify({ type: 'subscribe', task }));
    },
    text: (data) => {
      const m = JSON.parse(data) as { id?: string; task_id?: string; type: string; task?: string; code?: number };
      if (m.id !== undefined) byTask.get(m.task_id!)!.ids.push(m.id);
      else if (m.type === 'ended') byTask.get(m.task!)!.ended = m.code;
    },
    close: (code) => {
      if (mode === 'socket') subs[0]!.ended ??= code;
    },
  });
  return client;
}
