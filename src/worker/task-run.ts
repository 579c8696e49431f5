import { setTimeout as delay } from 'node:timers/promises';
import { v4 as uuidv4, validate as isUuid } from 'uuid';
import type { Config } from '../config.js';
import { lazyChild, type Logger } from '../logger.js';
import type { FinalStatus, Metrics } from '../metrics/metrics.js';
import type { Redis } from '../store/redis.js';
import type { TaskWrites } from '../store/task-writes.js';
import { COMMANDS_STREAM, DEAD_LETTER_STREAM, WORKER_GROUP, eventsKey, taskKey } from '../store/keys.js';
import type { TaskContext, TaskRegistry, TaskType } from './registry.js';

/** A command entry as read from `tasks:commands`. */
export interface Command {
  id: string;
  fields: Record<string, string>;
}

export interface RunDeps {
  redis: Redis;
  logger: Logger;
  config: Pick<
    Config,
    'TASK_TTL_S' | 'MAX_ATTEMPTS' | 'MAX_DELIVERIES' | 'RETRY_BASE_MS' | 'RETRY_MAX_MS' | 'DEAD_LETTER_MAXLEN'
  >;
  registry: TaskRegistry;
  consumer: string;
  /** Claims and event appends, batched per event-loop turn across this worker's runs. */
  writes: TaskWrites;
  metrics?: Metrics | undefined;
}

/** How the worker steers one run. */
export interface RunControl {
  /** Aborted with the reason the run must stop: one of the Stop classes below. */
  signal: AbortSignal;
  /** Aborted when the worker stops waiting altogether: Redis calls stop retrying. */
  hardStop: AbortSignal;
  /** Called once the run holds the task's lease (the heartbeat sends it). */
  onLease(lease: string): void;
}

/** Reasons a run stops early. They travel as abort reasons and as errors out of `stage`. */
export class CancelRequested extends Error {}
/** This run no longer owns the task: a newer run holds the lease (fencing). */
export class LeaseLost extends Error {}
/** The task ended or vanished while this run worked on it. */
export class TaskEnded extends Error {}
/** The worker is shutting down: the command stays pending for another worker. */
export class ShuttingDown extends Error {}

const isStop = (err: unknown): err is Error =>
  err instanceof CancelRequested || err instanceof LeaseLost || err instanceof TaskEnded || err instanceof ShuttingDown;

interface EventArgs {
  status: string;
  /** '' keeps the current progress. */
  progress: number | '';
  step?: number;
  terminal?: boolean;
  extra?: Record<string, string | number>;
}

/**
 * Runs one command to its end, at most once per stage whatever crashes: stage writes are fenced
 * by a lease and deduplicated by stage number, so a reclaimed command resumes after its last
 * recorded stage. The command is acked by the script that records the terminal event (or
 * dead-letters it), and only then.
 */
export async function runCommand(deps: RunDeps, command: Command, control: RunControl): Promise<void> {
  const taskId = command.fields.task_id ?? '';
  const log = lazyChild(deps.logger, () => ({ taskId, commandId: command.id }));
  const retry = <T>(call: () => Promise<T>) => retryWhileDown(call, control.hardStop, log);
  const deadLetter = async (reason: string) => {
    const [deadId, failed] = await retry(() =>
      deps.redis.deadLetter(
        COMMANDS_STREAM, DEAD_LETTER_STREAM, taskKey(taskId), eventsKey(taskId),
        WORKER_GROUP, command.id, reason, deps.config.DEAD_LETTER_MAXLEN, Date.now(), deps.config.TASK_TTL_S,
        isUuid(taskId) ? '1' : '0', JSON.stringify(command.fields),
      ),
    );
    log().warn({ reason, deadId, taskFailed: failed === '1' }, 'poison command dead-lettered');
    const type = deps.registry.get(command.fields.type ?? '') ? command.fields.type! : '(unknown)';
    if (failed === '1') deps.metrics?.taskFinished(type, 'FAILED', startedAt(command));
  };

  const checked = checkCommand(deps.registry, command.fields);
  if ('reason' in checked) return deadLetter(checked.reason);

  const lease = `${deps.consumer}/${uuidv4()}`;
  const [claim, recorded = '0', attempt = '1'] = await retry(() => deps.writes.claim({ taskId, lease, commandId: command.id }));
  switch (claim) {
    case 'GONE':
      return deadLetter('task not found');
    case 'POISON':
      return deadLetter(`delivered ${recorded} times, more than MAX_DELIVERIES (${deps.config.MAX_DELIVERIES})`);
    case 'TERMINAL':
      log().info({ status: recorded }, 'task already ended; acknowledging its command');
      await retry(() => deps.redis.xack(COMMANDS_STREAM, WORKER_GROUP, command.id));
      return;
    case 'LOST':
      log().info('command is acked or held by another worker; skipping it');
      return;
  }
  control.onLease(lease);
  const run = new TaskRun(deps, command, control, { lease, log, type: checked.type, params: checked.params });
  await run.execute(Number(recorded), Number(attempt), claim === 'CANCEL');
}

