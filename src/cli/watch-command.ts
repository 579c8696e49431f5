import { ApiClient } from '../client/api-client.js';
import { TaskWatcher } from '../client/task-watcher.js';
import { CloseCode } from '../wire/close-codes.js';
import { parseTaskId } from '../wire/task-id.js';
import { EXIT, UNAUTHORIZED_HINT, UsageError, type CliIo } from './io.js';
import { jsonView, pipeView, terminalView } from './watch-views.js';

export interface WatchOptions {
  baseUrl: string;
  /** An API token or the task's watch token (auth on), sent as a header. */
  token?: string | undefined;
  taskId: string;
  lastEventId?: string | undefined;
  json: boolean;
}

/** Ids are checked before connecting (EXIT.USAGE), so a 4400 refuses a well-formed request, e.g. a resume point beyond the end. */
const EXIT_BY_CLOSE_CODE: Record<number, number> = {
  [CloseCode.NOT_FOUND]: EXIT.NOT_FOUND,
  [CloseCode.BAD_REQUEST]: EXIT.NOT_FOUND,
  [CloseCode.UNAUTHORIZED]: EXIT.UNAUTHORIZED,
};

const EXIT_BY_STATUS: Record<string, number> = { COMPLETED: EXIT.OK, FAILED: EXIT.FAILED, CANCELLED: EXIT.CANCELLED };

/**
 * Watches a task to its end with the resumable client and shows it as one of the views of
 * watch-views.ts (--json, a terminal, a pipe). The exit code follows the final status.
 */
export async function watchTask(io: CliIo, options: WatchOptions): Promise<number> {
  const { taskId } = options;
  const view = options.json ? jsonView(io, taskId) : io.stdout.isTTY === true ? terminalView(io, taskId) : pipeView(io, taskId);
  let watcher: TaskWatcher;
  if (parseTaskId(taskId) === null) throw new UsageError(`invalid task id ${JSON.stringify(taskId)}: a UUID`);
  try {
    watcher = new TaskWatcher({
      baseUrl: options.baseUrl,
      token: options.token,
      taskId,
      lastEventId: options.lastEventId,
      onEvent: view.event,
      onOutput: view.output,
      onState: view.state,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const stop = () => void watcher.close();
  io.signal.addEventListener('abort', stop);
  const final = await watcher.start();
  io.signal.removeEventListener('abort', stop);

  // Resumed at the very end (nothing to replay): the final status comes from the API.
  const status =
    final.state !== 'finished' ? null : (final.status ?? (await new ApiClient(options.baseUrl, { token: options.token }).get(taskId)).status);
  view.end(final, status, watcher);
  switch (final.state) {
    case 'closed':
      return EXIT.INTERRUPTED;
    case 'failed':
      io.stderr.write(`${taskId}: ${final.reason || `connection closed with code ${final.code}`}\n`);
      if (final.code === CloseCode.UNAUTHORIZED) io.stderr.write(`taskcast: ${UNAUTHORIZED_HINT}\n`);
      return EXIT_BY_CLOSE_CODE[final.code] ?? EXIT.ERROR;
    case 'finished':
      return EXIT_BY_STATUS[status!] ?? EXIT.ERROR;
  }
}
