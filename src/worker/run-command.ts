import { v4 as uuidv4 } from 'uuid';
import { parseTaskId } from '../wire/task-id.js';
import { lazyChild } from '../logger.js';
import { TaskCorrupted } from '../store/corrupted.js';
import { checkCommand } from './check-command.js';
import { retryWhileDown } from './retry.js';
import type { CommandEntry } from '../store/command-queue.js';
import { TaskRun, type RunControl, type RunDeps } from './task-run.js';

/**
 * Runs one command to its end, at most once per stage whatever crashes: writes are fenced by a
 * lease and deduplicated by stage and sequence number, so a reclaimed command resumes after its
 * last recorded stage. The command is acked by the script that records the terminal event (or
 * dead-letters it), and only then. A task whose keys hold the wrong type (TaskCorrupted, from a
 * claim, an append or the heartbeat) is dead-lettered at once.
 */
export async function runCommand(deps: RunDeps, command: CommandEntry, control: RunControl): Promise<void> {
  const taskId = command.taskId ?? '';
  const log = lazyChild(deps.logger, () => ({ taskId, commandId: command.id }));
  const retry = <T>(call: () => Promise<T>) => retryWhileDown(call, control.hardStop, log);
  const deadLetter = async (reason: string) => {
    const [deadId, outcome] = await retry(() =>
      deps.writes.deadLetter(command, taskId, parseTaskId(taskId) !== null, reason, { maxLen: deps.config.DEAD_LETTER_MAXLEN, ttlS: deps.config.TASK_TTL_S }),
    );
    log().warn({ reason, deadId, task: outcome }, 'poison command dead-lettered');
    const type = command.type !== undefined && deps.registry.get(command.type) ? command.type : '(unknown)';
    if (outcome === 'FAILED') deps.metrics?.taskFinished(type, 'FAILED', command.queuedAtMs);
  };

  const checked = checkCommand(deps.registry, command);
  if ('reason' in checked) return deadLetter(checked.reason);
  try {
    const lease = `${deps.consumer}/${uuidv4()}`;
    const limits = deps.limits.of(checked.type.name, command.concurrencyKey);
    const slots = limits && { type: checked.type.name, ...limits };
    const [claim, recorded = '0', attempt = '1'] = await retry(() => deps.writes.claim({ taskId, lease, commandId: command.id, slots }));
    switch (claim) {
      case 'GONE':
        return await deadLetter('task not found');
      case 'POISON':
        return await deadLetter(`delivered ${recorded} times, more than MAX_DELIVERIES (${deps.config.MAX_DELIVERIES})`);
      case 'TERMINAL':
        log().info({ status: recorded }, 'task already ended; acknowledging its command');
        await retry(() => deps.writes.ack(command));
        return;
      case 'LOST':
        log().info('command is acked or held by another worker; skipping it');
        return;
      case 'WAIT':
        log().info({ waitingFor: recorded }, 'over its concurrency limit; the task waits for a slot');
        return;
    }
    control.onLease(lease);
    const run = new TaskRun(deps, command, control, { lease, log, type: checked.type, params: checked.params });
    await run.execute(Number(recorded), Number(attempt), claim === 'CANCEL');
  } catch (err) {
    // Bad data, which no redelivery heals: dead-lettered at once (the script says why the task
    // could not be ended FAILED), not after MAX_DELIVERIES.
    if (!(err instanceof TaskCorrupted)) throw err;
    log().error({ err: err.message }, 'task keys hold the wrong type');
    await deadLetter('corrupted task data');
  }
}
