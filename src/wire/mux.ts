import { parseFrame } from './frames.js';
import { CloseCode } from './close-codes.js';
import { parseTaskEvent, type TaskEvent } from './events.js';
import { TAG_RE, parseFeedEntry, type FeedEntry } from './feed.js';

/**
 * The multiplexed WebSocket `/ws`: one connection, many subscriptions, each with its own cursor.
 * Server, clients, README and OpenAPI share these shapes; nothing here may import server code.
 *
 * A subscription is named by what it follows: `task` (a task id) or `feed` (a feed name, see
 * feedName); every message about a subscription carries that key, and a task and a feed never share
 * one.
 *
 * Per task (and per feed), the server's control messages follow the client's requests in order:
 * - each `subscribe` is answered by exactly one `subscribed` (events follow, then possibly one
 *   `ended`) or one `ended` (refused: nothing else follows);
 * - each `unsubscribe` is answered by exactly one `unsubscribed`, after which nothing more of that
 *   subscription is sent (the task may be subscribed again);
 * - a client that sends at most one subscribe per task until that subscription has ended (or been
 *   answered `unsubscribed`) can therefore match every message to its request.
 */
export const MUX_PATH = '/ws';

/** What a subscription follows, as every message about it names it. */
export type MuxSubject = { task: string } | { feed: string };

/** A subscription's key on one connection: a task and a feed never share one. */
export function subjectKey(subject: MuxSubject): string {
  return 'task' in subject ? `task ${subject.task}` : `feed ${subject.feed}`;
}

/** Subscribe to one task's events after `lastEventId` (none or `0-0`: all), then live ones. */
export interface SubscribeMessage {
  type: 'subscribe';
  task: string;
  lastEventId?: string;
  /**
   * With auth on: a watch token of this task or an API token (else the connection's own token,
   * `?token=` or `Authorization`, counts). Never logged.
   */
  token?: string;
}

/**
 * Subscribe to a feed of task changes (`/ws/feed`'s entries): every entry after `lastEventId`,
 * then live ones; without lastEventId, live from now (the `subscribed` names the cursor in `id`).
 */
export interface FeedSubscribeMessage {
  type: 'subscribe';
  /** `all` (every task) or `tag:<tag>` (tasks with that tag), see feedName. */
  feed: string;
  lastEventId?: string;
  /**
   * With auth on: an API token, or a feed token of this feed (a tag token for `tag:<tag>`; else
   * the connection's own token counts). Never logged.
   */
  token?: string;
}

/** Stop one subscription; answered with `unsubscribed` even when there was none. */
export interface UnsubscribeMessage {
  type: 'unsubscribe';
  task: string;
}

/** Stop a feed subscription; answered with `unsubscribed` even when there was none. */
export interface FeedUnsubscribeMessage {
  type: 'unsubscribe';
  feed: string;
}

export type MuxClientMessage = SubscribeMessage | UnsubscribeMessage | FeedSubscribeMessage | FeedUnsubscribeMessage;

/** The subscription is open: its events follow (replay from the cursor, then live). */
export interface SubscribedMessage {
  type: 'subscribed';
  task: string;
}

/**
 * The feed subscription is open: its entries follow. `id` (only when it was subscribed without
 * lastEventId) is the cursor it goes on from, as `/ws/feed`'s `{ "id" }` mark: subscribing again
 * with it as lastEventId misses nothing.
 */
export interface FeedSubscribedMessage {
  type: 'subscribed';
  feed: string;
  id?: string;
}

/**
 * An entry of a feed subscription: a FeedEntry (as `/ws/feed` sends it) with the `feed` it
 * belongs to. Its `id` is that subscription's cursor.
 */
export interface MuxFeedEntry extends FeedEntry {
  feed: string;
}

/**
 * The server ended or refused one subscription; the connection stays open. `code` is a
 * SubscriptionCode, `reason` says why.
 */
export interface EndedMessage {
  type: 'ended';
  task: string;
  code: number;
  reason: string;
}

/**
 * The server ended or refused a feed subscription; the connection stays open. With code 4410
 * (FEED_CURSOR_EXPIRED) the reason ends with `continue from <id>` (continueFromReason): entries
 * were missed; reload the list and subscribe again with that id.
 */
