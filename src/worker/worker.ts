import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { closeRedis, duplicateForBlocking, ensureConnected, type Redis } from '../store/redis.js';
import { CANCEL_CHANNEL, COMMANDS_STREAM, WORKER_GROUP, taskKey } from '../store/keys.js';
import { ensureGroup, pruneConsumers } from '../store/consumer-group.js';
import { TaskWrites } from '../store/task-writes.js';
import { TaskCorrupted } from '../store/corrupted.js';
import { pruneIndex } from '../store/task-index.js';
import type { TaskRegistry } from './registry.js';
import { CancelRequested, LeaseLost, ShuttingDown, TaskEnded } from './stops.js';
import { runCommand, type Command, type RunDeps } from './task-run.js';

export interface WorkerDeps {
  redis: Redis;
  logger: Logger;
  config: RunDeps['config'] &
    Pick<Config, 'WORKER_CONCURRENCY' | 'CLAIM_IDLE_MS' | 'SHUTDOWN_GRACE_MS' | 'COMMANDS_MAXLEN' | 'CONSUMER_PRUNE_IDLE_MS'>;
  registry: TaskRegistry;
  /** Task outcome and stage metrics are recorded here when given. */
  metrics?: Metrics;
}

type Entry = [id: string, fields: string[] | null];

interface Running {
  taskId: string;
  /** Set once the run holds the task's lease; only leased runs are heartbeated. */
  lease: string | undefined;
  abort: AbortController;
  done: Promise<void>;
}

/** How long one XREADGROUP blocks; bounds how late a lost wake-up could be noticed. */
const READ_BLOCK_MS = 5000;

/**
 * Reads `tasks:commands` in the `workers` group and runs up to WORKER_CONCURRENCY commands at once.
 * Heartbeats its leased commands so no one reclaims them, reclaims commands whose worker died or
 * stalled (XAUTOCLAIM after CLAIM_IDLE_MS), trims the commands stream, and aborts a run at once
 * when its cancel is published on `tasks:cancel` (the heartbeat catches a missed message).
 */
