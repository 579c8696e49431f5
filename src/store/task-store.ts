import { v4 as uuidv4 } from 'uuid';
import type { Redis } from './redis.js';
import { COMMANDS_STREAM, TASKS_INDEX, eventsKey, taskKey } from './keys.js';
import { decodeEvent, type TaskEvent } from './events.js';
import { readIndexPage, type IndexCursor } from './task-index.js';

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
}

export interface StartedTask {
  state: TaskState;
  commandId: string;
}

/** Reads and creates tasks. Stage writes belong to the worker (see worker/task-run.ts). */
export class TaskStore {
  /** `taskTtlS` is TASK_TTL_S: how long the recent-tasks index keeps an entry (86400 = its default). */
  constructor(
    private readonly redis: Redis,
    private readonly taskTtlS = 86400,
  ) {}

  async start(type: string, params: unknown, now = Date.now()): Promise<StartedTask> {
    const taskId = uuidv4();
    const paramsJson = JSON.stringify(params);
    const [eventId, commandId] = await this.redis.startTask(
      taskKey(taskId),
      eventsKey(taskId),
      COMMANDS_STREAM,
      TASKS_INDEX,
      taskId,
      type,
      paramsJson,
      now,
      this.taskTtlS,
    );
    return {
      commandId,
      state: {
        task_id: taskId,
        type,
        status: 'PENDING',
        progress: 0,
        last_event_id: eventId,
        created_at: now,
        updated_at: now,
        params,
      },
    };
  }

  async get(taskId: string): Promise<TaskState | null> {
    const h = await this.redis.hgetall(taskKey(taskId));
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
    };
  }

  /** Recent tasks, newest first; tasks that expired since they were indexed are left out. */
  async recent(limit: number, after: IndexCursor | null): Promise<{ tasks: TaskState[]; next: IndexCursor | null }> {
    const page = await readIndexPage(this.redis, limit, after);
    const states = await Promise.all(page.taskIds.map((id) => this.get(id)));
    return { tasks: states.filter((s): s is TaskState => s !== null), next: page.next };
  }

  /** Just what a watcher needs to start: status and last event id, or null for an unknown task. */
  async head(taskId: string): Promise<{ status: string; lastEventId: string } | null> {
    const [status, lastEventId] = await this.redis.hmget(taskKey(taskId), 'status', 'last_event_id');
    if (!status || !lastEventId) return null;
    return { status, lastEventId };
  }

  /** Events strictly after `afterId` (a canonical id), oldest first; all of them when it is absent. */
  async events(taskId: string, afterId?: string, toId = '+'): Promise<TaskEvent[]> {
    const start = afterId === undefined ? '-' : `(${afterId}`;
    const entries = await this.redis.xrange(eventsKey(taskId), start, toId);
    return entries.map(([id, fields]) => decodeEvent(taskId, id, fields));
  }
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return {};
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
