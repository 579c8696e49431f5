import { parseFrame } from './frames.js';
import { parseTaskEvent, type TaskEvent } from './events.js';
import { parseFeedEntry } from './feed.js';
import type { MuxClientMessage, MuxControlMessage, MuxFeedEntry } from './mux.js';

/** The `/ws` protocol's messages (src/wire/mux.ts) to and from their JSON text. */

/** A client message as sent: JSON text. */
export function encodeClientMessage(message: MuxClientMessage): string {
  return JSON.stringify(message);
}

const SUBSCRIBE_FIELDS = new Set(['type', 'lastEventId', 'token']);
const UNSUBSCRIBE_FIELDS = new Set(['type']);

/** A client message, or the reason it is not one (the `error` the server answers). */
export function parseClientMessage(text: string): MuxClientMessage | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'a message must be JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'a message must be a JSON object' };
  const m = value as Record<string, unknown>;
  if (m.type !== 'subscribe' && m.type !== 'unsubscribe') {
    return { error: 'type must be "subscribe" or "unsubscribe"' };
  }
  if ('task' in m && 'feed' in m) return { error: `${m.type} names either "task" or "feed", not both` };
  const key = 'feed' in m ? 'feed' : 'task';
  const subject = m[key];
  if (typeof subject !== 'string') return { error: `${m.type} needs "task", a task id, or "feed", a feed name` };
  const allowed = m.type === 'subscribe' ? SUBSCRIBE_FIELDS : UNSUBSCRIBE_FIELDS;
  const unknown = Object.keys(m).find((k) => k !== key && !allowed.has(k));
  if (unknown !== undefined) return { error: `unknown field ${JSON.stringify(unknown.slice(0, 40))} in ${m.type}` };
  const about = key === 'feed' ? { feed: subject } : { task: subject };
  if (m.type === 'unsubscribe') return { type: 'unsubscribe', ...about };
  if (m.lastEventId !== undefined && typeof m.lastEventId !== 'string') return { error: 'lastEventId must be a string' };
  if (m.token !== undefined && typeof m.token !== 'string') return { error: 'token must be a string' };
  return {
    type: 'subscribe',
    ...about,
    ...(m.lastEventId === undefined ? {} : { lastEventId: m.lastEventId }),
    ...(m.token === undefined ? {} : { token: m.token }),
  };
}

export type ServerMessage = { event: TaskEvent } | { entry: MuxFeedEntry } | { control: MuxControlMessage };

/**
 * The server messages of one text frame, in order (a batch's, see frames.ts, or the one message of
 * a frame without batches); null when the frame or any message in it is malformed. A message is an
 * event (a TaskEvent, as `/ws/task` sends it: it has `id` and `task_id`), a feed entry (it also has
 * `feed`) or a control message.
 */
export function parseServerFrame(data: unknown): ServerMessage[] | null {
  return parseFrame(data, classify);
}

/** The server message `m` is, or null when it is none. */
function classify(m: Record<string, unknown>): ServerMessage | null {
  if (typeof m.id === 'string' && typeof m.task_id === 'string' && 'feed' in m) {
    const entry = typeof m.feed === 'string' ? parseFeedEntry(m) : null;
    return entry ? { entry: entry as MuxFeedEntry } : null;
  }
  if (typeof m.id === 'string' && typeof m.task_id === 'string') {
    const event = parseTaskEvent(m);
    return event ? { event } : null;
  }
  const named = typeof m.task === 'string' || typeof m.feed === 'string';
  switch (m.type) {
    case 'subscribed':
      if (m.id !== undefined && typeof m.id !== 'string') return null;
      return named ? { control: m as unknown as MuxControlMessage } : null;
    case 'unsubscribed':
      return named ? { control: m as unknown as MuxControlMessage } : null;
    case 'ended':
      return named && typeof m.code === 'number' ? { control: m as unknown as MuxControlMessage } : null;
    case 'error':
      return typeof m.code === 'number' ? { control: m as unknown as MuxControlMessage } : null;
    default:
      return null;
  }
}
