import { TaskRegistry } from '../registry.js';
import { referenceTask } from './reference.js';
import { typewriterTask } from './typewriter.js';

/** The task types this deployment runs. Add yours here (see README "Adding a task type"). */
export function createRegistry(config: { STAGE_MS: number }): TaskRegistry {
  return new TaskRegistry().register(referenceTask(config.STAGE_MS)).register(typewriterTask());
}