export class Worker {
  readonly consumer = `${hostname()}-${process.pid}-${uuidv4().slice(0, 8)}`;
  private readonly log: Logger;
  private readonly writes: TaskWrites;
  private readonly running = new Map<string, Running>();
  private readonly hardStop = new AbortController();
  private reader: Redis | undefined;
  private readerId: number | undefined;
  private subscriber: Redis | undefined;
  private loop: Promise<void> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reclaimTimer: NodeJS.Timeout | undefined;
  private reclaimCursor = '0-0';
  private slotFreed: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: WorkerDeps) {
    this.log = deps.logger.child({ consumer: this.consumer });
    const { TASK_TTL_S, MAX_DELIVERIES } = deps.config;
    this.writes = new TaskWrites(deps.redis, { consumer: this.consumer, ttlS: TASK_TTL_S, maxDeliveries: MAX_DELIVERIES });
  }

  async start(): Promise<void> {
    await ensureGroup(this.deps.redis);
    const reader = duplicateForBlocking(this.deps.redis, `worker-reader:${this.consumer}`, this.deps.logger);
    this.reader = reader;
    // CLIENT UNBLOCK at shutdown needs the current id, which changes on every reconnect.
    reader.on('ready', () => void this.refreshReaderId(reader));
    await ensureConnected(reader);
    await this.refreshReaderId(reader);
    const subscriber = duplicateForBlocking(this.deps.redis, `worker-cancel:${this.consumer}`, this.deps.logger);
    this.subscriber = subscriber;
    subscriber.on('message', (_channel: string, taskId: string) => this.cancel(taskId));
    await ensureConnected(subscriber);
    await subscriber.subscribe(CANCEL_CHANNEL);

    const { CLAIM_IDLE_MS } = this.deps.config;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), Math.max(50, Math.floor(CLAIM_IDLE_MS / 3)));
    this.reclaimTimer = setInterval(() => void this.maintain(), Math.max(50, Math.floor(CLAIM_IDLE_MS / 2)));
    this.loop = this.readLoop(reader);
    this.log.info('worker started');
  }

  /** Stops reading, lets running commands finish within SHUTDOWN_GRACE_MS, leaves the rest pending. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.reclaimTimer);
    await this.stopReading();
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    const grace = delay(this.deps.config.SHUTDOWN_GRACE_MS, 'timeout' as const, { ref: false });
    if ((await Promise.race([all.then(() => 'done' as const), grace])) === 'timeout') {
      const left = [...this.running.entries()];
      this.log.warn({ running: left.length }, 'grace period over; leaving running commands pending');
      for (const [, r] of left) r.abort.abort(new ShuttingDown('worker shutting down'));
      this.hardStop.abort();
      await all;
      await this.release(left);
    }
    clearInterval(this.heartbeatTimer);
    if (this.subscriber) await closeRedis(this.subscriber);
    if (this.reader) await closeRedis(this.reader);
    this.log.info('worker stopped');
  }

  /** Makes the blocked XREADGROUP return empty (no entry is lost), or drops the connection. */
  private async stopReading(): Promise<void> {
    this.slotFreed?.();
    if (!this.loop) return;
    if (this.readerId !== undefined && this.deps.redis.status === 'ready') {
      await Promise.race([this.deps.redis.client('UNBLOCK', this.readerId).catch(() => 0), delay(1000)]);
    }
    const stopped = await Promise.race([this.loop.then(() => true), delay(1500, false, { ref: false })]);
    if (!stopped) {
      this.reader?.disconnect();
      await this.loop;
    }
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
        const entries = (reply ?? []).flatMap(([, e]) => e);
        if (this.closing) await this.handBack(entries.map(([id]) => id));
        else for (const entry of entries) this.dispatch(entry);
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
    const run: Running = { taskId: command.fields.task_id ?? '', lease: undefined, abort, done: Promise.resolve() };
    run.done = runCommand({ ...this.deps, consumer: this.consumer, writes: this.writes }, command, {
      signal: abort.signal,
      hardStop: this.hardStop.signal,
      onLease: (lease) => (run.lease = lease),
    })
      .catch((err) => this.log.error({ err, commandId: id }, 'command run failed; it stays pending'))
      .finally(() => {
        this.running.delete(id);
        this.slotFreed?.();
        this.slotFreed = undefined;
      });
    this.running.set(id, run);
  }

  /** A cancel was published: abort the task's run if it is ours. */
  private cancel(taskId: string): void {
    for (const run of this.running.values()) {
      if (run.taskId === taskId) run.abort.abort(new CancelRequested('cancel requested'));
    }
  }

  /**
   * Resets the idle time of the commands whose task we still lease, and aborts runs that lost
   * their lease, whose task ended or is corrupted (the run dead-letters it), or whose cancel we missed.
   */
  private async heartbeat(): Promise<void> {
    const leased = [...this.running.entries()].filter(([, r]) => r.lease !== undefined);
    if (leased.length === 0) return;
    try {
      const verdicts = await this.fencedClaim(leased, 0);
      for (const [id, verdict] of verdicts) {
        const run = this.running.get(id);
        if (verdict === 'LOST') run?.abort.abort(new LeaseLost('lease lost to a newer run'));
        else if (verdict === 'ENDED') run?.abort.abort(new TaskEnded('task ended'));
        else if (verdict === 'CANCEL') run?.abort.abort(new CancelRequested('cancel requested'));
        else if (verdict === 'CORRUPTED' && run) run.abort.abort(new TaskCorrupted(run.taskId, `${taskKey(run.taskId)} is not a hash`));
      }
    } catch (err) {
      this.log.warn({ err }, 'heartbeat failed');
    }
  }

  /** Marks commands we stopped at shutdown as idle for CLAIM_IDLE_MS, so others reclaim them now. */
  private async release(runs: [string, Running][]): Promise<void> {
    const leased = runs.filter(([, r]) => r.lease !== undefined);
    if (leased.length === 0 || this.deps.redis.status !== 'ready') return;
    try {
      await Promise.race([this.fencedClaim(leased, this.deps.config.CLAIM_IDLE_MS), delay(1000, undefined, { ref: false })]);
    } catch (err) {
      this.log.warn({ err }, 'could not release commands; they are reclaimed after CLAIM_IDLE_MS');
    }
  }

  /** Commands read while closing were never started: hand them to other workers at once. */
  private async handBack(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.deps.redis
      .xclaim(COMMANDS_STREAM, WORKER_GROUP, this.consumer, 0, ...ids, 'IDLE', this.deps.config.CLAIM_IDLE_MS, 'JUSTID')
      .catch((err) => this.log.warn({ err }, 'could not hand back commands; they are reclaimed after CLAIM_IDLE_MS'));
  }

  private async fencedClaim(runs: [string, Running][], idleMs: number): Promise<[string, string][]> {
    const keys = [COMMANDS_STREAM, ...runs.map(([, r]) => taskKey(r.taskId))];
    const args = [WORKER_GROUP, this.consumer, idleMs, ...runs.flatMap(([id, r]) => [id, r.lease!])];
    const reply = await this.deps.redis.heartbeat(keys.length, ...keys, ...args);
    const out: [string, string][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([reply[i]!, reply[i + 1]!]);
    return out;
  }

  /**
   * Reclaims idle commands, then trims the commands stream, prunes the recent-tasks index and
   * removes the consumers of workers that are gone.
   */
  private async maintain(): Promise<void> {
    if (this.closing) return;
    await this.reclaim();
    const { redis, config } = this.deps;
    try {
      await redis.trimCommands(COMMANDS_STREAM, WORKER_GROUP, config.COMMANDS_MAXLEN);
      await pruneIndex(redis, config.TASK_TTL_S);
      const removed = await pruneConsumers(redis, config.CONSUMER_PRUNE_IDLE_MS, this.consumer);
      if (removed.length > 0) this.log.info({ removed }, 'removed the consumers of workers that are gone');
    } catch (err) {
      this.log.warn({ err }, 'maintenance of the commands stream, task index or consumers failed');
    }
  }

  /** Takes over commands idle longer than CLAIM_IDLE_MS: their worker died or stalled. */
  private async reclaim(): Promise<void> {
    const free = this.deps.config.WORKER_CONCURRENCY - this.running.size;
    if (free <= 0) return;
    try {
      const [next, entries, deleted] = (await this.deps.redis.xautoclaim(
        COMMANDS_STREAM, WORKER_GROUP, this.consumer, this.deps.config.CLAIM_IDLE_MS, this.reclaimCursor, 'COUNT', free,
      )) as [string, Entry[], string[]];
      this.reclaimCursor = next;
      if (deleted.length > 0) this.log.warn({ deleted }, 'pending commands were trimmed away; dropped from the group');
      for (const entry of entries) {
        if (this.closing) break;
        this.log.info({ commandId: entry[0] }, 'reclaimed an idle command');
        this.dispatch(entry);
      }
    } catch (err) {
      this.log.warn({ err }, 'reclaim failed');
    }
  }

  private async refreshReaderId(reader: Redis): Promise<void> {
    try {
      this.readerId = (await reader.client('ID')) as number;
    } catch (err) {
      this.log.warn({ err }, 'could not read the worker reader client id');
    }
  }
}

function toRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}
