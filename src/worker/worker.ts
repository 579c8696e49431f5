import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { closeRedis, duplicateForBlocking, ensureConnected, type Redis } from '../store/redis.js';
import { COMMANDS_STREAM, WORKER_GROUP } from '../store/keys.js';
import type { TaskRegistry } from './registry.js';
import { runCommand, type Command } from './task-run.js';

export interface WorkerDeps {
  redis: Redis;
  logger: Logger;
  config: Pick<Config, 'TASK_TTL_S' | 'WORKER_CONCURRENCY' | 'CLAIM_IDLE_MS' | 'SHUTDOWN_GRACE_MS'>;
  registry: TaskRegistry;
  /** Task outcome and stage metrics are recorded here when given. */
  metrics?: Metrics;
}

type Entry = [id: string, fields: string[] | null];

/** How long one XREADGROUP blocks; bounds how late a lost wake-up could be noticed. */
const READ_BLOCK_MS = 5000;

/**
 * Reads `tasks:commands` in the `workers` group and runs up to WORKER_CONCURRENCY commands at once.
 * Keeps its running commands fresh in the PEL (heartbeat) and reclaims commands whose worker died.
 */
export class Worker {
  readonly consumer = `${hostname()}-${process.pid}-${uuidv4().slice(0, 8)}`;
  private readonly log: Logger;
  private readonly running = new Map<string, { done: Promise<void>; abort: AbortController }>();
  private reader: Redis | undefined;
  private loop: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];
  private slotFreed: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: WorkerDeps) {
    this.log = deps.logger.child({ consumer: this.consumer });
  }

  async start(): Promise<void> {
    await ensureGroup(this.deps.redis);
    this.reader = duplicateForBlocking(this.deps.redis, `worker-reader:${this.consumer}`, this.deps.logger);
    await ensureConnected(this.reader);
    const { CLAIM_IDLE_MS } = this.deps.config;
    this.timers.push(setInterval(() => void this.heartbeat(), Math.max(50, Math.floor(CLAIM_IDLE_MS / 3))));
    this.timers.push(setInterval(() => void this.reclaim(), Math.max(50, Math.floor(CLAIM_IDLE_MS / 2))));
    this.loop = this.readLoop(this.reader);
    this.log.info('worker started');
  }

  /** Stops reading, lets running commands finish within SHUTDOWN_GRACE_MS, leaves the rest pending. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.reader?.disconnect();
    this.slotFreed?.();
    await this.loop;
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    const grace = delay(this.deps.config.SHUTDOWN_GRACE_MS, 'timeout' as const, { ref: false });
    if ((await Promise.race([all.then(() => 'done' as const), grace])) === 'timeout') {
      this.log.warn({ running: this.running.size }, 'grace period over; leaving running commands pending');
      for (const r of this.running.values()) r.abort.abort(new Error('worker shutting down'));
      await all;
    }
    if (this.reader) await closeRedis(this.reader);
    this.log.info('worker stopped');
  }

  private async readLoop(reader: Redis): Promise<void> {
    let failures = 0;
    while (!this.closing) {
      const free = this.deps.config.WORKER_CONCURRENCY - this.running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      try {
        const reply = (await reader.xreadgroup(
          'GROUP', WORKER_GROUP, this.consumer, 'COUNT', free, 'BLOCK', READ_BLOCK_MS,
          'STREAMS', COMMANDS_STREAM, '>',
        )) as [string, Entry[]][] | null;
        failures = 0;
        for (const [, entries] of reply ?? []) for (const entry of entries) this.dispatch(entry);
      } catch (err) {
        if (this.closing) break;
        failures += 1;
        if (String(err).includes('NOGROUP')) await ensureGroup(this.deps.redis).catch(() => undefined);
        this.log.error({ err }, 'reading commands failed; backing off');
        await delay(Math.min(100 * 2 ** failures, 5000));
      }
    }
  }

  private dispatch([id, fields]: Entry): void {
    if (this.running.has(id) || !fields) return;
    const command: Command = { id, fields: toRecord(fields) };
    const abort = new AbortController();
    const done = runCommand({ ...this.deps, consumer: this.consumer }, command, abort.signal)
      .catch((err) => this.log.error({ err, commandId: id }, 'command run failed; it stays pending'))
      .finally(() => {
        this.running.delete(id);
        this.slotFreed?.();
        this.slotFreed = undefined;
      });
    this.running.set(id, { done, abort });
  }

  /** Resets the idle time of our running commands so no other worker reclaims them. */
  private async heartbeat(): Promise<void> {
    if (this.running.size === 0 || this.closing) return;
    try {
      await this.deps.redis.xclaim(COMMANDS_STREAM, WORKER_GROUP, this.consumer, 0, ...this.running.keys(), 'JUSTID');
    } catch (err) {
      this.log.warn({ err }, 'heartbeat failed');
    }
  }

  /** Takes over commands idle longer than CLAIM_IDLE_MS: their worker died or stalled. */
  private async reclaim(): Promise<void> {
    const free = this.deps.config.WORKER_CONCURRENCY - this.running.size;
    if (free <= 0 || this.closing) return;
    try {
      const [, entries] = (await this.deps.redis.xautoclaim(
        COMMANDS_STREAM, WORKER_GROUP, this.consumer, this.deps.config.CLAIM_IDLE_MS, '0-0', 'COUNT', free,
      )) as [string, Entry[], string[]];
      for (const entry of entries) {
        this.log.info({ commandId: entry[0] }, 'reclaimed an idle command');
        this.dispatch(entry);
      }
    } catch (err) {
      this.log.warn({ err }, 'reclaim failed');
    }
  }
}

/** Creates the consumer group (and the stream); an existing group is fine. */
export async function ensureGroup(redis: Redis): Promise<void> {
  try {
    await redis.xgroup('CREATE', COMMANDS_STREAM, WORKER_GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!String(err).includes('BUSYGROUP')) throw err;
  }
}

function toRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}
