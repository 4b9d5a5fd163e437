import { ResilienceError, brandKind, hasKind, refusal } from '../errors.js';

/**
 * Why a rate limiter refused a call: `'limit'` when its permit would come later than `maxWait`
 * (with the default `maxWait` of 0, whenever no permit is free now); `'queue-full'` when it
 * would come in time but `maxQueue` calls already wait.
 */
export type RateLimitedReason = 'limit' | 'queue-full';

/**
 * A {@link RateLimiter} refused the call without running it. A refusal: breakers do not count it
 * and retries do not repeat it by default. `retryAfter` says when to come back.
 *
 * @example
 * ```ts
 * try { await partner.execute(callPartner); }
 * catch (error) {
 *   if (isRateLimitedError(error)) res.setHeader('Retry-After', Math.ceil(error.retryAfter / 1000));
 * }
 * ```
 */
export class RateLimitedError extends ResilienceError {
  /** Always `'RateLimitedError'`. Test with {@link isRateLimitedError}, which knows one from another copy of bulwark. */
  override readonly name = 'RateLimitedError' as const;
  /** `'limit'`: the permit is further away than `maxWait`; `'queue-full'`: `maxQueue` calls already wait. */
  readonly reason: RateLimitedReason;
  /**
   * Milliseconds from the refusal until a call arriving then would get its permit, after every
   * call already waiting: exact, read from the limiter's clock (a call arriving sooner, or a
   * timer firing late, changes what the next caller sees).
   */
  readonly retryAfter: number;
  /** The limiter's `rate`: permits per `interval`. */
  readonly rate: number;
  /** The limiter's `interval`, in ms. */
  readonly interval: number;

  constructor(reason: RateLimitedReason, retryAfter: number, rate: number, interval: number) {
    const next = `the next permit is ${Math.ceil(retryAfter)} ms away`;
    super(reason === 'queue-full' ? `Rate limiter queue is full: ${next}` : `Rate limit of ${rate} per ${interval} ms reached: ${next}`);
    this.reason = reason;
    this.retryAfter = retryAfter;
    this.rate = rate;
    this.interval = interval;
  }
}

// On the prototype, once: every RateLimitedError is a refusal, and `isRateLimitedError` knows one
// from another copy of bulwark by its kind.
refusal(RateLimitedError.prototype);
brandKind(RateLimitedError, 'RateLimitedError');

/** True for a {@link RateLimitedError}, from this copy of bulwark or another. */
export function isRateLimitedError(error: unknown): error is RateLimitedError {
  return error instanceof RateLimitedError || hasKind(error, 'RateLimitedError');
}
