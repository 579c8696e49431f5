import { atMost } from '../at-most.js';
import type { Logger } from '../logger.js';
import { reconnectDelayMs } from '../store/redis.js';
import { FailureStreak } from '../store/failure-streak.js';
import { Overdue } from '../store/overdue.js';

/** How long a run may take before it is warned as hung: this many periods, and at least HUNG_MIN_MS. */
const HUNG_AFTER_PERIODS = 3;
const HUNG_MIN_MS = 5000;

/**
 * A job run every `everyMs` on a timer, one run at a time: a tick while a run is under way does
 * nothing, but a run still under way HUNG_AFTER_PERIODS periods (and HUNG_MIN_MS) after it began
 * is warned once (Overdue): Redis hangs, and answers nothing, not even an error. A run that rejects backs
 * the job off, unless `backOff` is false (the ticks before reconnectDelayMs(failures) has passed
 * do nothing), and is logged as a FailureStreak: `${name} failed`.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  private retryAt = 0;
  private stopped = false;
  private readonly streak: FailureStreak;
  private readonly overdue: Overdue;

  constructor(
    log: Logger,
    /** What the job is called in its log lines, e.g. 'heartbeat'. */
    name: string,
    private readonly everyMs: number,
    private readonly job: () => Promise<void>,
    private readonly backOff = true,
  ) {
    this.streak = new FailureStreak(() => log, `${name} failed`);
    this.overdue = new Overdue(() => log, name, Math.max(HUNG_AFTER_PERIODS * everyMs, HUNG_MIN_MS));
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.everyMs);
  }

  /** Runs the job now, or joins its run under way; nothing while backing off or once stopped. Never rejects. */
  tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.overdue.check();
      return this.running;
    }
    if (Date.now() < this.retryAt) return Promise.resolve();
    this.overdue.begin();
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
      .finally(() => {
        this.overdue.end();
        this.running = undefined;
      });
    return this.running;
  }

  /** Stops the timer and waits at most `waitMs` for a run under way. Idempotent. */
  async stop(waitMs: number): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.running) await atMost(this.running, waitMs);
  }
}
