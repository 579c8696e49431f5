import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { configSchema } from '../../src/config.js';
import { stopDeadlineMs } from '../../src/runtime/main.js';
import { closeRedis } from '../../src/store/redis.js';
import { builtSrc } from '../helpers/built-src.js';
import { request, startTask } from '../helpers/http.js';
import { startGatewayProc, startWorkerProc } from '../helpers/processes.js';
import { connectRedis, testRedisUrl } from '../helpers/redis.js';
import { clusterPorts, clusterView } from '../helpers/redis-cluster.js';
import { launch, stop } from '../helpers/redis-server.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

/**
 * There is no Docker engine here, so docker-compose.yml, docker-compose.cluster.yml and the
 * Dockerfile are checked by reading them, every probe a healthcheck calls is called against real
 * processes, and the cluster's create script runs against real redis-servers.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
type Compose = { name?: string; services: Record<string, any>; networks?: Record<string, any>; volumes?: Record<string, unknown> };
/** As docker compose reads it: YAML merge keys (`<<: *anchor`) resolved. */
const readCompose = (file: string) => parse(readFileSync(`${ROOT}${file}`, 'utf8'), { merge: true }) as Compose;
const compose = readCompose('docker-compose.yml');
const clusterCompose = readCompose('docker-compose.cluster.yml');
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
const { web, worker, redis } = compose.services;

/** `node dist/bin/x.js` runs the build of `src/bin/x.ts` (npm run build compiles src/ to dist/). */
function sourceOf(command: string[]): string {
  if (command[0] === 'npm') {
    const script = command[1] === 'run' ? command[2]! : command[1]!;
    assert.ok(pkg.scripts[script], `package.json has no script ${script}`);
    return script;
  }
  assert.equal(command[0], 'node', `unexpected command ${command.join(' ')}`);
  const match = /^dist\/(.+)\.js$/.exec(command[1]!);
  assert.ok(match, `${command[1]} is not a built file under dist/`);
  const source = `src/${match[1]}.ts`;
  assert.ok(existsSync(`${ROOT}${source}`), `${source} does not exist`);
  return source;
}

const seconds = (duration: string) => {
  const m = /^(\d+)(ms|s|m)$/.exec(duration);
  assert.ok(m, `duration ${duration}`);
  return Number(m[1]) / (m[2] === 'ms' ? 1000 : m[2] === 'm' ? 1 / 60 : 1);
};

test('every service command and healthcheck runs a file or script that exists', () => {
  assert.match(pkg.scripts.build!, /tsc -p tsconfig\.build\.json/);
  assert.equal(sourceOf(web.command), 'src/bin/gateway.ts');
  assert.equal(sourceOf(worker.command), 'src/bin/worker.ts');
  for (const service of [web, worker]) {
    const [cmd, ...rest] = service.healthcheck.test as string[];
    assert.equal(cmd, 'CMD');
    assert.equal(sourceOf(rest), 'src/bin/probe.ts');
  }
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
  assert.ok(cmd, 'the Dockerfile has an exec-form CMD');
  assert.equal(sourceOf(JSON.parse(cmd[1]!)), 'src/bin/start.ts');
});

test('Redis: AOF and noeviction; the image: non-root, production dependencies only', () => {
  const args = (redis.command as string[]).join(' ');
  assert.match(args, /--appendonly yes/);
  assert.match(args, /--maxmemory-policy noeviction/);
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  assert.match(runtime, /npm ci --omit=dev/);
  const user = /^USER (\S+)$/m.exec(runtime);
  assert.ok(user && user[1] !== 'root' && user[1] !== '0', 'the runtime stage runs as a non-root user');
});

test('workers scale (no fixed name or host port); stop_grace_period outlasts the drain', () => {
  assert.equal(worker.container_name, undefined);
  assert.equal(worker.ports, undefined);
  assert.equal(web.container_name, undefined);
  for (const [name, service] of Object.entries({ web, worker })) {
    // runMain exits at stopDeadlineMs at the latest; docker must not SIGKILL before.
    const deadlineS = stopDeadlineMs(configSchema.parse(service.environment)) / 1000;
    assert.ok(seconds(service.stop_grace_period) > deadlineS, `${name}: stop_grace_period vs SHUTDOWN_GRACE_MS`);
  }
});

test('every environment variable is a setting of the config schema', () => {
  const known = new Set(Object.keys(configSchema.shape));
  for (const [name, service] of Object.entries({ web, worker })) {
    for (const key of Object.keys(service.environment)) assert.ok(known.has(key), `${name}: unknown setting ${key}`);
    const parsed = configSchema.safeParse(service.environment);
    assert.ok(parsed.success, `${name}: ${JSON.stringify(parsed.error?.issues)}`);
  }
});

