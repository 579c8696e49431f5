import type { Logger } from '../logger.js';
import { redisTrouble } from './unavailable.js';

/**
 * How an operation that is tried again and again (a loop, a timer, a retry) logs its failures:
 * Redis trouble (redisTrouble: an outage, or Redis refusing for now) is warned once per streak,
 * without a stack, then logged at debug until the operation succeeds again (`ok`); anything else
 * is a bug or bad data, an error with its stack each time. Only Redis trouble counts towards a
 * streak, so an error in between does not hide the warning of the outage that follows.
 */
export class FailureStreak {
  private troubles = 0;

  constructor(
    private readonly log: () => Logger,
    /** The log line's message, e.g. 'heartbeat failed'. */
    private readonly message: string,
  ) {}

  failed(err: unknown, fields: Record<string, unknown> = {}): void {
    if (redisTrouble(err)) {
      this.troubles += 1;
      this.log()[this.troubles === 1 ? 'warn' : 'debug']({ ...fields, err: String(err), failures: this.troubles }, this.message);
    } else {
      this.log().error({ ...fields, err }, this.message);
    }
  }

  ok(): void {
    this.troubles = 0;
  }
}
