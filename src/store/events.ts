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
const NUMERIC = new Set(['progress', 'ts', 'attempt', 'run_at']);

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

/** JSON text as the workers wrote it; a value altered by hand in Redis is served as its text. */
function rawJson(text: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}

/**
 * The wire form of a stream entry, with the JSON written straight from its fields: the same text
 * as JSON.stringify(decodeEvent(...)), without building the event (the hub and replays serialize
 * every event they serve, output bursts included).
 */
export function wireEvent(taskId: string, id: string, fields: string[]): WireEvent {
  let type = 'stage';
  let status = '';
  let ts = 0;
  let body = '';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    let json: string;
    if (name === 'type') {
      type = value;
      continue;
    }
    if (NUMERIC.has(name)) {
      json = JSON.stringify(Number(value));
      if (name === 'ts') ts = Number(value);
    } else if (name === 'text') {
      body += `,"chunk":${JSON.stringify(value)}`;
      continue;
    } else if (name === 'json' || name === 'result') {
      json = rawJson(value);
      if (name === 'json') {
        body += `,"chunk":${json}`;
        continue;
      }
    } else {
      json = JSON.stringify(value);
      if (name === 'status') status = value;
    }
    body += `,${JSON.stringify(name)}:${json}`;
  }
  const json = `{"id":${JSON.stringify(id)},"task_id":${JSON.stringify(taskId)},"type":${JSON.stringify(type)}${body}}`;
  return { id, type: type as EventType, terminal: isTerminal({ type: type as EventType, status }), ts, json };
}