export interface FeedEndedMessage {
  type: 'ended';
  feed: string;
  code: number;
  reason: string;
}

/** The answer to an `unsubscribe`: nothing more of that subscription follows. */
export interface UnsubscribedMessage {
  type: 'unsubscribed';
  task: string;
}

/** The answer to a feed `unsubscribe`. */
export interface FeedUnsubscribedMessage {
  type: 'unsubscribed';
  feed: string;
}

/** A client message the server could not act on (nothing changed); `code` is 4400. */
export interface ErrorMessage {
  type: 'error';
  code: number;
  reason: string;
}

export type MuxControlMessage =
  | SubscribedMessage | EndedMessage | UnsubscribedMessage
  | FeedSubscribedMessage | FeedEndedMessage | FeedUnsubscribedMessage
  | ErrorMessage;

/** The all-tasks feed's name. */
export const ALL_FEED = 'all';

/** A feed's name in mux messages: `all`, or `tag:<tag>` for a tag's feed. */
export function feedName(tag: string | undefined): string {
  return tag === undefined ? ALL_FEED : `tag:${tag}`;
}

/** A feed name: `all` or `tag:<tag>` (TAG_RE). */
export const FEED_NAME_RE = new RegExp(`^(${ALL_FEED}|tag:${TAG_RE.source.slice(1, -1)})$`);

/** The tag a feed name follows (undefined: all tasks), or null when it names no feed. */
export function feedNameTag(name: string): { tag: string | undefined } | null {
  if (!FEED_NAME_RE.test(name)) return null;
  return { tag: name === ALL_FEED ? undefined : name.slice(4) };
}

/**
 * The codes of `ended`, the close codes of `/ws/task/<id>` for the same cases (see
 * close-codes.ts), plus TOO_MANY_SUBSCRIPTIONS.
 */
export const SubscriptionCode = {
  /** The terminal event was sent (or the task had ended at the cursor). */
  DONE: CloseCode.DONE,
  /** Unexpected server error: subscribe again with the cursor after a backoff. */
  INTERNAL: CloseCode.INTERNAL,
  /**
   * Temporarily unable to serve (Redis down, the live feed broke, or the message rate was
   * exceeded): subscribe again with the cursor after a backoff.
   */
  TRY_AGAIN: CloseCode.TRY_AGAIN,
  /** Task id not a UUID, feed name not `all` or `tag:<tag>`, lastEventId malformed or beyond the task's last event. */
  BAD_REQUEST: CloseCode.BAD_REQUEST,
  /** Auth on: no token, or one that does not allow watching this task (or following this feed). */
  UNAUTHORIZED: CloseCode.UNAUTHORIZED,
  /** Unknown task (never created, or expired). */
  NOT_FOUND: CloseCode.NOT_FOUND,
  /** The task's keys in Redis hold the wrong type. */
  TASK_CORRUPTED: CloseCode.TASK_CORRUPTED,
  /** A feed subscription's cursor is older than the feed holds: continue from the id in the reason. */
  FEED_CURSOR_EXPIRED: CloseCode.FEED_CURSOR_EXPIRED,
  /** The connection already holds WS_MAX_SUBSCRIPTIONS subscriptions (tasks and feeds together). */
  TOO_MANY_SUBSCRIPTIONS: 4429,
} as const;

/**
 * Limits of one connection. A message larger than MUX_MAX_MESSAGE_BYTES closes it with 1009 (the
 * ws library's answer). Each `error` and each subscribe refused for the message rate is a strike;
 * MUX_MAX_STRIKES strikes within MUX_STRIKE_WINDOW_MS close it with 4400. The number of
 * subscriptions (WS_MAX_SUBSCRIPTIONS) and the message rate (WS_MESSAGE_BURST,
 * WS_MESSAGES_PER_S) are gateway settings.
 */
export const MUX_MAX_MESSAGE_BYTES = 4096;
export const MUX_MAX_STRIKES = 10;
export const MUX_STRIKE_WINDOW_MS = 60_000;

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
