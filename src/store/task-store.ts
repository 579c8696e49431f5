import { Batcher } from './batcher.js';
import type { Redis } from './redis.js';
import { CANCEL_CHANNEL, COMMANDS_STREAM, SCHEDULED_SET, WORKER_GROUP, eventsKey, keyIn, taskKey, type Priority } from './keys.js';
import { batchPerPartition, layoutOf, type Layout, type Partition } from './layout.js';
import { TaskStarts, type StartOptions, type StartedTask } from './task-starts.js';
import { awaitReplicas, readOrMaster } from './replication.js';
import { decodeEvent, wireEvent, type WireEvent } from './events.js';
import type { Json, TaskEvent } from '../wire/events.js';
import type { TaskState } from '../wire/task-state.js';
import { MAX_EVENT_ID, compareEventIds } from '../wire/event-id.js';
import { readIndexPage, type IndexCursor } from './task-index.js';
import { TaskCorrupted, aboutTask } from './corrupted.js';

/** What a cancel did: ended the task before it started, asked its worker to stop, or nothing. */
export type CancelOutcome =
  | { outcome: 'cancelled'; eventId: string }
  | { outcome: 'requested' }
  | { outcome: 'finished'; status: string }
  | { outcome: 'not_found' };

/** What GET /tasks keeps: every given field must match; creation times are epoch ms. */
export interface TaskFilter {
  status?: string;
  type?: string;
  tag?: string;
  /** Inclusive. */
  createdFromMs?: number;
  /** Exclusive. */
  createdBeforeMs?: number;
}

/** Most index entries one list call examines (see TaskStore.list). */
export const LIST_SCAN_MAX = 1000;

/** Most replays (XRANGE of at most a page each) per pipeline. */
const REPLAY_BATCH = 1000;
/** Pipelines of replays on their way at once: reads need no ordering between batches. */
const REPLAY_IN_FLIGHT = 4;

/** Which events of a task a read returns (TaskStore.events). */
export interface EventRange {
  /** Strictly after this canonical id; from the first event when absent. */
  after?: string | undefined;
  /** Up to this id, included; to the last event when absent. */
  upTo?: string | undefined;
  /** At most this many. */
  count?: number | undefined;
}

interface RangeItem {
  partition: Partition;
  key: string;
  start: string;
  end: string;
  count: number | undefined;
}

export { IdempotencyConflict, type StartOptions, type StartedTask } from './task-starts.js';

/**
 * Reads and creates tasks. Stage writes belong to the worker (see worker/task-run.ts). Every
 * method about one task rejects with TaskCorrupted when that task's keys hold the wrong type.
 */
export class TaskStore {
  private readonly starts: TaskStarts;
  /**
   * Replays, likewise: the XRANGEs of one round trip go in one pipeline. Reads need no bound for
   * atomicity's sake, so a reconnect storm's replays go in a few large pipelines.
   */
  private readonly ranges: (item: RangeItem) => Promise<[string, string[]][]>;

  /**
   * `ttlS` is TASK_TTL_S: how long a task cancelled before it started keeps its keys, and how long
   * the recent-tasks index and the tag indexes keep an entry. `idempotencyTtlS` is
   * IDEMPOTENCY_TTL_S: how long an idempotency key lives, capped at `ttlS` so that the task it
   * names outlives it.
   */
  constructor(
    private readonly redis: Redis,
    private readonly options: { ttlS: number; idempotencyTtlS?: number } = { ttlS: 86400 },
  ) {
    this.starts = new TaskStarts(redis, options, (taskId) => this.read(taskId));
    this.ranges = batchPerPartition(layoutOf(redis), (i) => i.partition, () => new Batcher((items) => this.rangeAll(items), REPLAY_BATCH, REPLAY_IN_FLIGHT));
  }

  private get layout(): Layout {
    return layoutOf(this.redis);
  }

