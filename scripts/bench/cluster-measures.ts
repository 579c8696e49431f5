import { startRedisCluster } from '../../test/helpers/redis-cluster.js';
import { connectRedis } from '../../test/helpers/redis.js';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { closeRedis, type Redis } from '../../src/store/redis.js';
import { interleaved, median, ratios, type System, type SystemResult } from './compare.js';
import { round, STAGE0, type ThroughputResult } from './load.js';
import { costDelta, redisCounters, spawnTs, startServer, type RedisCost, type Service } from './procs.js';

/** The cluster the comparison starts: masters, each with this many replicas. */
const MASTERS = 3;
const REPLICAS_PER_MASTER = 1;
/** The masters' command shares should be within 20% of each other: max/min at most this. */
export const MASTER_SHARE_TARGET = 1.2;

const GATEWAY_CLIENTS = ['taskcast:gateway', 'taskcast:hub-reader'];
const WORKER_CLIENTS = ['taskcast:worker'];

/** A Redis node the comparison reads counters and connections from. */
interface Node {
  role: 'master' | 'replica';
  port: number;
  client: Redis;
}

interface Counters extends RedisCost {
  /** INFO stats total_commands_processed: every command the node ran (the bench's own included). */
  processed: number;
}

/** One measured round of one system: its tasks and each node's counter deltas, in node order. */
interface Round {
  tasks: number;
  nodes: Counters[];
}

export interface ClusterOptions {
  tasks: number;
  inFlight: number;
  rounds: number;
}

/**
 * The throughput load (load.ts: POST then a WebSocket per task, `inFlight` at a time) on the
 * single-node system the bench runs beside the same gateway and worker on a local Redis Cluster
 * (MASTERS masters, REPLICAS_PER_MASTER replica each, REDIS_CLUSTER_NODES, the cluster defaults
 * otherwise), interleaved over `rounds` rounds. Reports medians over the rounds: tasks/s, Redis CPU
 * (INFO cpu, used_cpu_sys + used_cpu_user) and commands (INFO commandstats, the bench's INFO and
 * CLIENT LIST left out) per task, summed over masters and replicas and by role; each master's share
 * of the commands (INFO stats total_commands_processed); then the gateway's and the worker's Redis
 * connections on every node (CLIENT LIST). `env` is the single-node services' environment.
 */
export async function clusterVsSingle(
  single: { gateway: Service; worker: Service; redisUrl: string },
  env: Record<string, string>,
  nodeArgs: string[],
  opt: ClusterOptions,
): Promise<Record<string, unknown>> {
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const cluster = await startRedisCluster({ masters: MASTERS, replicasPerMaster: REPLICAS_PER_MASTER });
    closers.push(() => cluster.close());
    const clusterEnv = { ...env, REDIS_URL: undefined, REDIS_CLUSTER_NODES: cluster.seeds };
    const gateway = await startServer('cluster gateway', 'src/bin/gateway.ts', clusterEnv, nodeArgs);
    closers.push(gateway.stop);
    const worker = spawnTs('cluster worker', 'src/bin/worker.ts', clusterEnv, nodeArgs);
    closers.push(worker.stop);

    const connect = async (role: Node['role'], port: number, url: string): Promise<Node> => {
      const client = await connectRedis(url, 'bench');
      closers.push(() => closeRedis(client));
      return { role, port, client };
    };
    const masters = await cluster.masters();
    const clusterNodes = await Promise.all(
      cluster.nodes.map((n) => connect(masters.some((m) => m.id === n.id) ? 'master' : 'replica', n.port, n.url)),
    );
    const singleNodes = [await connect('master', Number(new URL(single.redisUrl).port), single.redisUrl)];
    // Every partition's command reader is up before any task is started.
    await waitForClients(clusterNodes, 'taskcast:worker-reader', CLUSTER_LAYOUT.partitions.length, worker);

    const rounds = { single: [] as Round[], cluster: [] as Round[] };
    const system = (name: 'single' | 'cluster', g: Service, w: Service, nodes: Node[]): System => ({
      name,
      port: g.port,
      pids: { gateway: g.child.pid!, worker: w.child.pid! },
      redisCost: false,
      gc: { gateway: g.gc, worker: w.gc },
      sample: async () => {
        const before = await Promise.all(nodes.map((n) => counters(n.client)));
        return async (run: ThroughputResult) => {
          const after = await Promise.all(nodes.map((n) => counters(n.client)));
          rounds[name].push({ tasks: run.tasks, nodes: after.map((a, i) => delta(before[i]!, a)) });
        };
      },
    });
    const res = await interleaved(
      singleNodes[0]!.client,
      [system('single', single.gateway, single.worker, singleNodes), system('cluster', gateway, worker, clusterNodes)],
      { rounds: opt.rounds, tasks: opt.tasks, inFlight: opt.inFlight, body: STAGE0 },
    );
    const s = res.get('single')!;
    const c = res.get('cluster')!;
    const share = masterShares(clusterNodes, rounds.cluster);
    return {
      masters: MASTERS,
      replicas_per_master: REPLICAS_PER_MASTER,
      tasks: opt.tasks,
      in_flight: opt.inFlight,
      rounds: opt.rounds,
      single: { ...figures(s, singleNodes, rounds.single), ...(await connections(singleNodes)) },
      cluster: { ...figures(c, clusterNodes, rounds.cluster), ...(await connections(clusterNodes)) },
      cluster_vs_single: ratios(c, s),
      master_command_share: { ...share, target_max_min: MASTER_SHARE_TARGET },
    };
  } finally {
    for (const close of closers.reverse()) await close();
  }
}

