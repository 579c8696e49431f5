import type { ApiClient } from '../client/api-client.js';
import type { TaskEvent } from '../wire/events.js';
import { taskRow } from './format.js';
import { EXIT, UsageError, type CliIo } from './io.js';

export const DEFAULT_OUTPUT_LINES = 20;

export interface InspectOptions {
  json: boolean;
  /** Output lines to show, the last ones; null: all of them. */
  outputLines: number | null;
}

/** `--output-lines`: a whole number, or `all`. */
export function parseOutputLines(value: string | undefined): number | null {
  if (value === undefined) return DEFAULT_OUTPUT_LINES;
  if (value === 'all') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError('--output-lines must be a whole number or "all"');
  return n;
}

const CHUNK_PREVIEW = 40;

function eventRow(e: TaskEvent, detail: string): string {
  const ts = new Date(e.ts).toISOString();
  return `  ${e.id.padEnd(16)} ${ts} ${e.type.padEnd(8)} ${e.status.padEnd(10)} ${String(e.progress).padStart(3)}%${detail ? `  ${detail}` : ''}\n`;
}

/** The event list, each run of consecutive output events on one row (the first event's id and time). */
function eventRows(events: TaskEvent[]): string {
  let text = '';
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.type !== 'output') {
      const detail = e.type === 'restart' ? 'a new run took the task over' : (e.message ?? e.error ?? '');
      text += eventRow(e, detail);
      continue;
    }
    let end = i;
    while (events[end + 1]?.type === 'output') end++;
    const preview = JSON.stringify(e.chunk === undefined ? '' : e.chunk);
    text += eventRow(
      e,
      end === i
        ? (preview.length > CHUNK_PREVIEW ? `${preview.slice(0, CHUNK_PREVIEW - 1)}…` : preview)
        : `${end - i + 1} chunks, to ${events[end]!.id}`,
    );
    i = end;
  }
  return text;
}

/** The last `count` lines of `text` (null: all), and how many lines it has in all. */
function lastLines(text: string, count: number | null): { shown: string; total: number } {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const shown = count === null ? lines : lines.slice(Math.max(0, lines.length - count));
  return { shown: shown.length > 0 ? `${shown.join('\n')}\n` : '', total: lines.length };
}

/**
 * `taskcast inspect`: the task's state, latest progress message, result, event history and
 * output (GET /tasks/<id>/output, the exactly-once rule applied), its last lines by default.
 */
export async function inspectTask(io: CliIo, api: ApiClient, taskId: string, options: InspectOptions): Promise<number> {
  const [state, events, output] = await Promise.all([api.get(taskId), api.events(taskId), api.output(taskId)]);
  if (options.json) {
    io.stdout.write(`${JSON.stringify({ state, events, output: output.text })}\n`);
    return EXIT.OK;
  }
  let text = `${taskRow(state)}\nparams: ${JSON.stringify(state.params)}\n`;
  if (state.priority !== undefined && state.priority !== 'normal') text += `priority: ${state.priority}\n`;
  if (state.run_at !== undefined) text += `run at: ${new Date(state.run_at).toISOString()}\n`;
  if (state.tags !== undefined) text += `tags: ${state.tags.join(' ')}\n`;
  if (state.concurrency_key !== undefined) text += `concurrency key: ${state.concurrency_key}\n`;
  if (state.waiting_for_slot !== undefined) text += `waiting for a slot (${state.waiting_for_slot === 'concurrency' ? 'its type\'s limit' : 'its key\'s limit'})\n`;
  if (state.attempt !== undefined) text += `attempt: ${state.attempt}\n`;
  if (state.error) text += `error: ${state.error}\n`;
  if (state.message !== undefined) text += `message: ${state.message}\n`;
  if (state.result !== undefined) text += `result: ${JSON.stringify(state.result, null, 2)}\n`;
  text += `events (${events.length}):\n${eventRows(events)}`;
  const { shown, total } = lastLines(output.text, options.outputLines);
  const shownCount = options.outputLines === null ? total : Math.min(total, options.outputLines);
  const part = shownCount < total ? `; the last ${shownCount} follow, --output-lines all for every line` : '';
  text += `output as of event ${output.last_event_id} (${total} line${total === 1 ? '' : 's'}${part}):\n${shown}`;
  io.stdout.write(text);
  return EXIT.OK;
}
