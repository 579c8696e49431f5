import { setTimeout as delay } from 'node:timers/promises';
import { v4 as uuidv4, validate as isUuid } from 'uuid';
import type { Config } from '../config.js';
import { lazyChild, type Logger } from '../logger.js';
import type { FinalStatus, Metrics } from '../metrics/metrics.js';
import type { Redis } from '../store/redis.js';
import type { TaskWrites } from '../store/task-writes.js';
import { COMMANDS_STREAM, DEAD_LETTER_STREAM, WORKER_GROUP, eventsKey, taskKey } from '../store/keys.js';
import { redisTrouble } from '../store/unavailable.js';
import { TaskCorrupted } from '../store/corrupted.js';
import { jsonText } from './json-value.js';
import type { TaskRegistry, TaskType } from './registry.js';
import { RunLog, type NewEvent } from './run-log.js';
import { CancelRequested, LeaseLost, ShuttingDown, TaskEnded, isStop } from './stops.js';
import { Attempt } from './task-context.js';

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
    | 'TASK_TTL_S' | 'MAX_ATTEMPTS' | 'MAX_DELIVERIES' | 'RETRY_BASE_MS' | 'RETRY_MAX_MS' | 'DEAD_LETTER_MAXLEN'
    | 'RESULT_MAX_BYTES' | 'OUTPUT_CHUNK_MAX_BYTES'
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

/**
 * Runs one command to its end, at most once per stage whatever crashes: writes are fenced by a
 * lease and deduplicated by stage and sequence number, so a reclaimed command resumes after its
 * last recorded stage. The command is acked by the script that records the terminal event (or
 * dead-letters it), and only then. A task whose keys hold the wrong type (TaskCorrupted, from a
 * claim, an append or the heartbeat) is dead-lettered at once.
 */