/** Throughput, process CPU and Redis cost per task of one system: medians over its rounds. */
function figures(r: SystemResult, nodes: Node[], rounds: Round[]): Record<string, unknown> {
  const perTask = (pick: (c: Counters) => number, role?: Node['role']) =>
    round(median(rounds.map((x) => x.nodes.reduce((sum, c, i) => sum + (role && nodes[i]!.role !== role ? 0 : pick(c)), 0) / x.tasks)));
  return {
    tasks_per_s: r.tasks_per_s,
    rounds_tasks_per_s: r.rounds_tasks_per_s,
    incomplete: r.incomplete,
    cpu_us_per_task: r.cpu_us_per_task,
    redis_cpu_us_per_task: {
      total: perTask((c) => c.cpu_us),
      masters: perTask((c) => c.cpu_us, 'master'),
      replicas: perTask((c) => c.cpu_us, 'replica'),
    },
    // A replica's commands are those its master's replication stream carries.
    redis_commands_per_task: {
      masters: perTask((c) => c.commands, 'master'),
      replicas: perTask((c) => c.commands, 'replica'),
    },
    masters_by_command_per_task: byCommand(nodes, rounds),
  };
}

/** The masters' commands per task by command, over every round, most frequent first. */
function byCommand(nodes: Node[], rounds: Round[]): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const r of rounds) {
    r.nodes.forEach((c, i) => {
      if (nodes[i]!.role !== 'master') return;
      for (const [name, n] of Object.entries(c.by_command)) calls[name] = (calls[name] ?? 0) + n;
    });
  }
  const tasks = rounds.reduce((n, r) => n + r.tasks, 0);
  return Object.fromEntries(Object.entries(calls).sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, round(v / tasks)]));
}

/** Each master's fraction of the masters' commands (median per master) and max/min per round. */
function masterShares(nodes: Node[], rounds: Round[]): { master_ports: number[]; shares: number[]; max_min: number; rounds_max_min: number[] } {
  const masters = nodes.flatMap((n, i) => (n.role === 'master' ? [i] : []));
  const perRound = rounds.map((r) => {
    const processed = masters.map((i) => r.nodes[i]!.processed);
    const total = processed.reduce((a, b) => a + b, 0);
    return processed.map((p) => p / total);
  });
  const maxMin = perRound.map((shares) => round(Math.max(...shares) / Math.min(...shares), 3));
  return {
    master_ports: masters.map((i) => nodes[i]!.port),
    shares: masters.map((_, k) => round(median(perRound.map((shares) => shares[k]!)), 3)),
    max_min: round(median(maxMin), 3),
    rounds_max_min: maxMin,
  };
}

/** The gateway's and the worker's connections, over every node: total, by name (partition and consumer left out) and by node. */
async function connections(nodes: Node[]): Promise<Record<string, unknown>> {
  const lists = await Promise.all(nodes.map(async (n) => ({ node: `${n.role}:${n.port}`, names: await clientNames(n.client) })));
  const count = (prefixes: string[]) => {
    const byName: Record<string, number> = {};
    const byNode: Record<string, number> = {};
    let total = 0;
    for (const { node, names } of lists) {
      for (const name of names.filter((x) => prefixes.some((p) => x.startsWith(p)))) {
        const kind = name.split(':').slice(0, 2).join(':');
        byName[kind] = (byName[kind] ?? 0) + 1;
        byNode[node] = (byNode[node] ?? 0) + 1;
        total += 1;
      }
    }
    return { total, by_name: byName, by_node: byNode };
  };
  return { gateway_redis_connections: count(GATEWAY_CLIENTS), worker_redis_connections: count(WORKER_CLIENTS) };
}

/** The names (CLIENT SETNAME) of a node's connections. */
async function clientNames(redis: Redis): Promise<string[]> {
  const list = (await redis.client('LIST')) as string;
  return list.split('\n').flatMap((line) => {
    const m = / name=(\S+)/.exec(line);
    return m ? [m[1]!] : [];
  });
}

/** Waits until at least `count` connections whose name starts with `prefix` are open over `nodes`. */
async function waitForClients(nodes: Node[], prefix: string, count: number, service: Service): Promise<void> {
  const deadline = Date.now() + 30_000;
  const open = async () => (await Promise.all(nodes.map((n) => clientNames(n.client)))).flat().filter((x) => x.startsWith(prefix)).length;
  while ((await open()) < count) {
    if (service.child.exitCode !== null) throw new Error(`${service.name} exited before connecting`);
    if (Date.now() > deadline) throw new Error(`${service.name} did not open ${count} ${prefix} connections within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function counters(redis: Redis): Promise<Counters> {
  const cost = await redisCounters(redis);
  const stats = await redis.info('stats');
  return { ...cost, processed: Number(/^total_commands_processed:(\d+)/m.exec(stats)?.[1] ?? NaN) };
}

function delta(before: Counters, after: Counters): Counters {
  return { ...costDelta(before, after), processed: after.processed - before.processed };
}
