import { DEFAULT_REDIS_URL } from '../runtime/dev-redis.js';
import { runMain } from '../runtime/main.js';
import { runGateway } from '../runtime/services.js';

runMain('gateway', ({ config, logger }) => runGateway(config, logger, config.REDIS_URL ?? DEFAULT_REDIS_URL));
