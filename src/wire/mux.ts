import { CloseCode } from './close-codes.js';
import { TAG_RE, type FeedEntry } from './feed.js';

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
 * close-codes.ts), plus TOO_MANY_SUBSCRIPTIONS; each described in SUBSCRIPTION_CODE_MEANINGS.
 */
export const SubscriptionCode = {
  DONE: CloseCode.DONE,
  INTERNAL: CloseCode.INTERNAL,
  TRY_AGAIN: CloseCode.TRY_AGAIN,
  BAD_REQUEST: CloseCode.BAD_REQUEST,
  UNAUTHORIZED: CloseCode.UNAUTHORIZED,
  NOT_FOUND: CloseCode.NOT_FOUND,
  TASK_CORRUPTED: CloseCode.TASK_CORRUPTED,
  FEED_CURSOR_EXPIRED: CloseCode.FEED_CURSOR_EXPIRED,
  TOO_MANY_SUBSCRIPTIONS: 4429,
} as const;

/** What each subscription code means to a client (the OpenAPI document's words); a code added to SubscriptionCode must be described here. */
export const SUBSCRIPTION_CODE_MEANINGS = {
  DONE: 'The terminal event was sent (or the task had ended at the cursor).',
  INTERNAL: 'Unexpected server error: subscribe again with the cursor after a backoff.',
  TRY_AGAIN: 'Redis down, live feed broken, or the message rate exceeded: subscribe again with the cursor after a backoff.',
  BAD_REQUEST: 'Task id not a UUID, feed not `all` or `tag:<tag>`, lastEventId malformed or beyond the task\'s last event.',
  UNAUTHORIZED: 'Auth on: no token, or one that does not allow watching this task (or following this feed).',
  NOT_FOUND: 'Unknown task (never created, or expired).',
  TASK_CORRUPTED: 'The task\'s keys in Redis (or the feed\'s key) hold the wrong type; retrying cannot help.',
  FEED_CURSOR_EXPIRED: 'A feed subscription\'s cursor is older than the feed holds: reload the list, subscribe again from the id after `continue from` in the reason.',
  TOO_MANY_SUBSCRIPTIONS: 'The connection already holds WS_MAX_SUBSCRIPTIONS subscriptions (tasks and feeds together).',
} satisfies Record<keyof typeof SubscriptionCode, string>;

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
