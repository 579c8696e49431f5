import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { CommandQueue } from '../store/command-queue.js';
import type { Redis } from '../store/redis.js';
import { promoteDue } from '../store/schedule.js';
import { maintainSlots } from '../store/slots.js';
import type { ConcurrencyLimits } from '../tasks/concurrency.js';
import { atMost } from '../at-most.js';

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
 * Every SCHEDULE_POLL_MS: the due scheduled tasks promoted, one pass at a time. Never throws: a
 * failure is logged and the next tick tries again.
 */
export class Upkeep {
  private maintainTimer: NodeJS.Timeout | undefined;
  private promoteTimer: NodeJS.Timeout | undefined;
  private promoting: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: UpkeepDeps) {}

  start(): void {
    this.maintainTimer = setInterval(() => void this.maintain(), Math.max(50, Math.floor(this.deps.config.CLAIM_IDLE_MS / 2)));
    this.promoteTimer = setInterval(() => void this.promote(), this.deps.config.SCHEDULE_POLL_MS);
  }

  /**
   * Stops the timers and waits at most 1 s for a promotion under way (one left pending is harmless:
   * the script is atomic and the next worker's poll redoes it). Idempotent.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.maintainTimer);
    clearInterval(this.promoteTimer);
    if (this.promoting) await atMost(this.promoting, 1000);
  }

  private async maintain(): Promise<void> {
    if (this.stopped) return;
    const { queue, limits, log, config } = this.deps;
    try {
      await this.deps.recover();
      const removed = await queue.maintain({ maxLen: config.COMMANDS_MAXLEN, ttlS: config.TASK_TTL_S, pruneIdleMs: config.CONSUMER_PRUNE_IDLE_MS });
      if (removed.length > 0) log.info({ removed }, 'removed the consumers of workers that are gone');
      for (const [type, typeLimits] of limits.all()) {
        const freed = await maintainSlots(this.deps.redis, type, typeLimits);
        if (freed.length > 0) log.warn({ type, freed }, 'freed the concurrency slots of tasks that were gone or ended');
      }
    } catch (err) {
      log.warn({ err }, 'maintenance of the commands stream, task index, consumers or concurrency slots failed');
    }
  }

  private promote(): Promise<void> {
    this.promoting ??= promoteDue(this.deps.redis)
      .then((n) => {
        if (n > 0) this.deps.log.info({ promoted: n }, 'promoted due scheduled tasks');
      })
      .catch((err) => this.deps.log.warn({ err }, 'promoting scheduled tasks failed'))
      .finally(() => (this.promoting = undefined));
    return this.promoting;
  }
}
