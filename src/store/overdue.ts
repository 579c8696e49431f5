import type { Logger } from '../logger.js';

/**
 * One awaited call to Redis at a time, watched for a Redis that hangs (it answers nothing, not even
 * an error): `check`, from a timer while the call is under way, warns once when it began
 * `afterMs` or more ago (`<what> is still waiting on Redis`, with `waited_ms`); `end` then says
 * when it came back (info, `<what> got Redis's answer`).
 */
export class Overdue {
  private since = 0;
  private warned = false;

  constructor(
    private readonly log: () => Logger,
    /** What waits, as its log lines name it, e.g. 'heartbeat'. */
    private readonly what: string,
    /** ms. */
    private readonly afterMs: number,
  ) {}

  begin(): void {
    this.since = Date.now();
    this.warned = false;
  }

  check(): void {
    const waitedMs = Date.now() - this.since;
    if (this.warned || waitedMs < this.afterMs) return;
    this.warned = true;
    this.log().warn({ waited_ms: waitedMs }, `${this.what} is still waiting on Redis`);
  }

  end(): void {
    if (this.warned) this.log().info({ waited_ms: Date.now() - this.since }, `${this.what} got Redis's answer`);
    this.warned = false;
  }
}
