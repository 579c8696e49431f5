import { atMost } from '../at-most.js';
import type { Logger } from '../logger.js';
import { reconnectDelayMs } from '../store/redis.js';
import { FailureStreak } from '../store/failure-streak.js';

/**
 * A job run every `everyMs` on a timer, one run at a time: a tick while a run is under way does
 * nothing. A run that rejects backs the job off, unless `backOff` is false (the ticks before
 * reconnectDelayMs(failures) has passed do nothing), and is logged, as the read loops log theirs: Redis trouble (an outage) is
 * warned once per streak of failures, without a stack, then logged at debug; anything else is an
 * error, each time.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  private retryAt = 0;
  private stopped = false;
  private readonly streak: FailureStreak;

  constructor(
    log: Logger,
    /** What the log line of a failed run says, e.g. 'heartbeat failed'. */
    failed: string,
    private readonly everyMs: number,
    private readonly job: () => Promise<void>,
    private readonly backOff = true,
  ) {
    this.streak = new FailureStreak(() => log, failed);
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.everyMs);
  }

  /** Runs the job now, or joins its run under way; nothing while backing off or once stopped. Never rejects. */
  tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) return this.running;
    if (Date.now() < this.retryAt) return Promise.resolve();
    this.running = this.job()
      .then(
        () => {
          this.failures = 0;
          this.retryAt = 0;
          this.streak.ok();
        },
        (err: unknown) => {
          this.failures += 1;
          if (this.backOff) this.retryAt = Date.now() + reconnectDelayMs(this.failures);
          this.streak.failed(err);
        },
      )
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops the timer and waits at most `waitMs` for a run under way. Idempotent. */
  async stop(waitMs: number): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.running) await atMost(this.running, waitMs);
  }
}
