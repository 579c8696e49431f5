import type { FinalState, TaskWatcher, WatchState } from '../client/task-watcher.js';
import type { Json, TaskEvent } from '../wire/events.js';
import { chunkText, type OutputChange } from '../wire/output.js';
import { progressBar } from './format.js';
import type { CliIo } from './io.js';
import { LiveScreen } from './live-screen.js';

/**
 * What `taskcast watch` shows, one of three ways (README "Command-line client"):
 * - `--json`: every event as one JSON line on stdout, nothing else there;
 * - stdout a terminal: output chunks as they arrive, with the live progress bar (and the latest
 *   progress message) on the last line; notices on stderr above the bar; after the final bar, the
 *   result (pretty JSON) and the final status on stderr;
 * - stdout not a terminal (a pipe, a file): stdout gets the output text alone, and only committed
 *   chunks, written when their stage commits them, so it never holds text a restart voided; one
 *   line per stage, progress and restart event, the notices, the result (one line) and the final
 *   status go to stderr.
 */
export interface WatchView {
  /** An event, before the output change it makes (if any). */
  event(event: TaskEvent): void;
  output(change: OutputChange): void;
  state(state: WatchState): void;
  /** The watch ended; `status` is the terminal status when there is one. */
  end(final: FinalState, status: string | null, watcher: TaskWatcher): void;
}

/** Why the tentative chunks were voided, and how many. */
function voided(last: TaskEvent | undefined, count: number, pipe: boolean): string {
  const cause = last?.type === 'restart' ? 'stage restarted by a new run' : `stage restarted after a failed attempt${last?.error ? ` (${last.error})` : ''}`;
  const what = pipe
    ? `${count} tentative output chunk${count === 1 ? ' is' : 's are'} void (never written to stdout)`
    : `the last ${count} output chunk${count === 1 ? ' is' : 's are'} void`;
  return `[${cause}: ${what}; the output follows again]`;
}

function reconnectMessage(state: Extract<WatchState, { state: 'reconnecting' }>): string {
  const seconds = Math.max(0, Math.ceil((state.nextAttemptAt - Date.now()) / 1000));
  return `disconnected (${state.code}${state.reason ? ` ${state.reason}` : ''}); reconnecting in ${seconds} s`;
}

function printResult(io: CliIo, taskId: string, result: Json | undefined, pretty: boolean): void {
  if (result === undefined) return;
  io.stderr.write(pretty ? `result:\n${JSON.stringify(result, null, 2)}\n` : `${taskId}: result ${JSON.stringify(result)}\n`);
}

export function jsonView(io: CliIo, taskId: string): WatchView {
  return {
    event: (event) => void io.stdout.write(`${JSON.stringify(event)}\n`),
    output: () => undefined,
    state: (state) => {
      if (state.state === 'reconnecting') io.stderr.write(`${taskId}: ${reconnectMessage(state)}\n`);
    },
    end: () => undefined,
  };
}

export function terminalView(io: CliIo, taskId: string): WatchView {
  const screen = new LiveScreen(io.stdout);
  let last: TaskEvent | undefined;
  /** Beside the bar: the stage's latest progress message, or why it failed or was retried. */
  let note = '';
  let countdown: ReturnType<typeof setInterval> | undefined;
  const bar = (extra = '') => {
    if (!last) return;
    const beside = [note, extra].filter(Boolean).join('  ');
    screen.setStatus(`${progressBar(last.progress, last.status)}${beside ? `  ${beside}` : ''}`);
  };
  /** Stops the reconnect countdown; true when it was running (the bar still shows its note). */
  const stopCountdown = () => {
    if (countdown === undefined) return false;
    clearInterval(countdown);
    countdown = undefined;
    return true;
  };
  return {
    event(event) {
      last = event;
      if (event.type === 'stage') note = event.error ?? '';
      else if (event.type === 'progress') note = event.message ?? note;
      if (event.type !== 'output') bar();
    },
    output(change) {
      if (change.kind === 'append') screen.text(chunkText(change.chunk));
      else if (change.kind === 'discard') screen.notice(voided(last, change.chunks.length, false), io.stderr);
    },
    state(state) {
      stopCountdown();
      if (state.state !== 'reconnecting') return;
      if (!last) {
        io.stderr.write(`${taskId}: ${reconnectMessage(state)}\n`);
        return;
      }
      bar(reconnectMessage(state));
      countdown = setInterval(() => bar(reconnectMessage(state)), 500);
    },
    end(final, status, watcher) {
      if (stopCountdown()) bar();
      screen.end();
      if (final.state === 'finished') printResult(io, taskId, watcher.result, true);
      if (status) io.stderr.write(`${taskId}: ${status}${last?.error ? ` (${last.error})` : ''}\n`);
    },
  };
}

export function pipeView(io: CliIo, taskId: string): WatchView {
  let last: TaskEvent | undefined;
  const write = (chunks: readonly Json[]) => {
    if (chunks.length > 0) io.stdout.write(chunks.map(chunkText).join(''));
  };
  return {
    event(event) {
      last = event;
      if (event.type === 'output') return;
      const beside = event.type === 'restart' ? 'restarted by a new run' : (event.message ?? event.error);
      io.stderr.write(`${new Date(event.ts).toISOString()} ${progressBar(event.progress, event.status)}${beside ? `  ${beside}` : ''}\n`);
    },
    output(change) {
      if (change.kind === 'commit') write(change.chunks);
      else if (change.kind === 'discard') io.stderr.write(`${voided(last, change.chunks.length, true)}\n`);
    },
    state(state) {
      if (state.state === 'reconnecting') io.stderr.write(`${taskId}: ${reconnectMessage(state)}\n`);
    },
    end(final, status, watcher) {
      const rest = watcher.output.tentative;
      if (final.state === 'finished') write(rest);
      else if (rest.length > 0) io.stderr.write(`${taskId}: ${rest.length} tentative output chunks not written (the task has not ended)\n`);
      if (final.state === 'finished') printResult(io, taskId, watcher.result, false);
      if (status) io.stderr.write(`${taskId}: ${status}\n`);
    },
  };
}
