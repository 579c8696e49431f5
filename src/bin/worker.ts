import { runMain } from '../runtime/main.js';
import { redisTarget, runWorker } from '../runtime/services.js';
import { logStrayRejections } from '../runtime/stray-rejections.js';

runMain('worker', ({ config, logger }) => {
  logStrayRejections(logger);
  return runWorker(config, logger, redisTarget(config));
});