  private async rangeAll(items: RangeItem[]): Promise<([string, string[]][] | Error)[]> {
    // One read goes as a plain command: an ioredis pipeline object costs more than the read.
    // Replays are read on the masters, so a replica that is behind cannot answer one short: a
    // Cluster client reading from replicas sends there only the commands it finds (by their lower-
    // case name) among the read-only ones, and 'XRANGE' is not found (test/gateway/cluster.test.ts).
    if (items.length === 1) return [await this.redis.call('XRANGE', rangeArgs(items[0]!)).then((r) => r as [string, string[]][], (err: Error) => err)];
    const pipeline = this.redis.pipeline();
    for (const i of items) pipeline.call('XRANGE', rangeArgs(i));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, entries]) => err ?? (entries as [string, string[]][]));
  }

  /** A task's state hash and event stream, in its partition. */
  private keysOf(taskId: string): { state: string; events: string; partition: Partition } {
    const partition = this.layout.of(taskId);
    return { state: keyIn(partition, taskKey(taskId)), events: keyIn(partition, eventsKey(taskId)), partition };
  }

  /**
   * Starts a task (start-tasks.lua, see TaskStarts): PENDING with its command queued, or SCHEDULED
   * until `options.runAt`; or, when `options.idempotency` names a key held with the same
   * fingerprint, answers the task that key started, as it is now (`replayed`). Rejects with
   * IdempotencyConflict when the key is held for another request.
   */
  start(type: string, params: unknown, now = Date.now(), options: StartOptions = {}): Promise<StartedTask & { replayed: boolean }> {
    return this.starts.start(type, params, now, options);
  }

  /** Atomic cancel (cancel-task.lua): a SCHEDULED or PENDING task never starts, a running one is told to stop. */
  async cancel(taskId: string, now = Date.now()): Promise<CancelOutcome> {
    const { state, events, partition } = this.keysOf(taskId);
    const [result, detail] = await aboutTask(taskId, this.redis.cancelTask(
      state, events, keyIn(partition, COMMANDS_STREAM), keyIn(partition, SCHEDULED_SET),
      taskId, now, this.options.ttlS, WORKER_GROUP, CANCEL_CHANNEL,
    ));
    await awaitReplicas(this.redis, partition);
    if (result === 'CANCELLED') return { outcome: 'cancelled', eventId: detail ?? '' };
    if (result === 'REQUESTED') return { outcome: 'requested' };
    if (result === 'TERMINAL') return { outcome: 'finished', status: detail ?? '' };
    return { outcome: 'not_found' };
  }

  async get(taskId: string): Promise<TaskState | null> {
    return (await this.read(taskId))?.state ?? null;
  }

  /**
   * The state and the start command's id, or null for an unknown task. A replica's "unknown" is
   * asked again of the master (readOrMaster): that replica may be behind.
   */
  private async read(taskId: string): Promise<StartedTask | null> {
    const { state, partition } = this.keysOf(taskId);
    const h = await readOrMaster(this.redis, partition, (redis) => aboutTask(taskId, redis.hgetall(state), state), (found) => !found.status);
    if (!h.status) return null;
    return { commandId: h.command_id ?? '', state: stateOf(taskId, h) };
  }

  /**
   * Recent tasks, newest first, that match `filter`, after the cursor `after`. Tasks that expired
   * since they were indexed are left out, and so are corrupted ones (each answers TASK_CORRUPTED
   * on its own routes). Examines at most LIST_SCAN_MAX index entries per call: a page holds
   * fewer than `limit` tasks (none, even) when filters drop entries, and `next` is null only once
   * the index holds no entry in range after the page.
   */
  async list(filter: TaskFilter, limit: number, after: IndexCursor | null): Promise<{ tasks: TaskState[]; next: IndexCursor | null }> {
    const range = { tag: filter.tag, fromMs: filter.createdFromMs, beforeMs: filter.createdBeforeMs };
    const filtering = filter.status !== undefined || filter.type !== undefined;
    const tasks: TaskState[] = [];
    let cursor = after;
    let scanned = 0;
    for (;;) {
      const wanted = filtering ? Math.max(2 * (limit - tasks.length), 50) : limit - tasks.length;
      const page = await readIndexPage(this.redis, Math.min(wanted, LIST_SCAN_MAX - scanned), cursor, range);
      const states = await Promise.all(page.entries.map((e) => this.get(e.taskId).catch(skipCorrupted)));
      for (const [i, state] of states.entries()) {
        cursor = page.entries[i]!;
        scanned++;
        if (state && matches(state, filter)) tasks.push(state);
        if (tasks.length === limit) return { tasks, next: i < states.length - 1 || page.next ? cursor : null };
      }
      if (!page.next) return { tasks, next: null };
      if (scanned >= LIST_SCAN_MAX) return { tasks, next: cursor };
    }
  }

  /**
   * Just what a watcher needs to start: status and last event id, or null for an unknown task. A
   * replica's answer that the task is unknown, or that its last event is before `atLeast`, is
   * asked again of the master (readOrMaster): that replica may be behind.
   */
  async head(taskId: string, atLeast?: string): Promise<{ status: string; lastEventId: string } | null> {
    const { state, partition } = this.keysOf(taskId);
    const [status, lastEventId] = await readOrMaster(
      this.redis,
      partition,
      (redis) => aboutTask(taskId, redis.hmget(state, 'status', 'last_event_id'), state),
      ([s, last]) => !s || !last || (atLeast !== undefined && compareEventIds(atLeast, last) > 0),
    );
    if (!status || !lastEventId) return null;
    return { status, lastEventId };
  }

  /** The task's events in `range`, oldest first. */
  async events(taskId: string, range: EventRange = {}): Promise<TaskEvent[]> {
    return (await this.range(taskId, range)).map(([id, fields]) => decodeEvent(taskId, id, fields));
  }

  /** As events(), in the wire form a watcher is sent (see wireEvent). */
  async wireEvents(taskId: string, range: EventRange = {}): Promise<WireEvent[]> {
    return (await this.range(taskId, range)).map(([id, fields]) => wireEvent(taskId, id, fields));
  }

  private range(taskId: string, { after, upTo, count }: EventRange): Promise<[string, string[]][]> {
    if (after === MAX_EVENT_ID) return Promise.resolve([]);
    const start = after === undefined ? '-' : `(${after}`;
    const { events, partition } = this.keysOf(taskId);
    return aboutTask(taskId, this.ranges({ partition, key: events, start, end: upTo ?? '+', count }), events);
  }
}


