import { runMain } from '../runtime/main.js';
import { redisTarget, runWorker } from '../runtime/services.js';

runMain('worker', ({ config, logger }) => runWorker(config, logger, redisTarget(config)));
