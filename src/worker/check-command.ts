import { parseTaskId } from '../wire/task-id.js';
import type { CommandEntry } from '../store/command-queue.js';
import type { TaskRegistry, TaskType } from '../tasks/registry.js';

type Checked = { type: TaskType<unknown>; params: unknown } | { reason: string };

/** A command a worker can run, or the reason it is poison. */
export function checkCommand(registry: TaskRegistry, command: Pick<CommandEntry, 'taskId' | 'type' | 'params'>): Checked {
  if (command.taskId === undefined) return { reason: 'malformed command: no task_id' };
  if (parseTaskId(command.taskId) === null) return { reason: 'malformed command: task_id is not a UUID' };
  const type = registry.get(command.type ?? '');
  if (!type) return { reason: `unknown task type ${JSON.stringify(command.type ?? null)}` };
  let raw: unknown;
  try {
    raw = JSON.parse(command.params ?? '{}');
  } catch {
    return { reason: 'malformed command: params is not JSON' };
  }
  const params = type.params.safeParse(raw);
  if (!params.success) {
    const issues = params.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { reason: `invalid params: ${issues.join('; ')}`.slice(0, 1000) };
  }
  return { type, params: params.data };
}
