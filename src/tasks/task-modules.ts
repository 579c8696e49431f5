import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { configError } from '../config.js';
import type { TaskRegistry, TaskType } from './registry.js';

/**
 * Registers the task types of extra modules (config TASK_MODULES), so a deployment, or a test,
 * adds task types without changing src. Each module default-exports a task type or an array of
 * them. Paths are resolved against `baseDir`. A path with no file, or a module that exports no task
 * type, is a ConfigError naming TASK_MODULES; an error the module throws as it loads is its own.
 */
export async function loadTaskModules(registry: TaskRegistry, paths: readonly string[], baseDir = process.cwd()): Promise<TaskRegistry> {
  const invalid = (problem: string) => configError('TASK_MODULES', paths.join(','), problem);
  for (const path of paths) {
    const file = resolve(baseDir, path);
    if (!existsSync(file)) throw invalid(`${path} does not exist (${file})`);
    const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    const exported = Array.isArray(mod.default) ? mod.default : [mod.default];
    for (const type of exported) {
      if (!isTaskType(type)) throw invalid(`${path} must default-export a task type or an array of them`);
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
