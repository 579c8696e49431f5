import { ApiClient } from '../client/api-client.js';
import { TaskWatcher, type WatchState } from '../client/task-watcher.js';
import type { TaskEvent } from '../store/events.js';
import { EXIT, UsageError, type CliIo } from './io.js';

export interface WatchOptions {
  baseUrl: string;
  taskId: string;
  lastEventId?: string | undefined;
  json: boolean;
}

const BAR_WIDTH = 30;

/** `[#########---------------------]  30% PROCESSING` */
export function progressBar(progress: number, status: string): string {
  const clamped = Math.max(0, Math.min(100, progress));
  const filled = Math.round((clamped / 100) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(clamped).padStart(3)}% ${status}`;
}

const EXIT_BY_STATUS: Record<string, number> = { COMPLETED: EXIT.OK, FAILED: EXIT.FAILED, CANCELLED: EXIT.CANCELLED };

/**
 * Watches a task to its end with the resumable client. `--json` prints each event as one JSON line
 * on stdout (and nothing else there); otherwise a terminal gets a live progress bar and a pipe
 * gets one line per event. Connection changes go to stderr. The exit code follows the final status.
 */
export async function watchTask(io: CliIo, options: WatchOptions): Promise<number> {
  const tty = !options.json && io.stdout.isTTY === true;
  let last: TaskEvent | undefined;
  const redraw = (note = '') => {
    if (!last) return;
    io.stdout.write(`\r\x1b[2K${progressBar(last.progress, last.status)}${note ? `  ${note}` : ''}`);
  };
  const onEvent = (event: TaskEvent) => {
    last = event;
    if (options.json) io.stdout.write(`${JSON.stringify(event)}\n`);
    else if (tty) redraw();
    else io.stdout.write(`${new Date(event.ts).toISOString()} ${progressBar(event.progress, event.status)}\n`);
  };
  let countdown: ReturnType<typeof setInterval> | undefined;
  const onState = (state: WatchState) => {
    if (countdown !== undefined) clearInterval(countdown);
    countdown = undefined;
    if (state.state !== 'reconnecting') return;
    const message = () => {
      const seconds = Math.max(0, Math.ceil((state.nextAttemptAt - Date.now()) / 1000));
      return `disconnected (${state.code}${state.reason ? ` ${state.reason}` : ''}); reconnecting in ${seconds} s`;
    };
    if (tty && last) {
      redraw(message());
      countdown = setInterval(() => redraw(message()), 500);
    } else {
      io.stderr.write(`${options.taskId}: ${message()}\n`);
    }
  };

  let watcher: TaskWatcher;
  try {
    watcher = new TaskWatcher({
      baseUrl: options.baseUrl,
      taskId: options.taskId,
      lastEventId: options.lastEventId,
      onEvent,
      onState,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const stop = () => void watcher.close();
  io.signal.addEventListener('abort', stop);
  const final = await watcher.start();
  io.signal.removeEventListener('abort', stop);
  if (countdown !== undefined) clearInterval(countdown);
  if (tty && last) io.stdout.write('\n');

  switch (final.state) {
    case 'closed':
      return EXIT.INTERRUPTED;
    case 'failed':
      io.stderr.write(`${options.taskId}: ${final.reason || `connection closed with code ${final.code}`}\n`);
      return final.code === 4404 ? EXIT.NOT_FOUND : final.code === 4400 ? EXIT.USAGE : EXIT.ERROR;
    case 'finished': {
      // Resumed at the very end (nothing to replay): the final status comes from the API.
      const status = final.status ?? (await new ApiClient(options.baseUrl).get(options.taskId)).status;
      if (!options.json) io.stderr.write(`${options.taskId}: ${status}\n`);
      return EXIT_BY_STATUS[status] ?? EXIT.ERROR;
    }
  }
}
