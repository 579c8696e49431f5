import { parseEventId } from './event-id.js';

/**
 * The events of a task as clients see them (WebSocket frames, SSE data, GET /tasks/<id>/events).
 * Server, docs and clients import these; nothing here may import server code.
 */

/** Terminal statuses: the last event of a task; after it, streams close and keys expire. */
export type TerminalStatus = 'COMPLETED' | 'FAILED' | 'CANCELLED';
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set<TerminalStatus>(['COMPLETED', 'FAILED', 'CANCELLED']);

/** The status of the event that ends a failed attempt when another follows (it carries `attempt` and `error`). */
export const RETRYING = 'RETRYING';

/**
 * Statuses the system records before a task runs: SCHEDULED (a start with `run_at` or `delay_ms`,
 * until it is due) and PENDING (its command is queued). Handlers may not record them.
 */
export const WAITING_STATUSES: ReadonlySet<string> = new Set(['SCHEDULED', 'PENDING']);

/** The shape of every status (STATUS_RULE). */
export const STATUS_RE = /^[A-Za-z][A-Za-z0-9_ -]{0,63}$/;
export const STATUS_RULE = '1 to 64 letters, digits, _, - or spaces, starting with a letter';

/** Start priorities, highest first (POST /tasks `priority`; default normal). */
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/**
 * What an event records:
 * - `stage`: a status change: SCHEDULED, PENDING, each recorded stage, RETRYING, and the terminal one;
 * - `progress`: a progress update (and optional message) inside the current stage;
 * - `output`: a chunk of the task's output;
 * - `restart`: a new run took the task over from one that stopped (crash, stall, shutdown): the
 *   stages recorded so far stand, the output since the last stage event is void (see output.ts).
 */
export const EVENT_TYPES = ['stage', 'progress', 'output', 'restart'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** A JSON value: what an output record and a result may be. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * One event: the stream entry id is the event id. Every event carries the task's status and
 * progress as of that event, so a client that reads only those two keeps working.
 */
export interface TaskEvent {
  id: string;
  task_id: string;
  type: EventType;
  status: string;
  progress: number;
  /** Append time, epoch milliseconds. */
  ts: number;
  /** Attempt number (RETRYING: the next one; FAILED: the last one). */
  attempt?: number;
  /** Why the task failed or an attempt was retried (FAILED, RETRYING). */
  error?: string;
  /** A progress event's message. */
  message?: string;
  /** An output event's chunk: a string is text, any other JSON value is a record. */
  chunk?: Json;
  /** The COMPLETED event's result: what the handler returned (absent when it returned nothing). */
  result?: Json;
  /** The SCHEDULED event: when the task is due, epoch milliseconds. */
  run_at?: number;
}

/** True for the event that ends a task's log. */
export function isTerminal(event: Pick<TaskEvent, 'type' | 'status'>): boolean {
  return event.type === 'stage' && TERMINAL_STATUSES.has(event.status);
}

const EVENT_TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);

/**
 * A received message as a TaskEvent, or null when it is not one: it needs a canonical event id, a
 * task id, a status and a known type (absent: a stage event). The message object becomes the event.
 */
export function parseTaskEvent(message: Record<string, unknown>): TaskEvent | null {
  const { id, task_id: taskId, status } = message;
  if (typeof id !== 'string' || parseEventId(id) !== id || typeof taskId !== 'string' || typeof status !== 'string') return null;
  message.type ??= 'stage';
  return EVENT_TYPE_SET.has(message.type as string) ? (message as unknown as TaskEvent) : null;
}
