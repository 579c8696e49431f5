import { runMain } from '../runtime/main.js';
import { redisTarget, runGateway } from '../runtime/services.js';

runMain('gateway', ({ config, logger }) => runGateway(config, logger, redisTarget(config)));
