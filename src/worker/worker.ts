import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { subscribeCancels, type CancelSubscription } from '../store/cancel-channel.js';
import { CommandQueue, type CommandEntry } from '../store/command-queue.js';
import { isNoGroup } from '../store/consumer-group.js';
import { reconnectDelayMs, type Redis } from '../store/redis.js';
import { TaskWrites } from '../store/task-writes.js';
import { FailureStreak } from '../store/failure-streak.js';
import { ConcurrencyLimits } from '../tasks/concurrency.js';
import type { TaskRegistry } from '../tasks/registry.js';
import { CancelRequested, ShuttingDown } from './stops.js';
import { runCommand } from './run-command.js';
import type { RunDeps } from './task-run.js';
import { CommandReader, SLOW_NODE_MS } from './command-reader.js';
import { Recovery, refOf, type Running } from './recovery.js';
import { Upkeep } from './upkeep.js';
import { atMost } from '../at-most.js';

export interface WorkerDeps {
  redis: Redis;
  logger: Logger;
  config: RunDeps['config'] &
    Pick<Config, 'WORKER_CONCURRENCY' | 'CLAIM_IDLE_MS' | 'SHUTDOWN_GRACE_MS' | 'COMMANDS_MAXLEN' | 'CONSUMER_PRUNE_IDLE_MS' | 'SCHEDULE_POLL_MS' | 'TASK_CONCURRENCY'>;
  registry: TaskRegistry;
  /** Task outcome and stage metrics are recorded here when given. */
  metrics?: Metrics;
  /** The concurrency limits its claims apply; default: from `registry` and TASK_CONCURRENCY. */
  limits?: ConcurrencyLimits;
}

/**
 * How long a stop waits, at each of its steps, for work that waits on Redis (the read loop in a
 * reclaim pass, a pass in flight, runs after the grace period), ms. Redis gone, such work never
 * ends: it is left behind, and ends with the connection (closed after the stop).
 */
const STOP_REDIS_WAIT_MS = 1000;

/**
 * Reads the commands streams in the `workers` group (see CommandReader), high priority before normal before low, and
 * runs up to WORKER_CONCURRENCY commands at once.
 * Its Recovery heartbeats its commands so no one reclaims them, and takes commands due for
 * reclaim (their worker died or stalled: idle over CLAIM_IDLE_MS) before new ones, and at start
 * those of a worker of this host that died. It passes its types' concurrency limits to its claims
 * and aborts a run at once when its cancel is published on `tasks:cancel` (the heartbeat catches a
 * missed message). Its Upkeep promotes due scheduled tasks, trims the commands streams and frees
 * leaked slots.
 */