/** One owned run of a task: attempts with backoff, then a terminal event. */
class TaskRun {
  private readonly taskId: string;
  private readonly log: () => Logger;

  constructor(
    private readonly deps: RunDeps,
    private readonly command: Command,
    private readonly control: RunControl,
    private readonly own: { lease: string; log: () => Logger; type: TaskType<unknown>; params: unknown },
  ) {
    this.taskId = command.fields.task_id!;
    this.log = own.log;
  }

  async execute(recorded: number, firstAttempt: number, cancelled: boolean): Promise<void> {
    try {
      if (cancelled) throw new CancelRequested('cancel requested before this run');
      await this.attempts(recorded, firstAttempt);
    } catch (err) {
      const reason = this.control.signal.aborted ? this.control.signal.reason : err;
      if (!isStop(reason)) throw reason;
      await this.stopped(reason);
    }
  }

  private async attempts(recorded: number, firstAttempt: number): Promise<void> {
    const { MAX_ATTEMPTS, RETRY_BASE_MS, RETRY_MAX_MS } = this.deps.config;
    for (let attempt = firstAttempt; ; attempt++) {
      try {
        recorded = await this.runHandler(recorded, attempt);
      } catch (err) {
        if (this.control.signal.aborted || isStop(err)) throw err;
        const error = errorMessage(err);
        this.log().warn({ err, attempt }, 'task handler failed');
        if (attempt >= MAX_ATTEMPTS) {
          await this.append({ status: 'FAILED', progress: '', terminal: true, extra: { error, attempt } });
          return;
        }
        await this.append({ status: 'RETRYING', progress: '', extra: { attempt: attempt + 1, error } });
        await delay(backoffMs(attempt + 1, RETRY_BASE_MS, RETRY_MAX_MS), undefined, { signal: this.control.signal });
        continue;
      }
      await this.append({ status: 'COMPLETED', progress: 100, terminal: true });
      return;
    }
  }

  /** Runs the handler once; returns the number of stages recorded when it returns. */
  private async runHandler(recorded: number, attempt: number): Promise<number> {
    const { signal } = this.control;
    signal.throwIfAborted();
    let step = 0;
    let done = recorded;
    const log = this.log;
    const ctx: TaskContext<unknown> = {
      taskId: this.taskId,
      params: this.own.params,
      signal,
      completedStages: recorded,
      attempt,
      get logger() {
        return log();
      },
      sleep: (ms) => (ms <= 0 ? Promise.resolve() : delay(ms, undefined, { signal })),
      stage: async (status, progress, work) => {
        step += 1;
        if (step <= done) return;
        const started = process.hrtime.bigint();
        if (work) await work();
        signal.throwIfAborted();
        await this.append({ status, progress, step });
        done = step;
        this.deps.metrics?.stageDone(this.own.type.name, status, Number(process.hrtime.bigint() - started) / 1e9);
      },
    };
    await this.own.type.run(ctx);
    return done;
  }

