import { setTimeout as delay } from 'node:timers/promises';
import { RETRYING, STATUS_RE, STATUS_RULE, TERMINAL_STATUSES, WAITING_STATUSES, type Json } from '../wire/events.js';
import type { Logger } from '../logger.js';
import { jsonText } from './json-value.js';
import { describeThrown } from './thrown.js';
import type { TaskContext } from '../tasks/registry.js';
import type { RunLog } from './run-log.js';
import { TaskUsageError } from './stops.js';

/** Attempt.inStage while a stage's `work` makes its first, synchronous steps. */
const STARTING = Promise.resolve();
/** The longest ctx.sleep, ms: Node's longest timer (a longer one would fire after 1 ms). */
const MAX_SLEEP_MS = 2 ** 31 - 1;
/** The most bytes (UTF-8) of a progress message. */
export const MESSAGE_MAX_BYTES = 1024;
/** Statuses the worker records itself; a stage may not take them. */
const RESERVED_STATUSES = new Set([...TERMINAL_STATUSES, ...WAITING_STATUSES, RETRYING]);

export interface AttemptDeps {
  taskId: string;
  params: unknown;
  signal: AbortSignal;
  attempt: number;
  /** Stages recorded before this attempt (by earlier runs or attempts). */
  recorded: number;
  log: RunLog;
  logger: () => Logger;
  outputChunkMaxBytes: number;
  /** Called after each stage this attempt records (null: an earlier send had), with its duration in seconds. */
  onStage(status: string, step: number, eventId: string | null, seconds: number): void;
}

/**
 * One attempt's handler context. Stages are numbered by call order; a stage recorded before is
 * skipped (its work is not run), and so are progress and output calls that belong to it, so a
 * resumed run records each stage's events once. A progress or output call belongs to the stage
 * in progress, or when none is, to the next one. Misuse throws a TaskUsageError at once and
 * records nothing.
 */
export class Attempt {
  private step = 0;
  private done: number;
  private inStage: Promise<void> | undefined;
  private ended = false;
  readonly context: TaskContext<unknown>;

  constructor(private readonly deps: AttemptDeps) {
    this.done = deps.recorded;
    this.context = new Context(this, deps);
  }

  /** Stages recorded so far, this attempt's included. */
  get recorded(): number {
    return this.done;
  }

  /** The handler returned or threw: waits for a stage it left running, then refuses further calls. */
  async end(): Promise<void> {
    this.ended = true;
    await this.inStage;
  }

  /** The handler was abandoned (it ignored its signal): refuses its further calls, waits for nothing. */
  abandon(): void {
    this.ended = true;
  }

  /** The handler's `ctx.stage` (see TaskContext). */
  stage(status: string, progress: number, work?: () => Promise<void>): Promise<void> {
    if (typeof status !== 'string' || !STATUS_RE.test(status) || RESERVED_STATUSES.has(status)) {
      throw new TaskUsageError(
        'INVALID_STATUS',
        `stage status ${JSON.stringify(status)} is not allowed: ${STATUS_RULE}, and not ${[...RESERVED_STATUSES].join(', ')}`,
      );
    }
    checkPercent(progress, 'stage progress');
    if (work !== undefined && typeof work !== 'function') throw new TaskUsageError('INVALID_WORK', 'stage work must be a function');
    this.checkOpen();
    if (this.inStage) {
      throw new TaskUsageError('STAGE_OVERLAP', `ctx.stage(${JSON.stringify(status)}) was called while stage ${this.step} is in progress: await each stage before the next`);
    }
    const step = ++this.step;
    if (step <= this.done) return Promise.resolve();
    // In progress before `work` runs (record() calls it at once): a ctx.stage from inside it is
    // STAGE_OVERLAP, and its progress and output calls belong to this stage.
    this.inStage = STARTING;
    const running = this.record(status, progress, step, work).finally(() => {
      if (this.inStage === running) this.inStage = undefined;
    });
    this.inStage = running;
    // A stage the handler does not await must not crash the worker; one still in progress when
    // the handler returns is awaited by end(), so its failure fails the attempt.
    running.catch(() => undefined);
    return running;
  }

  private async record(status: string, progress: number, step: number, work: (() => Promise<void>) | undefined): Promise<void> {
    const started = process.hrtime.bigint();
    if (work) await work();
    this.deps.signal.throwIfAborted();
    const eventId = await this.deps.log.write({ kind: 'stage', status, progress, step });
    this.done = step;
    this.deps.onStage(status, step, eventId, Number(process.hrtime.bigint() - started) / 1e9);
  }