export class Worker {
  readonly consumer = `${hostname()}-${process.pid}-${uuidv4().slice(0, 8)}`;
  private readonly log: Logger;
  private readonly writes: TaskWrites;
  private readonly queue: CommandQueue;
  private readonly limits: ConcurrencyLimits;
  private readonly running = new Map<string, Running>();
  private readonly hardStop = new AbortController();
  private readonly reader: CommandReader;
  private cancels: CancelSubscription | undefined;
  private loop: Promise<void> | undefined;
  private readonly upkeep: Upkeep;
  private readonly recovery: Recovery;
  private slotFreed: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: WorkerDeps) {
    this.log = deps.logger.child({ consumer: this.consumer });
    const { TASK_TTL_S, MAX_DELIVERIES } = deps.config;
    this.writes = new TaskWrites(deps.redis, { consumer: this.consumer, ttlS: TASK_TTL_S, maxDeliveries: MAX_DELIVERIES });
    this.queue = new CommandQueue(deps.redis, this.consumer);
    this.limits = deps.limits ?? new ConcurrencyLimits(deps.registry, deps.config.TASK_CONCURRENCY);
    this.reader = new CommandReader(deps.redis, this.queue, `worker-reader:${this.consumer}`, deps.logger);
    this.recovery = new Recovery({
      redis: deps.redis, queue: this.queue, log: this.log, config: deps.config, running: this.running,
      dispatch: (command) => this.dispatch(command),
      closing: () => this.closing !== undefined,
    });
    this.upkeep = new Upkeep({
      redis: deps.redis, log: this.log, queue: this.queue, limits: this.limits, config: deps.config,
      recover: async () => {
        await this.recovery.reclaim();
        await this.recovery.takeOver();
      },
    });
  }

  async start(): Promise<void> {
    await this.queue.ensureGroup();
    await this.reader.start();
    this.cancels = await subscribeCancels(this.deps.redis, `worker-cancel:${this.consumer}`, this.deps.logger, (id) => this.cancel(id));
    this.recovery.startHeartbeats();
    this.upkeep.start();
    await this.recovery.takeOver();
    this.loop = this.readLoop();
    this.log.info('worker started');
  }

  /**
   * Stops reading, lets running commands finish within SHUTDOWN_GRACE_MS of the call (the steps
   * before it count too: with a node that does not answer they take seconds), hands the rest back.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const graceEnds = Date.now() + this.deps.config.SHUTDOWN_GRACE_MS;
    // Each step is bounded (a Redis that hangs answers none of them); independent ones overlap.
    await Promise.all([this.upkeep.stop(), this.stopReading()]);
    await Promise.all([
      atMost(this.recovery.handBack(this.reader.drain()), STOP_REDIS_WAIT_MS),
      this.recovery.inFlight && atMost(this.recovery.inFlight, STOP_REDIS_WAIT_MS),
    ]);
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    if ((await atMost(all.then(() => 'done' as const), Math.max(0, graceEnds - Date.now()))) === undefined) {
      const left = [...this.running.values()];
      this.log.warn({ running: left.length }, 'grace period over; leaving running commands pending');
      for (const r of left) r.abort.abort(new ShuttingDown('worker shutting down'));
      this.hardStop.abort();
      await atMost(all, STOP_REDIS_WAIT_MS);
      await this.recovery.release(left);
    }
    await this.recovery.stopHeartbeats();
    await Promise.all([this.cancels?.close(), this.reader.close()]);
    this.log.info('worker stopped');
  }

  /** Makes the blocked XREADGROUP return empty (no entry is lost), or drops the connection. */
  private async stopReading(): Promise<void> {
    this.slotFreed?.();
    if (!this.loop) return;
    await atMost(this.reader.unblock().catch(() => false), 1000);
    const stopped = await atMost(this.loop.then(() => true), 1500);
    if (!stopped) {
      this.reader.disconnect();
      await atMost(this.loop, STOP_REDIS_WAIT_MS);
    }
  }

  private async readLoop(): Promise<void> {
    let failures = 0;
    const readFailures = new FailureStreak(() => this.log, 'reading commands failed; backing off');
    while (!this.closing) {
      const free = this.deps.config.WORKER_CONCURRENCY - this.running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      // Work due for reclaim goes before new work, so recovery does not wait for the queue to drain;
      // a pass that a node does not answer goes on by itself while the other partitions are read.
      if (this.recovery.due && !this.recovery.inFlight) {
        await atMost(this.recovery.reclaim(), SLOW_NODE_MS);
        continue;
      }
      try {
        const entries = await this.reader.read(free);
        failures = 0;
        readFailures.ok();
        // A reclaim pass that ended meanwhile may have taken slots.
        const start = this.closing ? [] : entries.slice(0, Math.max(0, this.deps.config.WORKER_CONCURRENCY - this.running.size));
        const rest = entries.slice(start.length);
        await this.recovery.handBack(rest);
        for (const entry of start) this.dispatch(entry);
        // Handed back while running: taken again (by any worker) at the next reclaim pass, now.
        if (rest.length > 0) this.recovery.soon();
      } catch (err) {
        if (this.closing) break;
        failures += 1;
        if (isNoGroup(err)) await this.queue.ensureGroup().catch((e: unknown) => this.log.warn({ err: String(e) }, 'could not create the workers group again'));
        readFailures.failed(err);
        await delay(reconnectDelayMs(failures));
      }
    }
  }

  private dispatch(command: CommandEntry): void {
    const ref = refOf(command);
    if (this.running.has(ref)) return;
    const abort = new AbortController();
    const run: Running = { command, taskId: command.taskId ?? '', lease: '', abort, done: Promise.resolve() };
    run.done = runCommand({ ...this.deps, consumer: this.consumer, writes: this.writes, limits: this.limits }, command, {
      abort,
      hardStop: this.hardStop.signal,
      onLease: (lease) => (run.lease = lease),
    })
      .catch((err) => this.log.error({ err, commandId: command.id }, 'command run failed; it stays pending'))
      .finally(() => {
        this.running.delete(ref);
        this.slotFreed?.();
        this.slotFreed = undefined;
      });
    this.running.set(ref, run);
  }

  /** A cancel was published: abort the task's run if it is ours. */
  private cancel(taskId: string): void {
    for (const run of this.running.values()) {
      if (run.taskId === taskId) run.abort.abort(new CancelRequested('cancel requested'));
    }
  }
}