/** Runs src/bin/probe.ts compiled, as the image's dist/bin/probe.js is; resolves its exit code. */
async function probe(url: string): Promise<number> {
  const child = spawn(process.execPath, [join(builtSrc(), 'src/bin/probe.js'), url], { cwd: ROOT, stdio: 'ignore' });
  return withTimeout(new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1))), `probe ${url}`, 30_000);
}

/**
 * A service's healthcheck as Docker judges it: healthy once an attempt exits 0, unhealthy after
 * `retries` failed attempts in a row. Resolves the exit codes of its attempts, the last one deciding.
 */
async function healthcheck(service: { healthcheck: { retries?: number } }, url: string): Promise<number[]> {
  const codes: number[] = [];
  while (codes.length < (service.healthcheck.retries ?? 3) && codes.at(-1) !== 0) codes.push(await probe(url));
  return codes;
}

test('the healthchecks pass against a real gateway and worker, and fail where nothing answers', async (t) => {
  const redisUrl = await testRedisUrl();
  const gateway = await startGatewayProc(t, redisUrl);
  const workerProc = await startWorkerProc(t, redisUrl, { HEALTH_PORT: '0' });
  const health = await workerProc.waitForLog((l) => l.msg === 'health listening', 'health listening');
  const ports: Record<string, number> = { web: gateway.port, worker: Number(health.port) };
  for (const [name, service] of Object.entries({ web, worker })) {
    const url = new URL((service.healthcheck.test as string[]).at(-1)!);
    const configured = name === 'web' ? service.environment.PORT : service.environment.HEALTH_PORT;
    assert.equal(url.port, configured, `${name}: the healthcheck calls the port the service listens on`);
    url.port = String(ports[name]);
    const codes = await healthcheck(service, url.href);
    assert.equal(codes.at(-1), 0, `${name}: ${url.href} (${codes.join(', ')})`);
  }
  assert.equal(await probe(`${gateway.url}/no-such-probe`), 1);
  gateway.kill('SIGTERM');
  await gateway.exited;
  assert.equal(await probe(`${gateway.url}/readyz`), 1, 'nothing listening');
});

test('depends_on: every condition is valid and names a service that can meet it', () => {
  const conditions = ['service_started', 'service_healthy', 'service_completed_successfully'];
  for (const [file, { services }] of Object.entries({ 'docker-compose.yml': compose, 'docker-compose.cluster.yml': clusterCompose })) {
    for (const [name, service] of Object.entries(services)) {
      const deps: Record<string, { condition: string }> = Array.isArray(service.depends_on)
        ? Object.fromEntries(service.depends_on.map((d: string) => [d, { condition: 'service_started' }]))
        : (service.depends_on ?? {});
      for (const [dep, { condition }] of Object.entries(deps)) {
        const where = `${file}: ${name} depends on ${dep}`;
        assert.ok(services[dep], `${where}, which is no service`);
        assert.ok(conditions.includes(condition), `${where}: condition ${condition}`);
        if (condition === 'service_healthy') assert.ok(services[dep].healthcheck?.test, `${where} being healthy, but it has no healthcheck`);
        if (condition === 'service_completed_successfully') {
          assert.ok([undefined, 'no'].includes(services[dep].restart), `${where} completing, but it restarts (${services[dep].restart})`);
        }
      }
    }
  }
});

// docker-compose.cluster.yml: the Redis Cluster, the service that creates it, web and worker.
const clusterServices = clusterCompose.services;
const nodeNames = Object.keys(clusterServices).filter((name) => /^redis-\d+$/.test(name));
const create = clusterServices['redis-cluster-create'];
const createScript = create.command[2] as string;
/** The script as the shell gets it: compose turns `$$` into `$` (and would substitute a lone `$`). */
const shellScript = createScript.replaceAll('$$', '$');

/** `--name value` pairs of a redis-server command line. */
function redisOptions(command: string[]): Record<string, string> {
  assert.equal(command[0], 'redis-server');
  const out: Record<string, string> = {};
  for (let i = 1; i < command.length; i += 2) {
    assert.match(command[i]!, /^--[a-z-]+$/, `option ${command[i]}`);
    out[command[i]!.slice(2)] = command[i + 1]!;
  }
  return out;
}

const ipNumber = (ip: string) => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
const inCidr = (ip: string, cidr: string) => {
  const [base, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipNumber(ip) / size) === Math.floor(ipNumber(base) / size);
};

