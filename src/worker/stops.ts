/** Reasons a run stops early. They travel as abort reasons and as errors out of the handler API. */
export class CancelRequested extends Error {}
/** This run no longer owns the task: a newer run holds the lease (fencing). */
export class LeaseLost extends Error {}
/** The task ended or vanished while this run worked on it. */
export class TaskEnded extends Error {}
/** The task's keys vanished while this run worked on it (deleted, or lost with Redis's data). */
export class TaskGone extends TaskEnded {}
/**
 * The task's log lost events this run had recorded (Redis came back with older data): the run
 * records nothing more, and the task is taken over from its last recorded stage.
 */
export class LogRolledBack extends Error {}
/** The worker is shutting down: the command stays pending for another worker. */
export class ShuttingDown extends Error {}

export const isStop = (err: unknown): err is Error =>
  err instanceof CancelRequested || err instanceof LeaseLost || err instanceof TaskEnded || err instanceof LogRolledBack ||
  err instanceof ShuttingDown;

/** Codes of the errors the handler API throws when it is misused. */
export type UsageCode =
  | 'INVALID_STATUS'
  | 'INVALID_WORK'
  | 'INVALID_SLEEP'
  | 'INVALID_PROGRESS'
  | 'INVALID_MESSAGE'
  | 'INVALID_CHUNK'
  | 'CHUNK_TOO_LARGE'
  | 'STAGE_OVERLAP'
  | 'RUN_ENDED';

/** Thrown to a handler that misuses its context; nothing of the call is recorded. */
export class TaskUsageError extends Error {
  constructor(
    readonly code: UsageCode,
    message: string,
  ) {
    super(message);
    this.name = 'TaskUsageError';
  }
}
