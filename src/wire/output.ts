import { RETRYING, type Json, type TaskEvent } from './events.js';

/**
 * The exactly-once rule of a task's output, applied to its events in log order. The server
 * (GET /tasks/<id>/output) and the clients use this one implementation.
 *
 * A stage is the unit of resumption: a run that stops half way through a stage (crash, stall,
 * shutdown, a throw that is retried) has recorded some of that stage's output, and the run after
 * it does the stage again from its start. So:
 * - an `output` chunk is **tentative** when it is recorded;
 * - a `stage` event commits every tentative chunk (a recorded stage, and also the terminal
 *   COMPLETED, FAILED or CANCELLED), except RETRYING;
 * - a RETRYING `stage` event or a `restart` event **discards** every tentative chunk: they belong
 *   to an attempt that did not count, and the stage is being done again.
 * The output of a task is its committed chunks, followed while it runs by its tentative ones.
 */
export type OutputChange =
  | { kind: 'append'; chunk: Json }
  /** These tentative chunks became final. */
  | { kind: 'commit'; chunks: Json[] }
  /** These tentative chunks (the last ones) are void. */
  | { kind: 'discard'; chunks: Json[] };

/** The text form of a chunk: text as it is, a record as one line of JSON. */
export function chunkText(chunk: Json): string {
  return typeof chunk === 'string' ? chunk : `${JSON.stringify(chunk)}\n`;
}

/** The rule itself: holds only the tentative chunks, and says what each event changes. */
export class OutputRule {
  private pending: Json[] = [];

  /** Applies the next event of the log; returns what changed, or null when nothing did. */
  apply(event: Pick<TaskEvent, 'type' | 'status' | 'chunk'>): OutputChange | null {
    if (event.type === 'output') {
      // A record may be null: only a chunk that is absent counts as empty text.
      const chunk = event.chunk === undefined ? '' : event.chunk;
      this.pending.push(chunk);
      return { kind: 'append', chunk };
    }
    if (this.pending.length === 0 || (event.type !== 'stage' && event.type !== 'restart')) return null;
    const chunks = this.pending;
    this.pending = [];
    return event.type === 'restart' || event.status === RETRYING ? { kind: 'discard', chunks } : { kind: 'commit', chunks };
  }

  /** Chunks of the stage in progress, which a restart may still void. */
  get tentative(): readonly Json[] {
    return this.pending;
  }
}

/** A task's output text, rebuilt from its events by the rule above, with the chunks a restart may still void. */
export class TaskOutput {
  private readonly rule = new OutputRule();
  private finalText = '';
  private pendingText = '';

  /** Applies the next event of the log; returns what changed, or null when nothing did. */
  apply(event: Pick<TaskEvent, 'type' | 'status' | 'chunk'>): OutputChange | null {
    const change = this.rule.apply(event);
    if (change?.kind === 'append') {
      this.pendingText += chunkText(change.chunk);
    } else if (change?.kind === 'commit') {
      this.finalText += this.pendingText;
      this.pendingText = '';
    } else if (change?.kind === 'discard') {
      this.pendingText = '';
    }
    return change;
  }

  /** Chunks of the stage in progress, which a restart may still void. */
  get tentative(): readonly Json[] {
    return this.rule.tentative;
  }

  /** The output text so far: every chunk's text form, committed then tentative. */
  get text(): string {
    return this.finalText + this.pendingText;
  }
}
