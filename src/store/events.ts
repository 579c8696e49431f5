import { isTerminal, type EventType, type TaskEvent } from '../wire/events.js';

/** An event plus its serialized form, built once and shared by every watcher. */
export interface WireEvent {
  id: string;
  type: EventType;
  terminal: boolean;
  ts: number;
  json: string;
}

/**
 * Stream entry fields and how they decode. `text` and `json` are an output chunk (text, or a
 * record as JSON text); `result` is JSON text. An entry without `type` (written before event
 * types existed) is a stage event.
 */
const NUMERIC = new Set(['progress', 'ts', 'attempt']);

/** Decodes a stream entry's flat field list into an event. */
export function decodeEvent(taskId: string, id: string, fields: string[]): TaskEvent {
  const event: Record<string, unknown> = { id, task_id: taskId, type: 'stage' };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (NUMERIC.has(name)) event[name] = Number(value);
    else if (name === 'text') event.chunk = value;
    else if (name === 'json') event.chunk = parseJson(value);
    else if (name === 'result') event.result = parseJson(value);
    else event[name] = value;
  }
  return event as unknown as TaskEvent;
}

/** The workers write only valid JSON; a value altered by hand in Redis is served as its text. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function toWire(event: TaskEvent): WireEvent {
  return { id: event.id, type: event.type, terminal: isTerminal(event), ts: event.ts, json: JSON.stringify(event) };
}
