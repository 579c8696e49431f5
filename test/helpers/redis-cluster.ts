import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { freePort } from '../../src/runtime/dev-redis.js';
import { CLUSTER_LAYOUT } from '../../src/store/layout.js';
import { closeRedis, createRedis, ensureConnected, type Redis as StoreRedis } from '../../src/store/redis.js';
import { assertRedisServerBinary, launch, stop } from './redis-server.js';
import { waitFor } from './wait.js';

export interface RedisClusterNode {
  port: number;
  url: string;
  /** The node's cluster id (CLUSTER MYID): it stays the same through failovers. */
  id: string;
  /** The server process, for fault injection. */
  readonly process: ChildProcess;
  dir: string;
}

export interface RedisCluster {
  /** 'host:port,host:port,...' of the masters as created, as REDIS_CLUSTER_NODES takes it. */
  seeds: string;
  /** Every node, the masters first, as created. */
  nodes: RedisClusterNode[];
  /** The live masters now (CLUSTER NODES of a live node), in `nodes` order. */
  masters(): Promise<RedisClusterNode[]>;
  /** The names of the clients connected to every live node (CLIENT LIST), one per connection. */
  clientNames(): Promise<string[]>;
  /** The indexes of the partitions (src/store/layout.ts) whose slot `master` serves now. */
  partitionsOf(master: RedisClusterNode): Promise<number[]>;
  /** A live replica of `master` now, if it has one. */
  replicaOf(master: RedisClusterNode): Promise<RedisClusterNode | undefined>;
  /**
   * SIGKILLs `node` and resolves once the cluster has settled without it: every live node says
   * cluster_state:ok, flags `node` as failed and agrees on who serves every slot (a replica promoted
   * in place of a master), no slot's master is failed, every live replica's link is up and CLUSTER
   * SLOTS lists every live node.
   */
  killAndFailover(node: RedisClusterNode): Promise<void>;
  /**
   * Moves `count` slots (with their keys) from master `from` to master `to` with
   * `redis-cli --cluster reshard`; resolves once every live node agrees on the new owners.
   */
  moveSlots(from: RedisClusterNode, to: RedisClusterNode, count: number): Promise<void>;
  /** Kills every node and removes the temp dir; idempotent. */
  close(): Promise<void>;
}

export interface RedisClusterOptions {
  /** Default 3. */
  masters?: number;
  /** Default 1. */
  replicasPerMaster?: number;
  /** cluster-node-timeout: how long a node may not answer before a failover starts. Default 2000 ms. */
  nodeTimeoutMs?: number;
  /**
   * cluster-require-full-coverage (default true). False: the other masters serve on while a slot
   * has no master, so clients get no CLUSTERDOWN (that would make them read the slot map again).
   */
  requireFullCoverage?: boolean;
}

/** The Redis Cluster hash slots. */
export const CLUSTER_SLOTS = 16384;

/** A node as one node's CLUSTER NODES shows it. */
export interface ClusterNodeView {
  id: string;
  port: number;
  flags: string[];
  /** The id of its master, for a replica. */
  masterId: string | undefined;
  /** The slots it serves, as 'a-b' or 'a' ranges (migration markers left out). */
  slots: string[];
}

