import { setTimeout as delay } from 'node:timers/promises';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { TaskWrites } from '../store/task-writes.js';
import type { CommandEntry } from '../store/command-queue.js';
import { jsonText } from './json-value.js';
import { describeThrown, errorText, loggableThrown } from './thrown.js';
import { abandonable } from './abandon.js';
import type { TaskRegistry, TaskType } from '../tasks/registry.js';
import { backoffMs, retryWhileDown } from './retry.js';
import { RunLog, type NewEvent } from './run-log.js';
import { CancelRequested, LeaseLost, LogRolledBack, ShuttingDown, TaskEnded, TaskGone, isStop } from './stops.js';
import { Attempt } from './task-context.js';
import type { ConcurrencyLimits } from '../tasks/concurrency.js';
import { RETRYING, type TerminalStatus } from '../wire/events.js';

type Command = CommandEntry;

export interface RunDeps {
  logger: Logger;
  config: Pick<
    Config,
    | 'TASK_TTL_S' | 'MAX_ATTEMPTS' | 'MAX_DELIVERIES' | 'RETRY_BASE_MS' | 'RETRY_MAX_MS' | 'DEAD_LETTER_MAXLEN'
    | 'RESULT_MAX_BYTES' | 'OUTPUT_CHUNK_MAX_BYTES' | 'CANCEL_GRACE_MS'
  >;
  registry: TaskRegistry;
  consumer: string;
  /** Claims and event appends, batched per event-loop turn across this worker's runs. */
  writes: TaskWrites;
  /** The concurrency limits claims apply. */
  limits: ConcurrencyLimits;
  metrics?: Metrics | undefined;
}

/** How the worker steers one run. */
export interface RunControl {
  /**
   * The run's stop, and its handler's signal: aborted with the first reason the run must stop, one
   * of the Stop classes (stops.ts), by the worker (cancel, shutdown, heartbeat) or by the run's own
   * log when it can record nothing more.
   */
  abort: AbortController;
  /** Aborted when the worker stops waiting altogether: Redis calls stop retrying. */
  hardStop: AbortSignal;
  /** Called once the run holds the task's lease (the heartbeat sends it). */
  onLease(lease: string): void;
}

/** One owned run of a task (its claim taken, see runCommand): attempts with backoff, then a terminal event. */
export class TaskRun {
  private readonly taskId: string;
  private readonly log: () => Logger;
  private readonly events: RunLog;
  /** The handler's signal (RunControl.abort's). */
  private readonly signal: AbortSignal;
  /** The handler ignored its signal past its grace: the run went on without it. */
  private abandoned = false;

  constructor(
    private readonly deps: RunDeps,
    private readonly command: Command,
    private readonly control: RunControl,
    private readonly task: { lease: string; log: () => Logger; type: TaskType<unknown>; params: unknown },
  ) {
    this.taskId = command.taskId!;
    this.log = task.log;
    this.signal = control.abort.signal;
    this.events = new RunLog({
      writes: deps.writes,
      taskId: this.taskId,
      lease: task.lease,
      commandId: command.id,
      retry: (call) => retryWhileDown(call, control.hardStop, this.log),
      onStop: (reason) => control.abort.abort(reason),
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
        const error = errorText(err);
        this.log().warn({ err: loggableThrown(err), attempt }, 'task handler failed');
        if (attempt >= MAX_ATTEMPTS) {
          await this.append({ kind: 'stage', status: 'FAILED', progress: '', terminal: true, fields: ['error', error, 'attempt', attempt] });
          return;
        }
        await this.append({ kind: 'stage', status: RETRYING, progress: '', fields: ['attempt', attempt + 1, 'error', error] });
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
      // Once told to stop, the run waits for the handler CANCEL_GRACE_MS after a cancel, else not
      // at all (it can record nothing more); a handler that ignores its signal is fenced off
      // (its later calls throw RUN_ENDED) and the run goes on without it.
      const value = await abandonable(this.task.type.run(run.context), this.signal, {
        graceMs: (reason) => (reason instanceof CancelRequested ? this.deps.config.CANCEL_GRACE_MS : 0),
        onAbandon: (reason, graceMs) => {
          this.abandoned = true;
          // Without a grace (lease lost, shutdown) the run never waited: the handler ignored nothing.
          if (graceMs > 0) this.log().warn({ reason: String(reason), graceMs }, 'the handler ignored its abort signal; the run goes on without it');
          else this.log().info({ reason: String(reason) }, 'the run stops without waiting for its handler');
        },
        onLateSettle: (err) => this.log().info(err === undefined ? {} : { err: describeThrown(err) }, 'an abandoned handler settled'),
      });
      await run.end();
      return value;
    } catch (err) {
      if (this.abandoned) run.abandon();
      else await run.end().catch(() => undefined);
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
      return { error: `the handler's result is not JSON: ${describeThrown(err)}` };
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
    } else if (reason instanceof LogRolledBack) {
      this.rolledBack();
    } else if (reason instanceof TaskEnded) {
      if (reason instanceof TaskGone) this.log().warn('task\'s keys are gone (deleted, or lost with Redis\'s data) while it ran; acknowledging its command');
      else this.log().info({ reason: reason.message }, 'task ended elsewhere; acknowledging its command');
      await this.ack();
    } else {
      try {
        await this.append({ kind: 'stage', status: 'CANCELLED', progress: '', terminal: true });
      } catch (err) {
        if (err instanceof TaskEnded) await this.ack();
        else if (err instanceof LeaseLost) this.log().warn('fenced while cancelling: another worker owns this task now');
        else if (err instanceof LogRolledBack) this.rolledBack();
        else throw err;
      }
    }
  }

  /** The command stays pending: once it idles out (CLAIM_IDLE_MS), a worker takes the task over. */
  private rolledBack(): void {
    this.log().warn('the task\'s log lost events this run had recorded (Redis came back with older data): the run stops; the task is taken over from its last recorded stage');
  }

  private ack(): Promise<void> {
    return retryWhileDown(
      () => this.deps.writes.ack(this.command),
      this.control.hardStop,
      this.log,
    );
  }

  /** Records a stage-type event of the run itself (RETRYING, and the terminal ones). */
  private async append(event: Extract<NewEvent, { kind: 'stage' }>): Promise<void> {
    const id = await this.events.write(event);
    if (this.deps.logger.isLevelEnabled('info')) this.log().info({ status: event.status, eventId: id }, 'event recorded');
    if (event.terminal && id !== null) {
      this.deps.metrics?.taskFinished(this.task.type.name, event.status as TerminalStatus, this.command.queuedAtMs);
    }
  }
}

