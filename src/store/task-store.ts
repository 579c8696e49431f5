import { v4 as uuidv4 } from 'uuid';
import { Batcher } from './batcher.js';
import { itemReplies, type Redis } from './redis.js';
import { CANCEL_CHANNEL, COMMANDS_STREAM, SCHEDULED_SET, TASKS_INDEX, WORKER_GROUP, commandsStream, eventsKey, taskKey, type Priority } from './keys.js';
import { decodeEvent, wireEvent, type WireEvent } from './events.js';
import type { Json, TaskEvent } from '../wire/events.js';
import { MAX_EVENT_ID } from '../wire/event-id.js';
import { readIndexPage, type IndexCursor } from './task-index.js';
import { TaskCorrupted, aboutTask } from './corrupted.js';

/** The state hash as clients see it. */
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
  /** Its start priority; absent on tasks started before priorities existed (they are normal). */
  priority?: Priority;
  /** A scheduled start's due time, epoch ms (SCHEDULED until then, PENDING after). */
  run_at?: number;
  /** The start's concurrency key: tasks of its type with the same key share a per-key limit. */
  concurrency_key?: string;
  /** PENDING over its type's concurrency limit (or its key's): it waits for a slot, oldest first. */
  waiting_for_slot?: 'concurrency' | 'concurrency_key';
}

/** How a task starts, beyond its type and params. */
export interface StartOptions {
  /** Default normal. */
  priority?: Priority | undefined;
  /** Due time, epoch ms: the task is SCHEDULED until then. Absent: it is PENDING at once. */
  runAt?: number | undefined;
  /** Tasks of one type with the same key share its per-key concurrency limit. */
  concurrencyKey?: string | undefined;
}

export interface StartedTask {
  state: TaskState;
  commandId: string;
}

/** What a cancel did: ended the task before it started, asked its worker to stop, or nothing. */
export type CancelOutcome =
  | { outcome: 'cancelled'; eventId: string }
  | { outcome: 'requested' }
  | { outcome: 'finished'; status: string }
  | { outcome: 'not_found' };

/** Most replays (XRANGE of at most a page each) per pipeline. */
const REPLAY_BATCH = 1000;
/** Pipelines of replays on their way at once: reads need no ordering between batches. */
const REPLAY_IN_FLIGHT = 4;

interface RangeItem {
  key: string;
  start: string;
  end: string;
  count: number | undefined;
}

interface StartItem {
  taskId: string;
  type: string;
  paramsJson: string;
  now: number;
  priority: Priority;
  runAt: number | undefined;
  concurrencyKey: string | undefined;
}

/**
 * Reads and creates tasks. Stage writes belong to the worker (see worker/task-run.ts). Every
 * method about one task rejects with TaskCorrupted when that task's keys hold the wrong type.
 */
export class TaskStore {
  /** Starts go to Redis as a group commit (start-tasks.lua): one script call per round trip. */
  private readonly starts: Batcher<StartItem, ['OK', string, string]>;
  /**
   * Replays, likewise: the XRANGEs of one round trip go in one pipeline. Reads need no bound for
   * atomicity's sake, so a reconnect storm's replays go in a few large pipelines.
   */
  private readonly ranges: Batcher<RangeItem, [string, string[]][]>;

  /**
   * `ttlS` is TASK_TTL_S: how long a task cancelled before it started keeps its keys, and how long
   * the recent-tasks index keeps an entry.
   */
  constructor(
    private readonly redis: Redis,
    private readonly options: { ttlS: number } = { ttlS: 86400 },
  ) {
    this.starts = new Batcher(async (items) => {
      const keys = [COMMANDS_STREAM, TASKS_INDEX, ...items.flatMap((i) => [taskKey(i.taskId), eventsKey(i.taskId)])];
      const argv = [this.options.ttlS, ...items.flatMap((i) => [
        i.taskId, i.type, i.paramsJson, i.now, i.priority, commandsStream(i.priority), i.runAt ?? '', SCHEDULED_SET,
        i.concurrencyKey ?? '',
      ])];
      return itemReplies(await this.redis.startTasks(keys.length, ...keys, ...argv), items.map((i) => i.taskId));
    });
    this.ranges = new Batcher(async (items) => {
      const pipeline = this.redis.pipeline();
      for (const i of items) {
        if (i.count === undefined) pipeline.xrange(i.key, i.start, i.end);
        else pipeline.xrange(i.key, i.start, i.end, 'COUNT', i.count);
      }
      const replies = (await pipeline.exec()) ?? [];
      return replies.map(([err, entries]) => err ?? (entries as [string, string[]][]));
    }, REPLAY_BATCH, REPLAY_IN_FLIGHT);
  }