/**
 * Starts a real Redis Cluster on 127.0.0.1: `masters` masters, each with `replicasPerMaster`
 * replicas, free ports (each with its cluster bus port, +10000, free too), one temp dir, AOF on.
 * Resolves once every node says cluster_state:ok, all agree on the slots and replicas, every
 * replica's link to its master is up and CLUSTER SLOTS lists every node (so that a client told of
 * the slots, like ioredis with scaleReads, knows the replicas).
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const { masters: masterCount = 3, replicasPerMaster = 1, nodeTimeoutMs = 2000, requireFullCoverage = true } = options;
  assertRedisServerBinary();
  assertRedisCliBinary();
  const root = mkdtempSync(join(tmpdir(), 'taskcast-cluster-'));
  openDirs.add(root);
  const ports = await clusterPorts(masterCount * (1 + replicasPerMaster));
  const launched: { port: number; dir: string; process: ChildProcess }[] = [];
  const dead = new Set<string>();
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await Promise.all(launched.map((n) => stop(n.process, 'SIGKILL')));
      rmSync(root, { recursive: true, force: true });
      openDirs.delete(root);
    })());

  try {
    /** A node on `port`, or on another free pair when another process took it before redis-server bound it. */
    const launchNode = async (i: number) => {
      for (let attempt = 1; ; attempt++) {
        const port = ports[i]!;
        const dir = join(root, String(port));
        mkdirSync(dir, { recursive: true });
        const args = [
          '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes',
          '--maxmemory-policy', 'noeviction',
          '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
          '--cluster-node-timeout', String(nodeTimeoutMs),
          '--cluster-require-full-coverage', requireFullCoverage ? 'yes' : 'no',
          // A replica may take over however long it was cut off from its master.
          '--cluster-replica-validity-factor', '0',
          // A replica's first full sync starts at once (7.0 waits 5 s for more replicas by default).
          '--repl-diskless-sync-delay', '0',
          // CLUSTER SLOTS leaves out a replica until its replication offset is above 0, which takes
          // a write or the master's replication PING (every 10 s by default).
          '--repl-ping-replica-period', '1',
        ];
        try {
          const node = { port, dir, process: await launch(args, port) };
          launched.push(node);
          return node;
        } catch (err) {
          if (attempt >= 5 || !/exited with code/.test(String(err))) throw err;
          ports[i] = (await clusterPorts(1, new Set(ports)))[0]!;
        }
      }
    };
    const started = await Promise.allSettled(ports.map((_, i) => launchNode(i)));
    const servers = started.map((s) => {
      if (s.status === 'rejected') throw s.reason;
      return s.value;
    });
    await redisCli(
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'],
      60_000,
    );
    const all: RedisClusterNode[] = await Promise.all(
      servers.map(async ({ port, dir, process }) => ({
        port,
        url: `redis://127.0.0.1:${port}`,
        id: String(await onNode(port, (c) => c.call('CLUSTER', 'MYID'))),
        process,
        dir,
      })),
    );
    const settle = (what: string) => settled(all, dead, what, 30_000);
    await settle('the new cluster');

    const initial = await clusterView(all[0]!.port);
    const isMaster = (n: RedisClusterNode) => initial.find((v) => v.id === n.id)?.flags.includes('master') ?? false;
    const nodes = [...all.filter(isMaster), ...all.filter((n) => !isMaster(n))];
    const live = () => nodes.filter((n) => !dead.has(n.id));
    const currentView = async () => {
      const asked = live()[0];
      if (!asked) throw new Error('every node of the cluster is dead');
      return clusterView(asked.port);
    };

    return {
      seeds: nodes.slice(0, masterCount).map((n) => `127.0.0.1:${n.port}`).join(','),
      nodes,
      async masters() {
        const view = await currentView();
        return live().filter((n) => {
          const v = view.find((x) => x.id === n.id);
          return v !== undefined && v.flags.includes('master') && !isFailed(v);
        });
      },
      async clientNames() {
        const lists = await Promise.all(live().map((n) => onNode(n.port, (c) => c.call('CLIENT', 'LIST'))));
        return lists.flatMap((text) => String(text).trim().split('\n').map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? ''));
      },
      async partitionsOf(master) {
        const ranges = (await currentView()).find((v) => v.id === master.id)?.slots ?? [];
        return CLUSTER_LAYOUT.partitions.filter((p) => inRanges(calculateSlot(p.prefix), ranges)).map((p) => p.index);
      },
      async replicaOf(master) {
        const view = await currentView();
        return live().find((n) => {
          const v = view.find((x) => x.id === n.id);
          return v !== undefined && v.masterId === master.id && !isFailed(v);
        });
      },
      async killAndFailover(node) {
        dead.add(node.id);
        await stop(node.process, 'SIGKILL');
        await settle(`the cluster to settle without ${node.port}`);
      },
      async moveSlots(from, to, count) {
        await redisCli(
          [
            '--cluster', 'reshard', `127.0.0.1:${from.port}`, '--cluster-from', from.id, '--cluster-to', to.id,
            '--cluster-slots', String(count), '--cluster-yes',
          ],
          60_000,
        );
        await settle(`every node to see ${count} slots moved from ${from.port} to ${to.port}`);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** What one node's CLUSTER NODES says. */
export async function clusterView(port: number): Promise<ClusterNodeView[]> {
  return parseClusterNodes(String(await onNode(port, (c) => c.call('CLUSTER', 'NODES'))));
}

function parseClusterNodes(text: string): ClusterNodeView[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, master, , , , , ...slots] = line.split(' ');
      return {
        id: id!,
        port: Number(address!.split('@')[0]!.split(':').at(-1)),
        flags: flags!.split(','),
        masterId: master === '-' ? undefined : master,
        slots: slots.filter((s) => !s.startsWith('[')),
      };
    });
}

/** Whether `slot` is in one of the `a-b`/`a` ranges. */
function inRanges(slot: number, ranges: string[]): boolean {
  return ranges.some((r) => {
    const [a, b = a] = r.split('-').map(Number);
    return slot >= a! && slot <= b!;
  });
}

let shared: Promise<RedisCluster> | undefined;

/**
 * This test file's cluster (3 masters, a replica each): started on first use, flushed at each
 * call so that every test starts clean; its nodes are killed and its files removed when the file's
 * process exits.
 */
export async function testCluster(): Promise<RedisCluster> {
  shared ??= startRedisCluster().then((c) => {
    process.once('exit', () => rmSync(dirname(c.nodes[0]!.dir), { recursive: true, force: true }));
    return c;
  });
  const c = await shared;
  for (const master of await c.masters()) {
    const admin = createRedis(master.url, { name: 'test-admin' });
    await ensureConnected(admin);
    await admin.flushall();
    await closeRedis(admin);
  }
  return c;
}

