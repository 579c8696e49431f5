import type { ApiClient, StartTaskRequest } from '../client/api-client.js';
import { PRIORITIES, type Priority } from '../wire/events.js';
import { EXIT, UsageError, type CliIo } from './io.js';
import { watchTask } from './watch-command.js';

/**
 * `taskcast start`: starts a task from the command's flags (`values`, as parseArgs gives them) and
 * prints its id, or its state with --json; with --watch it then watches it as `taskcast watch`
 * does and returns that exit code. Bad flags throw UsageError before any request.
 */
export async function startTask(
  io: CliIo,
  api: ApiClient,
  target: { baseUrl: string; token: string | undefined },
  values: Record<string, unknown>,
): Promise<number> {
  let params: Record<string, unknown> | undefined;
  if (typeof values.params === 'string') params = parseParams(values.params);
  if (typeof values['stage-ms'] === 'string') {
    const ms = Number(values['stage-ms']);
    if (!Number.isInteger(ms) || ms < 0) throw new UsageError('--stage-ms must be a whole number of milliseconds');
    params = { ...params, stage_ms: ms };
  }
  const tags = values.tag as string[] | undefined;
  const idempotencyKey = values['idempotency-key'] as string | undefined;
  const state = await api.start({
    ...(typeof values.type === 'string' ? { type: values.type } : {}),
    ...(params ? { params } : {}),
    ...(tags ? { tags } : {}),
    ...startOptions(values),
  }, idempotencyKey === undefined ? {} : { idempotencyKey });
  if (!values.watch) {
    io.stdout.write(values.json ? `${JSON.stringify(state)}\n` : `${state.task_id}\n`);
    return EXIT.OK;
  }
  if (!values.json) io.stderr.write(`started ${state.task_id}\n`);
  return watchTask(io, { ...target, taskId: state.task_id, json: values.json === true });
}

function parseParams(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError('--params must be JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('--params must be a JSON object');
  return value as Record<string, unknown>;
}

/** The start body's priority, schedule and concurrency key from `start`'s flags; the server validates them. */
function startOptions(values: Record<string, unknown>): Omit<StartTaskRequest, 'type' | 'params'> {
  const text = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const whole = (name: string) => {
    const raw = text(name);
    if (raw === undefined) return undefined;
    if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number of milliseconds`);
    return Number(raw);
  };
  const priority = text('priority');
  if (priority !== undefined && !(PRIORITIES as readonly string[]).includes(priority)) {
    throw new UsageError(`--priority must be one of ${PRIORITIES.join(', ')}`);
  }
  const runAt = text('run-at');
  const delayMs = whole('delay-ms');
  const key = text('concurrency-key');
  return {
    ...(priority === undefined ? {} : { priority: priority as Priority }),
    ...(delayMs === undefined ? {} : { delay_ms: delayMs }),
    ...(runAt === undefined ? {} : { run_at: /^\d+$/.test(runAt) ? Number(runAt) : runAt }),
    ...(key === undefined ? {} : { concurrency_key: key }),
  };
}