  /** Creates a task (start-tasks.lua): PENDING with its command queued, or SCHEDULED until `runAt`. */
  async start(type: string, params: unknown, now = Date.now(), options: StartOptions = {}): Promise<StartedTask> {
    const taskId = uuidv4();
    const { runAt, concurrencyKey } = options;
    const priority = options.priority ?? 'normal';
    const item = { taskId, type, paramsJson: JSON.stringify(params), now, priority, runAt, concurrencyKey };
    const [, eventId, commandId] = await this.starts.add(item);
    return {
      commandId,
      state: {
        task_id: taskId,
        type,
        status: runAt === undefined ? 'PENDING' : 'SCHEDULED',
        progress: 0,
        last_event_id: eventId,
        created_at: now,
        updated_at: now,
        params,
        priority,
        ...(runAt === undefined ? {} : { run_at: runAt }),
        ...(concurrencyKey === undefined ? {} : { concurrency_key: concurrencyKey }),
      },
    };
  }

  /** Atomic cancel (cancel-task.lua): a SCHEDULED or PENDING task never starts, a running one is told to stop. */
  async cancel(taskId: string, now = Date.now()): Promise<CancelOutcome> {
    const [result, detail] = await aboutTask(taskId, this.redis.cancelTask(
      taskKey(taskId), eventsKey(taskId), COMMANDS_STREAM, SCHEDULED_SET,
      taskId, now, this.options.ttlS, WORKER_GROUP, CANCEL_CHANNEL,
    ));
    if (result === 'CANCELLED') return { outcome: 'cancelled', eventId: detail ?? '' };
    if (result === 'REQUESTED') return { outcome: 'requested' };
    if (result === 'TERMINAL') return { outcome: 'finished', status: detail ?? '' };
    return { outcome: 'not_found' };
  }

  async get(taskId: string): Promise<TaskState | null> {
    const h = await aboutTask(taskId, this.redis.hgetall(taskKey(taskId)), taskKey(taskId));
    if (!h.status) return null;
    return {
      task_id: taskId,
      type: h.type ?? '',
      status: h.status,
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
      ...(h.priority === undefined ? {} : { priority: h.priority as Priority }),
      ...(h.run_at === undefined ? {} : { run_at: Number(h.run_at) }),
      ...(h.concurrency_key === undefined ? {} : { concurrency_key: h.concurrency_key }),
      ...(h.waiting_for_slot === undefined ? {} : { waiting_for_slot: h.waiting_for_slot as 'concurrency' | 'concurrency_key' }),
    };
  }

  /**
   * Recent tasks, newest first; tasks that expired since they were indexed are left out, and so
   * are corrupted ones (each answers TASK_CORRUPTED on its own routes).
   */
  async recent(limit: number, after: IndexCursor | null): Promise<{ tasks: TaskState[]; next: IndexCursor | null }> {
    const page = await readIndexPage(this.redis, limit, after);
    const states = await Promise.all(page.taskIds.map((id) => this.get(id).catch(skipCorrupted)));
    return { tasks: states.filter((s): s is TaskState => s !== null), next: page.next };
  }

  /** Just what a watcher needs to start: status and last event id, or null for an unknown task. */
  async head(taskId: string): Promise<{ status: string; lastEventId: string } | null> {
    const [status, lastEventId] = await aboutTask(taskId, this.redis.hmget(taskKey(taskId), 'status', 'last_event_id'), taskKey(taskId));
    if (!status || !lastEventId) return null;
    return { status, lastEventId };
  }

  /**
   * Events strictly after `afterId` (a canonical id), oldest first; all of them when it is absent;
   * at most `count` when given.
   */
  async events(taskId: string, afterId?: string, toId = '+', count?: number): Promise<TaskEvent[]> {
    return (await this.range(taskId, afterId, toId, count)).map(([id, fields]) => decodeEvent(taskId, id, fields));
  }

  /** As events(), in the wire form a watcher is sent (see wireEvent). */
  async wireEvents(taskId: string, afterId?: string, toId = '+', count?: number): Promise<WireEvent[]> {
    return (await this.range(taskId, afterId, toId, count)).map(([id, fields]) => wireEvent(taskId, id, fields));
  }

  private range(taskId: string, afterId: string | undefined, toId: string, count: number | undefined): Promise<[string, string[]][]> {
    if (afterId === MAX_EVENT_ID) return Promise.resolve([]);
    const start = afterId === undefined ? '-' : `(${afterId}`;
    return aboutTask(taskId, this.ranges.add({ key: eventsKey(taskId), start, end: toId, count }), eventsKey(taskId));
  }
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
