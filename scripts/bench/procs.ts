import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtSrc } from '../../test/helpers/built-src.js';
import { freePort } from '../../src/runtime/dev-redis.js';
import type { Redis } from '../../src/store/redis.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Service {
  name: string;
  child: ChildProcess;
  port: number;
  /** Its garbage collections so far (from V8's --trace-gc-nvp lines on its stdout). */
  gc(): GcTotals;
  stop(): Promise<void>;
}

export interface GcTotals {
  /** Bytes allocated on the V8 heap (the sum of each collection's `allocated`). */
  allocatedBytes: number;
  /**
   * Bytes moved into the old generation by young-generation collections (the sum of `promoted`):
   * objects that outlived two of them. Copying them is most of a scavenge's pause.
   */
  promotedBytes: number;
  /** Each collection's pause, ms, in order. */
  pausesMs: number[];
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Runs a TypeScript entry point (src/ or scripts/bench/) as its own Node process, compiled to
 * JavaScript first as production runs it (the image runs tsc's build; here esbuild's, see
 * test/helpers/built-src.ts), on `port` when it serves one, with V8's GC trace on (one line per collection: its pause and the bytes allocated
 * since the one before). `nodeArgs` carries e.g. --cpu-prof. Its last log lines and stderr are kept for the error message.
 * An `env` value of undefined unsets that variable of this process's environment.
 */
export function spawnTs(name: string, file: string, env: Record<string, string | undefined>, nodeArgs: string[] = []): Service & { port: number } {
  const child = spawn(process.execPath, ['--trace-gc-nvp', ...nodeArgs, compiled(file)], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const gc: GcTotals = { allocatedBytes: 0, promotedBytes: 0, pausesMs: [] };
  // Its log lines (JSON, LOG_LEVEL warn), the last few kept for the error message.
  let logged: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('{')) logged = [...logged.slice(-9), line];
    const pause = /\bpause=([\d.]+)/.exec(line);
    const allocated = /\ballocated=(\d+)/.exec(line);
    if (!pause || !allocated) return;
    gc.pausesMs.push(Number(pause[1]));
    gc.allocatedBytes += Number(allocated[1]);
    gc.promotedBytes += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0);
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  child.once('exit', (code, signal) => {
    running.delete(child);
    if (code !== 0 && signal === null) process.stderr.write(`${name} exited with ${code}\n${logged.join('\n')}\n${stderr}\n`);
  });
  return {
    name,
    child,
    port: Number(env.PORT ?? 0),
    gc: () => ({ allocatedBytes: gc.allocatedBytes, promotedBytes: gc.promotedBytes, pausesMs: [...gc.pausesMs] }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
      }),
  };
}

/** The compiled JavaScript of a .ts file of src/ or scripts/bench/ (see spawnTs). */
export function compiled(file: string): string {
  return join(builtSrc(['scripts/bench']), file.replace(/\.ts$/, '.js'));
}

/** A service on a fresh port, resolved once it accepts connections. */
export async function startServer(name: string, file: string, env: Record<string, string | undefined>, nodeArgs: string[] = []): Promise<Service> {
  const port = await freePort();
  const service = spawnTs(name, file, { ...env, PORT: String(port) }, nodeArgs);
  const deadline = Date.now() + 30_000;
  while (!(await accepts(port))) {
    if (service.child.exitCode !== null) throw new Error(`${name} exited before listening`);
    if (Date.now() > deadline) throw new Error(`${name} did not listen within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return service;
}

/** Waits until a Redis client named `name` (CLIENT SETNAME) is connected. */
export async function waitForClient(redis: Redis, prefix: string, service: Service): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!((await redis.client('LIST')) as string).includes(`name=${prefix}`)) {
    if (service.child.exitCode !== null) throw new Error(`${service.name} exited before connecting`);
    if (Date.now() > deadline) throw new Error(`${service.name} did not connect within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Resident set size of a process, bytes. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time (user + system) a process has used so far, milliseconds. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Read and write system calls a process has made so far (socket I/O included), from /proc/<pid>/io. */
export function syscalls(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1] ?? NaN);
  return field('syscr') + field('syscw');
}

/** Redis connections whose CLIENT SETNAME starts with one of `prefixes`. */
export async function namedClients(redis: Redis, prefixes: string[]): Promise<number> {
  const list = (await redis.client('LIST')) as string;
  return list.split('\n').filter((line) => prefixes.some((p) => line.includes(` name=${p} `) || line.includes(` name=${p}`))).length;
}

export interface RedisCost {
  commands: number;
  by_command: Record<string, number>;
  /** Time inside each command (INFO commandstats usec), excluding I/O and event-loop overhead. */
  usec_by_command: Record<string, number>;
  cpu_us: number;
  /** What the AOF grew by (INFO persistence aof_current_size; 0 with AOF off). A rewrite shrinks it: see forks. */
  aof_bytes: number;
  /** Forks (INFO stats total_forks): an AOF rewrite or a snapshot, whose copy of the dataset costs Redis CPU. */
  forks: number;
}

/** Server-side counters: every command (those run by Lua scripts included) and CPU time. */
export async function redisCounters(redis: Redis): Promise<RedisCost> {
  const stats = await redis.info('commandstats');
  const byCommand: Record<string, number> = {};
  const usecByCommand: Record<string, number> = {};
  let commands = 0;
  for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    byCommand[m[1]!] = Number(m[2]);
    usecByCommand[m[1]!] = Number(m[3]);
    commands += Number(m[2]);
  }
  const info = (await Promise.all([redis.info('cpu'), redis.info('persistence'), redis.info('stats')])).join('\n');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return {
    commands,
    by_command: byCommand,
    usec_by_command: usecByCommand,
    cpu_us: (field('used_cpu_sys') + field('used_cpu_user')) * 1e6,
    aof_bytes: field('aof_current_size'),
    forks: field('total_forks'),
  };
}

/** The change of the counters between two snapshots (the snapshot commands themselves excluded). */
export function costDelta(before: RedisCost, after: RedisCost): RedisCost {
  const byCommand: Record<string, number> = {};
  const usecByCommand: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after.by_command)) {
    const d = calls - (before.by_command[name] ?? 0);
    if (d > 0 && name !== 'info' && name !== 'client|list') {
      byCommand[name] = d;
      usecByCommand[name] = (after.usec_by_command[name] ?? 0) - (before.usec_by_command[name] ?? 0);
    }
  }
  const commands = Object.values(byCommand).reduce((a, b) => a + b, 0);
  return {
    commands,
    by_command: byCommand,
    usec_by_command: usecByCommand,
    cpu_us: after.cpu_us - before.cpu_us,
    aof_bytes: after.aof_bytes - before.aof_bytes,
    forks: after.forks - before.forks,
  };
}
