import { setTimeout as delay } from 'node:timers/promises';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { FinalStatus, Metrics } from '../metrics/metrics.js';
import type { Redis } from '../store/redis.js';
import { COMMANDS_STREAM, WORKER_GROUP, eventsKey, taskKey } from '../store/keys.js';
import type { TaskContext, TaskRegistry } from './registry.js';

/** A command entry as read from `tasks:commands`. */
export interface Command {
  id: string;
  fields: Record<string, string>;
}

export interface RunDeps {
  redis: Redis;
  logger: Logger;
  config: Pick<Config, 'TASK_TTL_S'>;
  registry: TaskRegistry;
  consumer: string;
  metrics?: Metrics | undefined;
}

/** This run no longer owns the task: a newer run holds the lease. */
class FencedError extends Error {}
/** The task ended (e.g. cancelled) or vanished while this run was working on it. */
class TaskEndedError extends Error {}

interface EventArgs {
  status: string;
  progress: number;
  step?: number;
  terminal?: boolean;
  extra?: Record<string, string | number>;
}

/**
 * Runs one command to its end. Stage writes are fenced by a lease taken at the start of the run
 * and deduplicated by stage number, so a reclaimed command resumes after its last recorded stage.
 * The command is acked by the script that records the terminal event, and only then.
 */
export async function runCommand(deps: RunDeps, command: Command, signal: AbortSignal): Promise<void> {
  const taskId = command.fields.task_id ?? '';
  const log = deps.logger.child({ taskId, commandId: command.id });
  const lease = `${deps.consumer}/${uuidv4()}`;
  const typeLabel = deps.registry.get(command.fields.type ?? '') ? command.fields.type! : '(unknown)';

  const append = async (e: EventArgs): Promise<string> => {
    const args: (string | number)[] = [
      taskKey(taskId), eventsKey(taskId), COMMANDS_STREAM,
      lease, e.step ?? '', e.terminal ? '1' : '0', deps.config.TASK_TTL_S, WORKER_GROUP,
      e.terminal ? command.id : '', Date.now(), e.status, e.progress,
    ];
    for (const [k, v] of Object.entries(e.extra ?? {})) args.push(k, v);
    const [result] = await retryWhileDown(() => deps.redis.appendEvent(...args), signal, log);
    if (result === 'FENCED') throw new FencedError('lease lost to a newer run');
    if (result === 'TERMINAL' || result === 'GONE') throw new TaskEndedError(`task is ${result.toLowerCase()}`);
    log.info({ status: e.status, progress: e.progress, result }, 'event recorded');
    // The command id's time part is when the task was started, so the duration needs no extra read.
    if (e.terminal && result === 'OK') deps.metrics?.taskFinished(typeLabel, e.status as FinalStatus, Number(command.id.split('-')[0]));
    return result ?? '';
  };

  const [claim, recorded] = await retryWhileDown(() => deps.redis.claimTask(taskKey(taskId), lease), signal, log);
  if (claim !== 'OK') {
    log.info({ claim }, 'task already ended; acknowledging its command');
    await deps.redis.xack(COMMANDS_STREAM, WORKER_GROUP, command.id);
    return;
  }

  const type = deps.registry.get(command.fields.type ?? '');
  const params = type?.params.safeParse(parseJson(command.fields.params ?? '{}'));
  try {
    if (!type || !params?.success) {
      const reason = !type ? `unknown task type ${command.fields.type}` : `invalid params: ${params?.error?.message}`;
      await append({ status: 'FAILED', progress: 0, terminal: true, extra: { error: reason } });
      return;
    }
    let step = 0;
    const completedStages = Number(recorded);
    const ctx: TaskContext<unknown> = {
      taskId,
      params: params.data,
      signal,
      completedStages,
      logger: log,
      sleep: (ms) => (ms <= 0 ? Promise.resolve() : delay(ms, undefined, { signal })),
      async stage(status, progress, work) {
        step += 1;
        if (step <= completedStages) return;
        const started = process.hrtime.bigint();
        if (work) await work();
        signal.throwIfAborted();
        await append({ status, progress, step });
        deps.metrics?.stageDone(typeLabel, status, Number(process.hrtime.bigint() - started) / 1e9);
      },
    };
    try {
      await type.run(ctx);
    } catch (err) {
      if (err instanceof FencedError || err instanceof TaskEndedError || signal.aborted) throw err;
      log.warn({ err }, 'task handler failed');
      const progress = Number((await deps.redis.hget(taskKey(taskId), 'progress')) ?? 0);
      await append({ status: 'FAILED', progress, terminal: true, extra: { error: errorMessage(err) } });
      return;
    }
    await append({ status: 'COMPLETED', progress: 100, terminal: true });
  } catch (err) {
    if (err instanceof FencedError) log.warn('fenced: another worker owns this task now');
    else if (err instanceof TaskEndedError) {
      log.info({ reason: err.message }, 'task ended elsewhere; acknowledging its command');
      await deps.redis.xack(COMMANDS_STREAM, WORKER_GROUP, command.id);
    } else if (signal.aborted) log.info('run stopped; the command stays pending for another worker');
    else throw err;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 1000);
}

/**
 * Retries an idempotent Redis call while the connection is down, so a Redis restart does not fail
 * the task. Stops when the run is aborted.
 */
async function retryWhileDown<T>(call: () => Promise<T>, signal: AbortSignal, log: Logger): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isConnectionError(err) || signal.aborted) throw err;
      log.warn({ err: errorMessage(err), attempt }, 'redis unavailable; retrying');
      await delay(Math.min(100 * 2 ** attempt, 2000), undefined, { signal });
    }
  }
}

function isConnectionError(err: unknown): boolean {
  return err instanceof Error && /closed|ECONNREFUSED|ECONNRESET|writeable|LOADING|MaxRetries/i.test(err.message);
}