/** Each node's `address:port` as the other containers reach it (its fixed address). */
function nodeAddress(name: string): string {
  const port = redisOptions(clusterServices[name].command).port ?? '6379';
  return `${clusterServices[name].networks.default.ipv4_address}:${port}`;
}

test('cluster compose: its own project; six redis:7 nodes, cluster-enabled with AOF, each with its volume and a fixed address no other container can take', () => {
  assert.ok(clusterCompose.name && clusterCompose.name !== compose.name, 'a project name of its own');
  assert.equal(nodeNames.length, 6);
  const [ipam] = clusterCompose.networks!.default.ipam.config as { subnet: string; ip_range: string }[];
  const volumes = new Set<string>();
  for (const name of nodeNames) {
    const node = clusterServices[name];
    assert.equal(node.image, 'redis:7-alpine', name);
    const options = redisOptions(node.command);
    assert.equal(options['cluster-enabled'], 'yes', name);
    assert.equal(options['cluster-node-timeout'], '5000', name);
    assert.equal(options.appendonly, 'yes', name);
    assert.equal(options['maxmemory-policy'], 'noeviction', name);
    assert.ok(options['cluster-config-file'], `${name}: nodes.conf in its data dir`);
    assert.deepEqual(node.healthcheck.test, ['CMD', 'redis-cli', 'ping']);
    assert.equal(node.volumes.length, 1);
    const [volume, mount] = (node.volumes[0] as string).split(':');
    assert.equal(mount, '/data', `${name}: the image's working dir, where AOF and nodes.conf go`);
    assert.ok(volume! in clusterCompose.volumes!, `${name}: named volume ${volume}`);
    volumes.add(volume!);
    const ip = node.networks.default.ipv4_address as string;
    assert.ok(inCidr(ip, ipam!.subnet), `${name}: ${ip} in ${ipam!.subnet}`);
    assert.ok(!inCidr(ip, ipam!.ip_range), `${name}: ${ip} outside the dynamic ip_range ${ipam!.ip_range}`);
  }
  assert.equal(volumes.size, 6, 'a volume per node');
  assert.equal(new Set(nodeNames.map(nodeAddress)).size, 6, 'an address per node');
});

test('cluster compose: the create service waits for every healthy node and creates 3 masters with a replica each, once', () => {
  assert.equal(create.image, 'redis:7-alpine');
  assert.ok([undefined, 'no'].includes(create.restart), 'one-shot');
  assert.deepEqual(create.depends_on, Object.fromEntries(nodeNames.map((n) => [n, { condition: 'service_healthy' }])));
  assert.deepEqual(create.environment.NODES.split(/\s+/), nodeNames.map(nodeAddress), 'NODES: every node, by its fixed address');
  assert.deepEqual(create.command.slice(0, 2), ['sh', '-c']);
  assert.doesNotMatch(createScript.replaceAll('$$', ''), /\$/, 'every $ of the script is escaped from compose as $$');
  assert.match(shellScript, /redis-cli --cluster create \$NODES --cluster-replicas 1 --cluster-yes/);
  assert.equal(nodeNames.length / (1 + 1), 3, 'three masters');
});

test('cluster compose: web and worker are docker-compose.yml\'s, on REDIS_CLUSTER_NODES (every node service) once the cluster is created', () => {
  const known = new Set(Object.keys(configSchema.shape));
  for (const name of ['web', 'worker'] as const) {
    const service = clusterServices[name];
    const single = compose.services[name];
    for (const field of ['build', 'image', 'command', 'healthcheck', 'ports', 'stop_grace_period', 'container_name']) {
      assert.deepEqual(service[field], single[field], `${name}: ${field} as in docker-compose.yml`);
    }
    const { REDIS_CLUSTER_NODES, REDIS_CLUSTER_WAIT_REPLICAS, ...rest } = service.environment;
    const { REDIS_URL, ...singleRest } = single.environment;
    assert.ok(REDIS_URL, 'docker-compose.yml sets REDIS_URL');
    assert.deepEqual(rest, singleRest, `${name}: the same settings besides Redis (no REDIS_URL)`);
    for (const key of Object.keys(service.environment)) assert.ok(known.has(key), `${name}: unknown setting ${key}`);
    const parsed = configSchema.safeParse(service.environment);
    assert.ok(parsed.success, `${name}: ${JSON.stringify(parsed.error?.issues)}`);
    const seeds = parsed.data.REDIS_CLUSTER_NODES!.map(({ host, port }) => `${host}:${port}`);
    assert.deepEqual(seeds, nodeNames.map((n) => `${n}:${nodeAddress(n).split(':')[1]}`), `${name}: every node service as a seed`);
    assert.equal(parsed.data.REDIS_CLUSTER_WAIT_REPLICAS, 1, `${name}: writes wait for the one replica of their master`);
    assert.deepEqual(service.depends_on, { 'redis-cluster-create': { condition: 'service_completed_successfully' } });
  }
});