/** A client of `cluster` with our scripts (as gateway and worker make one), closed when the test ends. */
export async function clusterClient(t: { after(fn: () => unknown): void }, cluster: RedisCluster): Promise<StoreRedis> {
  const seeds = cluster.seeds.split(',').map((s) => ({ host: s.split(':')[0]!, port: Number(s.split(':')[1]) }));
  const client = createRedis({ cluster: seeds }, { name: 'test' });
  t.after(() => closeRedis(client));
  await ensureConnected(client);
  return client;
}

/** How many slots the `a-b`/`a` ranges cover. */
export function slotCount(ranges: string[]): number {
  return ranges.reduce((sum, r) => {
    const [a, b = a] = r.split('-').map(Number);
    return sum + b! - a! + 1;
  }, 0);
}

const isFailed = (v: ClusterNodeView) => v.flags.includes('fail') || v.flags.includes('fail?');

/** Waits until `unsettled` finds nothing wrong, naming what it found last on timeout. */
async function settled(all: RedisClusterNode[], dead: Set<string>, what: string, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const problem = await unsettled(all, dead);
      if (problem) throw new Error(problem);
      return true;
    },
    what,
    timeoutMs,
    50,
  );
}

/** What keeps the cluster from being settled (see RedisCluster.killAndFailover), or undefined. */
async function unsettled(all: RedisClusterNode[], dead: Set<string>): Promise<string | undefined> {
  const live = all.filter((n) => !dead.has(n.id));
  let agreed: string | undefined;
  for (const node of live) {
    const { state, view, link, listed } = await onNode(node.port, async (c) => ({
      state: /cluster_state:(\w+)/.exec(String(await c.call('CLUSTER', 'INFO')))?.[1],
      view: parseClusterNodes(String(await c.call('CLUSTER', 'NODES'))),
      link: /master_link_status:(\w+)/.exec(String(await c.call('INFO', 'replication')))?.[1],
      // [start, end, [host, port, id, ...], ...replicas]: the nodes clients are told of.
      listed: new Set(((await c.call('CLUSTER', 'SLOTS')) as unknown[][]).flatMap((range) => range.slice(2).map((n) => String((n as unknown[])[2])))),
    }));
    if (state !== 'ok') return `${node.port} says cluster_state:${state}`;
    if (view.length !== all.length) return `${node.port} knows ${view.length} of ${all.length} nodes`;
    for (const v of view) {
      if (dead.has(v.id) && !v.flags.includes('fail')) return `${node.port} does not flag dead ${v.port} as failed`;
      if (!dead.has(v.id) && isFailed(v)) return `${node.port} flags live ${v.port} as ${v.flags.join(',')}`;
      if (dead.has(v.id) && v.slots.length > 0) return `${node.port} sees dead ${v.port} serve slots`;
      if (!dead.has(v.id) && !listed.has(v.id)) return `${node.port} leaves ${v.port} out of CLUSTER SLOTS`;
    }
    const served = slotCount(view.flatMap((v) => v.slots));
    if (served !== CLUSTER_SLOTS) return `${node.port} sees ${served} slots served`;
    if (link !== undefined && link !== 'up') return `${node.port} has its master link ${link}`;
    const topology = view
      .filter((v) => !dead.has(v.id))
      .map((v) => `${v.id} ${v.masterId ?? 'master'} ${v.slots.join(' ')}`)
      .sort()
      .join('\n');
    if (agreed !== undefined && topology !== agreed) return `${node.port} disagrees on slots or replicas`;
    agreed = topology;
  }
  return undefined;
}

/** Runs `use` on a fresh connection to the node on `port`, then drops it. */
async function onNode<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    enableReadyCheck: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  // Failures reach the caller as rejections of connect() and the commands.
  client.on('error', () => {});
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

function assertRedisCliBinary(): void {
  if (spawnSync('redis-cli', ['--version']).error) {
    throw new Error('redis-cli is not on PATH: the cluster tests need it to create and reshard clusters (apt-get install -y redis-tools).');
  }
}

function redisCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed (${err.message}):\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** `count` distinct free ports of at most 55535 whose cluster bus ports (+10000) are free too, none of the others' nor of `avoid`'s pairs. */
export async function clusterPorts(count: number, avoid: ReadonlySet<number> = new Set()): Promise<number[]> {
  const taken = new Set<number>([...avoid].flatMap((p) => [p, p + 10000]));
  const ports: number[] = [];
  for (let tries = 0; ports.length < count; tries++) {
    if (tries > 1000) throw new Error(`found only ${ports.length} of ${count} free port pairs (port, port + 10000)`);
    const port = await freePort();
    if (port > 55535 || taken.has(port) || taken.has(port + 10000) || !(await isFree(port + 10000))) continue;
    ports.push(port);
    taken.add(port).add(port + 10000);
  }
  return ports;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const openDirs = new Set<string>();
// The servers die with this process (redis-server.ts); their dirs go with them.
process.once('exit', () => {
  for (const dir of openDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A server still writing there as it dies.
    }
  }
});