export async function runCommand(deps: RunDeps, command: Command, control: RunControl): Promise<void> {
  const taskId = command.fields.task_id ?? '';
  const log = lazyChild(deps.logger, () => ({ taskId, commandId: command.id }));
  const retry = <T>(call: () => Promise<T>) => retryWhileDown(call, control.hardStop, log);
  const deadLetter = async (reason: string) => {
    const [deadId, outcome] = await retry(() =>
      deps.redis.deadLetter(
        COMMANDS_STREAM, DEAD_LETTER_STREAM, taskKey(taskId), eventsKey(taskId),
        WORKER_GROUP, command.id, reason, deps.config.DEAD_LETTER_MAXLEN, Date.now(), deps.config.TASK_TTL_S,
        isUuid(taskId) ? '1' : '0', JSON.stringify(command.fields),
      ),
    );
    log().warn({ reason, deadId, task: outcome }, 'poison command dead-lettered');
    const type = deps.registry.get(command.fields.type ?? '') ? command.fields.type! : '(unknown)';
    if (outcome === 'FAILED') deps.metrics?.taskFinished(type, 'FAILED', startedAt(command));
  };

  const checked = checkCommand(deps.registry, command.fields);
  if ('reason' in checked) return deadLetter(checked.reason);
  try {
    const lease = `${deps.consumer}/${uuidv4()}`;
    const [claim, recorded = '0', attempt = '1'] = await retry(() => deps.writes.claim({ taskId, lease, commandId: command.id }));
    switch (claim) {
      case 'GONE':
        return await deadLetter('task not found');
      case 'POISON':
        return await deadLetter(`delivered ${recorded} times, more than MAX_DELIVERIES (${deps.config.MAX_DELIVERIES})`);
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
  } catch (err) {
    // Bad data, which no redelivery heals: dead-lettered at once (the script says why the task
    // could not be ended FAILED), not after MAX_DELIVERIES.
    if (!(err instanceof TaskCorrupted)) throw err;
    log().error({ err: err.message }, 'task keys hold the wrong type');
    await deadLetter('corrupted task data');
  }
}

/** One owned run of a task: attempts with backoff, then a terminal event. */
class TaskRun {
  private readonly taskId: string;
  private readonly log: () => Logger;
  private readonly events: RunLog;
  /** Aborted by the run's own log when it can record nothing more. */
  private readonly own = new AbortController();
  /** The handler's signal: the worker's reasons (cancel, shutdown, heartbeat) or the log's. */
  private readonly signal: AbortSignal;

  constructor(
    private readonly deps: RunDeps,
    private readonly command: Command,
    private readonly control: RunControl,
    private readonly task: { lease: string; log: () => Logger; type: TaskType<unknown>; params: unknown },
  ) {
    this.taskId = command.fields.task_id!;
    this.log = task.log;
    this.signal = AbortSignal.any([control.signal, this.own.signal]);
    this.events = new RunLog({
      writes: deps.writes,
      taskId: this.taskId,
      lease: task.lease,
      commandId: command.id,
      retry: (call) => retryWhileDown(call, control.hardStop, this.log),
      onStop: (reason) => this.own.abort(reason),
    });
  }

  async execute(recorded: number, firstAttempt: number, cancelled: boolean): Promise<void> {
    try {
      if (cancelled) throw new CancelRequested('cancel requested before this run');
      await this.attempts(recorded, firstAttempt);
    } catch (err) {
      const reason = this.signal.aborted ? this.signal.reason : err;
      if (!isStop(reason)) throw reason;
      await this.stopped(reason);
    }
  }

  private async attempts(recorded: number, firstAttempt: number): Promise<void> {
    const { MAX_ATTEMPTS, RETRY_BASE_MS, RETRY_MAX_MS } = this.deps.config;
    const stages = { recorded };
    for (let attempt = firstAttempt; ; attempt++) {
      let value: unknown;
      try {
        value = await this.runHandler(stages, attempt);
      } catch (err) {
        if (this.signal.aborted || isStop(err)) throw err;
        const error = errorMessage(err);
        this.log().warn({ err, attempt }, 'task handler failed');
        if (attempt >= MAX_ATTEMPTS) {
          await this.append({ kind: 'stage', status: 'FAILED', progress: '', terminal: true, fields: ['error', error, 'attempt', attempt] });
          return;
        }
        await this.append({ kind: 'stage', status: 'RETRYING', progress: '', fields: ['attempt', attempt + 1, 'error', error] });
        await delay(backoffMs(attempt + 1, RETRY_BASE_MS, RETRY_MAX_MS), undefined, { signal: this.signal });
        continue;
      }
      const result = this.result(value);
      if ('error' in result) {
        this.log().warn({ error: result.error }, 'task result refused');
        await this.append({ kind: 'stage', status: 'FAILED', progress: '', terminal: true, fields: ['error', result.error, 'attempt', attempt] });
      } else {
        await this.append({ kind: 'stage', status: 'COMPLETED', progress: 100, terminal: true, fields: result.fields });
      }
      return;
    }
  }

  /**
   * Runs the handler once and returns its value. `stages.recorded` is kept up to date, also when
   * the handler throws, so the next attempt skips what this one recorded.
   */
  private async runHandler(stages: { recorded: number }, attempt: number): Promise<unknown> {
    this.signal.throwIfAborted();
    const run = new Attempt({
      taskId: this.taskId,
      params: this.task.params,
      signal: this.signal,
      attempt,
      recorded: stages.recorded,
      log: this.events,
      logger: this.log,
      outputChunkMaxBytes: this.deps.config.OUTPUT_CHUNK_MAX_BYTES,
      onStage: (status, step, eventId, seconds) => {
        if (this.deps.logger.isLevelEnabled('info')) this.log().info({ status, step, eventId }, 'event recorded');
        this.deps.metrics?.stageDone(this.task.type.name, status, seconds);
      },
    });
    try {
      const value = await this.task.type.run(run.context);
      await run.end();
      return value;
    } catch (err) {
      await run.end().catch(() => undefined);
      throw err;
    } finally {
      stages.recorded = run.recorded;
    }
  }

  /** The COMPLETED event's fields for a handler's return value, or why the value is refused. */
  private result(value: unknown): { fields: (string | number)[] } | { error: string } {
    if (value === undefined) return { fields: [] };
    let text: string;
    try {
      text = jsonText(value);
    } catch (err) {
      return { error: `the handler's result is not JSON: ${(err as Error).message}` };
    }
    const bytes = Buffer.byteLength(text);
    const max = this.deps.config.RESULT_MAX_BYTES;
    if (bytes > max) return { error: `the handler's result is ${bytes} bytes, over RESULT_MAX_BYTES (${max})` };
    return { fields: ['result', text] };
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
        await this.append({ kind: 'stage', status: 'CANCELLED', progress: '', terminal: true });
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

  /** Records a stage-type event of the run itself (RETRYING, and the terminal ones). */
  private async append(event: Extract<NewEvent, { kind: 'stage' }>): Promise<void> {
    const id = await this.events.write(event);
    if (this.deps.logger.isLevelEnabled('info')) this.log().info({ status: event.status, eventId: id }, 'event recorded');
    if (event.terminal && id !== null) {
      this.deps.metrics?.taskFinished(this.task.type.name, event.status as FinalStatus, startedAt(this.command));
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
 * Retries an idempotent Redis call while Redis is down or refuses writes for now (see
 * redisTrouble), so a Redis restart or a full memory does not fail the task. Stops when `stop`
 * is aborted.
 */
async function retryWhileDown<T>(call: () => Promise<T>, stop: AbortSignal, log: () => Logger): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (redisTrouble(err) === null || stop.aborted) throw err;
      log().warn({ err: errorMessage(err), attempt }, 'redis unavailable; retrying');
      await delay(Math.min(100 * 2 ** attempt, 2000), undefined, { signal: stop });
    }
  }
}