/** Runs the create script with sh (NODES given); resolves its exit code and output. */
function runCreateScript(nodes: string[]): Promise<{ code: number; output: string }> {
  const child = spawn('sh', ['-c', shellScript], { env: { ...process.env, NODES: nodes.join(' ') }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const exited = new Promise<{ code: number; output: string }>((resolve) => child.once('exit', (code) => resolve({ code: code ?? -1, output })));
  return withTimeout(exited, 'the create script', 90_000);
}

/** Masters (with their slots) and replicas (with their master), as node 0 sees them. */
async function topology(port: number): Promise<string[]> {
  return (await clusterView(port)).map((v) => `${v.id} ${v.masterId ?? 'master'} ${v.slots.join(',')}`).sort();
}

test('cluster compose: the create script joins six fresh nodes (run with the services\' arguments) into a cluster, leaves it alone when run again; web and worker pass their healthchecks and run a task on it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'taskcast-compose-cluster-'));
  const ports = await clusterPorts(nodeNames.length);
  t.after(() => rmSync(root, { recursive: true, force: true }));
  await Promise.all(nodeNames.map(async (name, i) => {
    const dir = join(root, name);
    mkdirSync(dir);
    // The service's own arguments: an option redis-server does not know fails the start.
    const args = [...clusterServices[name].command.slice(1), '--port', String(ports[i]), '--bind', '127.0.0.1', '--dir', dir];
    const child = await launch(args, ports[i]!);
    t.after(() => stop(child, 'SIGKILL'));
  }));
  /** A node's local address in place of its compose one (service name or fixed address). */
  const local = (name: string) => `127.0.0.1:${ports[nodeNames.indexOf(name)]}`;
  const localNodes = (create.environment.NODES as string).split(/\s+/).map((a) => local(nodeNames.find((n) => nodeAddress(n) === a)!));

  const first = await runCreateScript(localNodes);
  assert.equal(first.code, 0, first.output);
  assert.doesNotMatch(first.output, /not creating/);
  assert.match(first.output, /cluster ready\n$/);
  const created = await topology(ports[0]!);
  assert.equal(created.length, 6);
  assert.equal(created.filter((line) => line.split(' ')[1] === 'master' && line.split(' ')[2] !== '').length, 3, created.join('\n'));
  for (const port of ports) {
    const node = await connectRedis(`redis://127.0.0.1:${port}`);
    const info = String(await node.call('CLUSTER', 'INFO'));
    await closeRedis(node);
    assert.match(info, /cluster_state:ok/, `node ${port}`);
  }

  const again = await runCreateScript(localNodes);
  assert.equal(again.code, 0, again.output);
  assert.match(again.output, /the nodes know each other already: not creating the cluster again/);
  assert.deepEqual(await topology(ports[0]!), created, 'the cluster as it was');

  // web and worker with their compose settings, the seeds being the same nodes' local addresses.
  const envOf = (name: 'web' | 'worker') => {
    const { REDIS_CLUSTER_NODES, PORT: _port, HEALTH_PORT: _health, HOST: _host, ...rest } = clusterServices[name].environment;
    return { seeds: (REDIS_CLUSTER_NODES as string).split(',').map((s) => local(s.split(':')[0]!)).join(','), env: rest as Record<string, string> };
  };
  const web = envOf('web');
  const gateway = await startGatewayProc(t, { seeds: web.seeds }, web.env);
  const worker = envOf('worker');
  const workerProc = await startWorkerProc(t, { seeds: worker.seeds }, worker.env);
  const bases: Record<string, string> = { web: gateway.url, worker: workerProc.healthUrl };
  for (const name of ['web', 'worker']) {
    const url = new URL((clusterServices[name].healthcheck.test as string[]).at(-1)!);
    url.port = new URL(bases[name]!).port;
    const codes = await healthcheck(clusterServices[name], url.href);
    assert.equal(codes.at(-1), 0, `${name}: ${url.href} (${codes.join(', ')})`);
  }
  const taskId = await startTask(gateway.url, { stage_ms: 0 });
  await waitFor(async () => (await request(`${gateway.url}/tasks/${taskId}`)).body.status === 'COMPLETED', 'the task to complete', 30_000);
});
