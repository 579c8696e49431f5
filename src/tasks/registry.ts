import type { z } from 'zod';
import type { Logger } from '../logger.js';
import type { Json } from '../wire/events.js';

/** What a handler gets for one run of one task. */
export interface TaskContext<P> {
  readonly taskId: string;
  readonly params: P;
  /** Fires when the run must stop: cancel, shutdown past its grace, or lost ownership. */
  readonly signal: AbortSignal;
  /** Stages recorded before this run started (a resumed task skips their work). */
  readonly completedStages: number;
  /** 1 for the first run; a handler that throws is run again up to MAX_ATTEMPTS. */
  readonly attempt: number;
  readonly logger: Logger;
  /**
   * Records the next stage once `work` (optional) is done. Stages are numbered by call order; on
   * a resumed run a stage that is already in the event log is neither recorded again nor is its
   * `work` run. `progress` is 0..100; the status may not be SCHEDULED, PENDING, RETRYING or terminal. Await
   * each stage before the next: an overlapping call throws (STAGE_OVERLAP).
   */
  stage(status: string, progress: number, work?: () => Promise<void>): Promise<void>;
  /**
   * Records a progress update inside the current stage: `percent` 0..100 and an optional
   * message (at most 1 KiB). The event keeps the current status.
   */
  progress(percent: number, message?: string): Promise<void>;
  /**
   * Appends a chunk to the task's output: a string is text (log lines, tokens), any other JSON
   * value a record; at most OUTPUT_CHUNK_MAX_BYTES. Calls are recorded in call order; awaiting
   * is optional (a failed write stops the run through `signal`).
   */
  output(chunk: Json): Promise<void>;
  /** An abortable sleep; 0 resolves at once. */
  sleep(ms: number): Promise<void>;
}

export interface TaskType<P = unknown> {
  readonly name: string;
  /** Validates (and fills defaults of) the params passed to POST /tasks. */
  readonly params: z.ZodType<P>;
  /**
   * Returning records COMPLETED, with the returned value (a JSON value, at most RESULT_MAX_BYTES)
   * as the task's result; throwing records RETRYING and runs it again, FAILED after MAX_ATTEMPTS.
   */
  run(ctx: TaskContext<P>): Promise<unknown>;
  /**
   * Most tasks of this type running at once across all workers (absent: no limit); TASK_CONCURRENCY
   * overrides it per deployment. A task over it waits in PENDING for a slot, oldest first.
   */
  readonly concurrency?: number | undefined;
  /**
   * Most tasks of this type with one `concurrency_key` (given at start) running at once; default 1.
   * Tasks started without a key are limited by `concurrency` only.
   */
  readonly concurrencyPerKey?: number | undefined;
}

export function defineTaskType<S extends z.ZodType>(type: {
  name: string;
  params: S;
  run(ctx: TaskContext<z.output<S>>): Promise<unknown>;
  concurrency?: number;
  concurrencyPerKey?: number;
}): TaskType<z.output<S>> {
  for (const field of ['concurrency', 'concurrencyPerKey'] as const) {
    const value = type[field];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) {
      throw new TypeError(`task type ${type.name}: ${field} must be an integer of at least 1, not ${String(value)}`);
    }
  }
  return type as unknown as TaskType<z.output<S>>;
}

/** Task types by name; the first registered is the default. */
export class TaskRegistry {
  private readonly types = new Map<string, TaskType<never>>();
  private first: string | undefined;

  register<P>(type: TaskType<P>): this {
    if (this.types.has(type.name)) throw new Error(`task type ${type.name} is already registered`);
    this.types.set(type.name, type as unknown as TaskType<never>);
    this.first ??= type.name;
    return this;
  }

  get(name: string): TaskType<unknown> | undefined {
    return this.types.get(name) as TaskType<unknown> | undefined;
  }

  get defaultType(): string {
    if (this.first === undefined) throw new Error('no task type registered');
    return this.first;
  }

  names(): string[] {
    return [...this.types.keys()];
  }
}
