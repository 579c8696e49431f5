import { DEFAULT_REDIS_URL } from '../runtime/dev-redis.js';
import { runMain } from '../runtime/main.js';
import { runWorker } from '../runtime/services.js';

runMain('worker', ({ config, logger }) => runWorker(config, logger, config.REDIS_URL ?? DEFAULT_REDIS_URL));