/** XRANGE's arguments for one replay read. */
function rangeArgs(i: RangeItem): (string | number)[] {
  return i.count === undefined ? [i.key, i.start, i.end] : [i.key, i.start, i.end, 'COUNT', i.count];
}

/** A task's state from its hash (HGETALL reply with a status). */
function stateOf(taskId: string, h: Record<string, string>): TaskState {
  return {
    task_id: taskId,
    type: h.type ?? '',
    status: h.status ?? '',
    progress: Number(h.progress ?? 0),
    last_event_id: h.last_event_id ?? '',
    created_at: Number(h.created_at ?? 0),
    updated_at: Number(h.updated_at ?? 0),
    params: parseJson(h.params),
    ...(h.error === undefined ? {} : { error: h.error }),
    ...(h.attempt === undefined ? {} : { attempt: Number(h.attempt) }),
    ...(h.cancel_requested === undefined ? {} : { cancel_requested_at: Number(h.cancel_requested) }),
    ...(h.message === undefined ? {} : { message: h.message }),
    ...(h.result === undefined ? {} : { result: parseJson(h.result) as Json }),
    ...(h.tags === undefined ? {} : { tags: parseJson(h.tags) as string[] }),
    ...(h.priority === undefined ? {} : { priority: h.priority as Priority }),
    ...(h.run_at === undefined ? {} : { run_at: Number(h.run_at) }),
    ...(h.concurrency_key === undefined ? {} : { concurrency_key: h.concurrency_key }),
    ...(h.waiting_for_slot === undefined ? {} : { waiting_for_slot: h.waiting_for_slot as 'concurrency' | 'concurrency_key' }),
  };
}

function matches(state: TaskState, filter: TaskFilter): boolean {
  return (filter.status === undefined || state.status === filter.status) && (filter.type === undefined || state.type === filter.type);
}

function skipCorrupted(err: unknown): null {
  if (err instanceof TaskCorrupted) return null;
  throw err;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return {};
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
