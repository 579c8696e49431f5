import type { Logger } from '../logger.js';
import { loggableThrown } from '../worker/thrown.js';

/**
 * In a process that runs task handlers: a promise that rejects with no handler (a handler's
 * `void somethingAsync()` that fails) is logged as an error instead of ending the process, which
 * would stop every task it runs and, with the task taken over elsewhere, the next worker too.
 */
export function logStrayRejections(logger: Logger): void {
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: loggableThrown(reason) }, 'a promise rejected and nothing handled it (a task handler\'s stray promise?); the process goes on');
  });
}
