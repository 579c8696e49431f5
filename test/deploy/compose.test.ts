import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { configSchema } from '../../src/config.js';
import { builtSrc } from '../helpers/built-src.js';
import { startGatewayProc, startWorkerProc } from '../helpers/processes.js';
import { testRedisUrl } from '../helpers/redis.js';
import { withTimeout } from '../helpers/wait.js';

/**
 * There is no Docker engine here, so docker-compose.yml and the Dockerfile are checked by reading
 * them, and every probe a healthcheck calls is called against real processes.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const compose = parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8')) as { services: Record<string, any> };
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
    const graceS = Number(service.environment.SHUTDOWN_GRACE_MS) / 1000;
    // runMain exits at SHUTDOWN_GRACE_MS + 5 s at the latest; docker must not SIGKILL before.
    assert.ok(seconds(service.stop_grace_period) > graceS + 5, `${name}: stop_grace_period vs SHUTDOWN_GRACE_MS`);
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
    assert.equal(await probe(url.href), 0, `${name}: ${url.href}`);
  }
  assert.equal(await probe(`${gateway.url}/no-such-probe`), 1);
  gateway.kill('SIGTERM');
  await gateway.exited;
  assert.equal(await probe(`${gateway.url}/readyz`), 1, 'nothing listening');
});
