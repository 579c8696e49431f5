import { checkEventId, checkTaskId } from '../checked-ids.js';
import { AppError } from '../errors.js';
import { ZERO_ID, compareEventIds } from '../wire/event-id.js';
import type { WireEvent } from '../store/events.js';
import { TERMINAL_STATUSES } from '../wire/events.js';
import type { TaskStore } from '../store/task-store.js';
import type { Hub } from './hub.js';

/** What a transport (WebSocket, SSE) does with a watch. */
export interface WatchSink {
  /** `replayed`: the event was already in the log when the watch opened (not a live one). */
  event(event: WireEvent, replayed: boolean): void;
  /** Called once after the terminal event has been given: nothing more will come. */
  end(): void;
  /**
   * Flow control of the replay, asked after each replayed event: undefined while the transport
   * takes more at once, else a promise of whether to go on (false: the watcher is gone or was
   * closed as too slow). So a replay holds at most a page in memory, however long the history
   * and however slow the client.
   */
  room(): Promise<boolean> | undefined;
  /** The live feed broke (e.g. the gateway is shutting down); the client should resume. */
  error(err: Error): void;
}

export interface WatchRequest {
  taskId: string;
  /** Raw client input; undefined or empty means from the first event. */
  lastEventId?: string | undefined;
  /** What the client called it (`Last-Event-ID` for the SSE header), for error messages. */
  lastEventIdName?: string;
}

export interface Watch {
  close(): void;
}

/** The watch of a task replayed to its end: nothing to close. */
const done: Watch = { close: () => undefined };

/**
 * Validates a watch and starts it: every event after lastEventId, then live events until the
 * terminal one. Errors thrown here (bad id, unknown task, id beyond the stream) happen before any
 * event is given, so transports can map them to a status or close code; only a Redis failure
 * while a long replay pages on comes later.
 */
export async function openWatch(
  deps: { store: TaskStore; hub: Hub },
  request: WatchRequest,
  sink: WatchSink,
): Promise<Watch> {
  const taskId = checkTaskId(request.taskId);
  const name = request.lastEventIdName ?? 'lastEventId';
  const from = request.lastEventId ? checkEventId(request.lastEventId, name) : ZERO_ID;
  // Events read here were in the log when the watch opened (`replayed`); the hub's are live.
  let page = await deps.store.wireEvents(taskId, { after: from, count: REPLAY_PAGE });
  // An event after `from` proves the task exists and `from` is in range; only an empty replay
  // needs the state hash (most watches start from 0 or from behind, so this saves a command).
  if (page.length === 0) {
    const head = await deps.store.head(taskId, from);
    if (!head) throw new AppError('TASK_NOT_FOUND', `task ${taskId} not found`);
    if (compareEventIds(from, head.lastEventId) > 0) {
      throw new AppError('EVENT_ID_OUT_OF_RANGE', `${name} is beyond the task's last event ${head.lastEventId}`);
    }
    // Ended at `from`. A task that moved on since the XRANGE goes on from the hub below.
    if (TERMINAL_STATUSES.has(head.status) && compareEventIds(from, head.lastEventId) === 0) {
      sink.end();
      return done;
    }
  }

  let cursor = from;
  for (;;) {
    for (const event of page) {
      sink.event(event, true);
      cursor = event.id;
      if (event.terminal) {
        sink.end();
        return done;
      }
      const wait = sink.room();
      if (wait && !(await wait)) return done;
    }
    // The terminal event ends every task's stream, so a short page without it means the task
    // is still running: it goes on from the hub.
    if (page.length < REPLAY_PAGE) break;
    page = await deps.store.wireEvents(taskId, { after: cursor, count: REPLAY_PAGE });
  }

  return deps.hub.subscribe(taskId, cursor, {
    event(event) {
      sink.event(event, false);
      if (event.terminal) sink.end();
    },
    error: (err) => sink.error(err),
  });
}

/** Events read per XRANGE of a replay. */
const REPLAY_PAGE = 100;