  /** The handler's `ctx.progress` (see TaskContext). */
  progress(percent: number, message?: string): Promise<void> {
    checkPercent(percent, 'progress');
    if (message !== undefined) {
      if (typeof message !== 'string') throw new TaskUsageError('INVALID_MESSAGE', 'a progress message must be a string');
      if (!message.isWellFormed()) throw new TaskUsageError('INVALID_MESSAGE', 'a progress message must be well-formed Unicode (no lone surrogate)');
      const bytes = Buffer.byteLength(message);
      if (bytes > MESSAGE_MAX_BYTES) {
        throw new TaskUsageError('INVALID_MESSAGE', `progress message is ${bytes} bytes, over ${MESSAGE_MAX_BYTES}`);
      }
    }
    this.checkOpen();
    if (this.skipped()) return Promise.resolve();
    return settled(this.deps.log.write({ kind: 'progress', percent, message }));
  }

  /** The handler's `ctx.output` (see TaskContext). */
  output(chunk: Json): Promise<void> {
    let kind: 'text' | 'json' = 'text';
    let value: string;
    if (typeof chunk === 'string') {
      // Stored as UTF-8: a lone surrogate would come back as U+FFFD.
      if (!chunk.isWellFormed()) throw new TaskUsageError('INVALID_CHUNK', 'a text chunk must be well-formed Unicode (no lone surrogate)');
      value = chunk;
    } else {
      if (chunk === undefined) throw new TaskUsageError('INVALID_CHUNK', 'an output chunk must be a string or a JSON value, not undefined');
      kind = 'json';
      try {
        value = jsonText(chunk);
      } catch (err) {
        throw new TaskUsageError('INVALID_CHUNK', `output chunk is not JSON: ${describeThrown(err)}`);
      }
    }
    const bytes = Buffer.byteLength(value);
    const max = this.deps.outputChunkMaxBytes;
    if (bytes > max) throw new TaskUsageError('CHUNK_TOO_LARGE', `output chunk is ${bytes} bytes, over OUTPUT_CHUNK_MAX_BYTES (${max})`);
    this.checkOpen();
    if (this.skipped()) return Promise.resolve();
    return settled(this.deps.log.write({ kind, value }));
  }

  private checkOpen(): void {
    if (this.ended) throw new TaskUsageError('RUN_ENDED', 'this attempt has ended: the handler already returned or threw');
  }

  /** The call belongs to a stage recorded before this run: it was recorded then. */
  private skipped(): boolean {
    return (this.inStage ? this.step : this.step + 1) <= this.done;
  }
}

function checkPercent(value: number, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
    throw new TaskUsageError('INVALID_PROGRESS', `${what} must be a finite number from 0 to 100, got ${String(value)}`);
  }
}

/**
 * A write's promise for the handler: resolves once recorded. A handler that does not await it
 * (a token stream often does not) must not crash the worker with an unhandled rejection: the
 * run learns of a failed write through its signal instead.
 */
function settled(write: Promise<string | null>): Promise<void> {
  const result = write.then(() => undefined);
  result.catch(() => undefined);
  return result;
}

/**
 * What a handler is given. Its functions are own properties bound to the attempt, so a handler
 * may destructure them; `logger` is made on first use. A class rather than an object literal: a
 * literal with a getter is a dictionary-mode object, slow to build and to read.
 */
class Context implements TaskContext<unknown> {
  readonly taskId: string;
  readonly params: unknown;
  readonly signal: AbortSignal;
  readonly completedStages: number;
  readonly attempt: number;
  readonly #logger: () => Logger;
  readonly sleep: TaskContext<unknown>['sleep'];
  readonly stage: TaskContext<unknown>['stage'];
  readonly progress: TaskContext<unknown>['progress'];
  readonly output: TaskContext<unknown>['output'];

  constructor(run: Attempt, deps: AttemptDeps) {
    const { signal } = deps;
    this.taskId = deps.taskId;
    this.params = deps.params;
    this.signal = signal;
    this.completedStages = deps.recorded;
    this.attempt = deps.attempt;
    this.#logger = deps.logger;
    this.sleep = (ms) => {
      if (typeof ms !== 'number' || Number.isNaN(ms) || ms > MAX_SLEEP_MS) {
        throw new TaskUsageError('INVALID_SLEEP', `ctx.sleep takes milliseconds up to ${MAX_SLEEP_MS}, got ${typeof ms === 'number' ? ms : `a ${typeof ms}`}`);
      }
      return ms <= 0 ? Promise.resolve() : delay(ms, undefined, { signal });
    };
    this.stage = (status, progress, work) => run.stage(status, progress, work);
    this.progress = (percent, message) => run.progress(percent, message);
    this.output = (chunk) => run.output(chunk);
  }

  get logger(): Logger {
    return this.#logger();
  }
}
