import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TaskRegistry, TaskType } from './registry.js';

/**
 * Registers the task types of extra modules (config TASK_MODULES), so a deployment, or a test,
 * adds task types without changing src. Each module default-exports a task type or an array of
 * them. Paths are resolved against `baseDir`.
 */
export async function loadTaskModules(registry: TaskRegistry, paths: readonly string[], baseDir = process.cwd()): Promise<TaskRegistry> {
  for (const path of paths) {
    const mod = (await import(pathToFileURL(resolve(baseDir, path)).href)) as { default?: unknown };
    const exported = Array.isArray(mod.default) ? mod.default : [mod.default];
    for (const type of exported) {
      if (!isTaskType(type)) throw new Error(`task module ${path} must default-export a task type or an array of them`);
      registry.register(type);
    }
  }
  return registry;
}

function isTaskType(value: unknown): value is TaskType {
  if (typeof value !== 'object' || value === null) return false;
  const t = value as Record<string, unknown>;
  return typeof t.name === 'string' && typeof t.run === 'function' && typeof t.params === 'object' && t.params !== null;
}
