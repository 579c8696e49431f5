import { AppError } from './errors.js';
import { parseEventId } from './wire/event-id.js';
import { parseTaskId } from './wire/task-id.js';

/** The canonical task id of client input, or INVALID_TASK_ID. */
export function checkTaskId(raw: string): string {
  const id = parseTaskId(raw);
  if (id === null) throw new AppError('INVALID_TASK_ID', 'task id must be a UUID');
  return id;
}

/** The canonical form of a client's event id, or INVALID_EVENT_ID; `name` is what the client called it. */
export function checkEventId(raw: string, name: string): string {
  const id = parseEventId(raw);
  if (id === null) throw new AppError('INVALID_EVENT_ID', `${name} must be <ms>-<seq> or <ms> (unsigned 64-bit)`);
  return id;
}
