import type { Json, Priority } from './events.js';

/** A task's state as clients see it (GET /tasks/<id>, the start response, GET /tasks pages): the store builds it from the task's hash. */
export interface TaskState {
  task_id: string;
  type: string;
  status: string;
  progress: number;
  last_event_id: string;
  created_at: number;
  updated_at: number;
  params: unknown;
  error?: string;
  /** Attempt number of the current or last run (see MAX_ATTEMPTS); absent before any retry. */
  attempt?: number;
  /** When a cancel of a running task was accepted; its worker records CANCELLED next. */
  cancel_requested_at?: number;
  /** The message of the latest progress event of the current stage, if it had one. */
  message?: string;
  /** What the handler returned (COMPLETED only). */
  result?: Json;
  /** The tags the start carried; absent when it had none. */
  tags?: string[];
  /** Its start priority; absent on tasks started before priorities existed (they are normal). */
  priority?: Priority;
  /** A scheduled start's due time, epoch ms (SCHEDULED until then, PENDING after). */
  run_at?: number;
  /** The start's concurrency key: tasks of its type with the same key share a per-key limit. */
  concurrency_key?: string;
  /** PENDING over its type's concurrency limit (or its key's): it waits for a slot, oldest first. */
  waiting_for_slot?: 'concurrency' | 'concurrency_key';
}
