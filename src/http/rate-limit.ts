import { AppError } from '../errors.js';

export interface RateLimitOptions {
  /** Bucket size: starts allowed in a burst. */
  burst: number;
  /** Tokens added back per second. */
  refillPerS: number;
  /** Keys kept at most; idle (full) buckets go first, then the least recently used. */
  maxKeys?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * In-memory token buckets, one per client key, in each gateway. Chosen over a Redis script
 * because a refused request then costs no Redis round trip (a flood cannot load Redis through
 * the limiter) and limiting keeps working while Redis is slow; the price is that the limit
 * applies per gateway (README "Threat model").
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(private readonly options: RateLimitOptions) {
    this.maxKeys = options.maxKeys ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  get keys(): number {
    return this.buckets.size;
  }

  /** Takes one token for `key`, or throws RATE_LIMITED with Retry-After (whole seconds). */
  take(key: string): void {
    const now = this.now();
    const bucket = this.refill(this.buckets.get(key), now);
    this.buckets.delete(key);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      this.buckets.set(key, bucket);
      if (this.buckets.size > this.maxKeys) this.evict(now);
      return;
    }
    this.buckets.set(key, bucket);
    const retryAfterS = Math.max(1, Math.ceil((1 - bucket.tokens) / this.options.refillPerS));
    throw new AppError('RATE_LIMITED', `too many task starts, retry in ${retryAfterS} s`, { retry_after_s: retryAfterS }, {
      'Retry-After': String(retryAfterS),
    });
  }

  private refill(bucket: Bucket | undefined, now: number): Bucket {
    if (!bucket) return { tokens: this.options.burst, at: now };
    const tokens = Math.min(this.options.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.options.refillPerS);
    return { tokens, at: now };
  }

  /**
   * Drops full buckets (they behave like absent ones), then the least recently used, down to 90%
   * of maxKeys so that the O(keys) sweep runs once per many new keys, not on each.
   */
  private evict(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (this.refill(bucket, now).tokens >= this.options.burst) this.buckets.delete(key);
    }
    const target = Math.floor(this.maxKeys * 0.9);
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= target) break;
      this.buckets.delete(key);
    }
  }
}