  /** Ends a run that was told to stop, as its reason requires. */
  private async stopped(reason: Error): Promise<void> {
    if (reason instanceof ShuttingDown) {
      this.log().info('run stopped for shutdown; the command stays pending for another worker');
    } else if (reason instanceof LeaseLost) {
      this.log().warn('fenced: another worker owns this task now');
    } else if (reason instanceof TaskEnded) {
      this.log().info({ reason: reason.message }, 'task ended elsewhere; acknowledging its command');
      await this.ack();
    } else {
      try {
        await this.append({ status: 'CANCELLED', progress: '', terminal: true });
      } catch (err) {
        if (err instanceof TaskEnded) await this.ack();
        else if (err instanceof LeaseLost) this.log().warn('fenced while cancelling: another worker owns this task now');
        else throw err;
      }
    }
  }

  private ack(): Promise<number> {
    return retryWhileDown(
      () => this.deps.redis.xack(COMMANDS_STREAM, WORKER_GROUP, this.command.id),
      this.control.hardStop,
      this.log,
    );
  }

  private async append(e: EventArgs): Promise<void> {
    const event = { ...e, taskId: this.taskId, lease: this.own.lease, commandId: this.command.id, ts: Date.now() };
    const [result] = await retryWhileDown(() => this.deps.writes.append(event), this.control.hardStop, this.log);
    if (result === 'FENCED') throw new LeaseLost('lease lost to a newer run');
    if (result === 'TERMINAL' || result === 'GONE') throw new TaskEnded(`task is ${result.toLowerCase()}`);
    if (result === 'CANCEL') throw new CancelRequested('cancel requested');
    if (this.deps.logger.isLevelEnabled('info')) this.log().info({ status: e.status, step: e.step, result }, 'event recorded');
    if (e.terminal && result === 'OK') {
      this.deps.metrics?.taskFinished(this.own.type.name, e.status as FinalStatus, startedAt(this.command));
    }
  }
}

/** When the task was started: the time part of its command's id, so no extra read is needed. */
function startedAt(command: Command): number {
  return Number(command.id.split('-')[0]);
}

type Checked = { type: TaskType<unknown>; params: unknown } | { reason: string };

/** A command a worker can run, or the reason it is poison. */
export function checkCommand(registry: TaskRegistry, fields: Record<string, string>): Checked {
  if (fields.task_id === undefined) return { reason: 'malformed command: no task_id' };
  if (!isUuid(fields.task_id)) return { reason: 'malformed command: task_id is not a UUID' };
  const type = registry.get(fields.type ?? '');
  if (!type) return { reason: `unknown task type ${JSON.stringify(fields.type ?? null)}` };
  let raw: unknown;
  try {
    raw = JSON.parse(fields.params ?? '{}');
  } catch {
    return { reason: 'malformed command: params is not JSON' };
  }
  const params = type.params.safeParse(raw);
  if (!params.success) {
    const issues = params.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { reason: `invalid params: ${issues.join('; ')}`.slice(0, 1000) };
  }
  return { type, params: params.data };
}

/**
 * Wait before attempt `attempt` (2 for the first retry): RETRY_BASE_MS doubling per retry,
 * capped at RETRY_MAX_MS; the upper half is random so retries of many tasks spread out.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 2));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function errorMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 1000);
}

/**
 * Retries an idempotent Redis call while the connection is down or Redis is loading, so a Redis
 * restart does not fail the task. Stops when `stop` is aborted.
 */
async function retryWhileDown<T>(call: () => Promise<T>, stop: AbortSignal, log: () => Logger): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isConnectionError(err) || stop.aborted) throw err;
      log().warn({ err: errorMessage(err), attempt }, 'redis unavailable; retrying');
      await delay(Math.min(100 * 2 ** attempt, 2000), undefined, { signal: stop });
    }
  }
}

function isConnectionError(err: unknown): boolean {
  return err instanceof Error && /closed|ECONNREFUSED|ECONNRESET|writeable|LOADING|MaxRetries/i.test(err.message);
}
