import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { CommandQueue } from '../store/command-queue.js';
import type { Redis } from '../store/redis.js';
import { promoteDue } from '../store/schedule.js';
import { maintainSlots } from '../store/slots.js';
import type { ConcurrencyLimits } from '../tasks/concurrency.js';
import { Periodic } from './periodic.js';

export interface UpkeepDeps {
  redis: Redis;
  log: Logger;
  queue: CommandQueue;
  limits: ConcurrencyLimits;
  config: Pick<Config, 'CLAIM_IDLE_MS' | 'SCHEDULE_POLL_MS' | 'COMMANDS_MAXLEN' | 'TASK_TTL_S' | 'CONSUMER_PRUNE_IDLE_MS'>;
  /** Run first on each maintenance tick: the worker's reclaim of idle commands and take-over of dead workers'. */
  recover: () => Promise<void>;
}

/**
 * A worker's share of the upkeep of what all workers share, on timers. Every CLAIM_IDLE_MS / 2
 * (at least 50 ms): `recover`, then the commands streams trimmed to COMMANDS_MAXLEN, the recent-tasks
 * index pruned to TASK_TTL_S, the consumers of gone workers removed, leaked concurrency slots freed.
 * Every SCHEDULE_POLL_MS: the due scheduled tasks promoted. Each is a Periodic: one run at a time,
 * a failure logged and backed off, never thrown.
 */
export class Upkeep {
  private readonly maintenance: Periodic;
  private readonly promotion: Periodic;

  constructor(private readonly deps: UpkeepDeps) {
    const { log, config } = deps;
    this.maintenance = new Periodic(log, 'maintenance of the commands stream, task index, consumers or concurrency slots',
      Math.max(50, Math.floor(config.CLAIM_IDLE_MS / 2)), () => this.maintain());
    this.promotion = new Periodic(log, 'promoting scheduled tasks', config.SCHEDULE_POLL_MS, () => this.promote());
  }

  start(): void {
    this.maintenance.start();
    this.promotion.start();
  }

  /**
   * Stops the timers and waits at most 1 s for each run under way (one left pending is harmless:
   * each script is atomic, and the next worker's tick redoes what it did not). Idempotent.
   */
  async stop(): Promise<void> {
    await Promise.all([this.maintenance.stop(1000), this.promotion.stop(1000)]);
  }

  private async maintain(): Promise<void> {
    const { queue, limits, log, config } = this.deps;
    await this.deps.recover();
    const removed = await queue.maintain({ maxLen: config.COMMANDS_MAXLEN, ttlS: config.TASK_TTL_S, pruneIdleMs: config.CONSUMER_PRUNE_IDLE_MS });
    if (removed.length > 0) log.info({ removed }, 'removed the consumers of workers that are gone');
    for (const [type, typeLimits] of limits.all()) {
      const freed = await maintainSlots(this.deps.redis, type, typeLimits);
      if (freed.length > 0) log.warn({ type, freed }, 'freed the concurrency slots of tasks that were gone or ended');
    }
  }

  private async promote(): Promise<void> {
    const n = await promoteDue(this.deps.redis);
    if (n > 0) this.deps.log.info({ promoted: n }, 'promoted due scheduled tasks');
  }
}
