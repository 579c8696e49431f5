/** Terminal statuses: the last event of a task; after it, streams close and keys expire. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** One event as clients see it: the stream entry id is the event id. */
export interface TaskEvent {
  id: string;
  task_id: string;
  status: string;
  progress: number;
  /** Append time, epoch milliseconds. */
  ts: number;
  attempt?: number;
  error?: string;
}

/** An event plus its serialized form, built once and shared by every watcher. */
export interface WireEvent {
  id: string;
  terminal: boolean;
  ts: number;
  json: string;
}

const NUMERIC = new Set(['progress', 'ts', 'attempt']);

/** Decodes a stream entry's flat field list into an event. */
export function decodeEvent(taskId: string, id: string, fields: string[]): TaskEvent {
  const event: Record<string, unknown> = { id, task_id: taskId };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    event[name] = NUMERIC.has(name) ? Number(value) : value;
  }
  return event as unknown as TaskEvent;
}

export function toWire(event: TaskEvent): WireEvent {
  return { id: event.id, terminal: TERMINAL_STATUSES.has(event.status), ts: event.ts, json: JSON.stringify(event) };
}
