/**
 * The two algorithms of a rate limiter share one shape: a state machine driven by clock readings
 * alone, which arms no timer and knows nothing of calls or queues. The limiter asks when the
 * permit of a call with `ahead` calls before it comes, and records each permit it grants.
 */
export interface PermitState {
  /**
   * Milliseconds from `now` until the permit of a call that has `ahead` calls (granted first,
   * in order) before it; 0 when it is free now.
   */
  waitFor(now: number, ahead: number): number;
  /** Records a permit granted at `now`; the limiter checked that `waitFor(now, 0)` is 0. */
  take(now: number): void;
  /** Permits a burst of calls arriving at `now` could take at once. */
  available(now: number): number;
  /** True when the state holds nothing a fresh one would not: forgetting it loosens no limit. */
  atRest(now: number): boolean;
}

/**
 * A permit due within this many ms of now counts as due now: float arithmetic on clock readings
 * is off by far less, and a timer is never armed for nothing.
 */
export const TOLERANCE = 1e-6;

/** `wait`, or 0 when it is within {@link TOLERANCE} or too small to move a clock reading of `now` at all. */
export function dueWithin(now: number, wait: number): number {
  // Stryker disable next-line EqualityOperator,ArithmeticOperator: a wait of exactly 1e-6 ms, or a sign flip of one too small to move the clock, changes no grant
  return wait <= TOLERANCE || now + wait === now ? 0 : wait;
}

/**
 * A token bucket of capacity `burst`, starting full and refilling continuously at `rate` tokens
 * per `interval`; a permit takes one token. Over any window of `interval`, at most
 * `rate + burst` permits are granted (`burst` saved up, `rate` refilled).
 *
 * Held as the time the bucket is full again, in the form of the generic cell rate algorithm:
 * the clock reading `anchor` at which the current run of permits began with a full bucket and
 * the count `granted` of permits since. The bucket is full again at
 * `anchor + granted × interval / rate`, computed afresh from whole counts on every read, so no
 * rounding error adds up over millions of permits, and with whole-ms clock readings and a
 * whole `interval` every comparison is exact.
 */
export class TokenBucket implements PermitState {
  readonly rate: number;
  readonly interval: number;
  readonly burst: number;
  /** The clock reading at which the bucket, full, gave the first permit of the current run. */
  private anchor = 0;
  /** Permits given since `anchor`; 0 for a bucket that never gave one. */
  private granted = 0;

  constructor(rate: number, interval: number, burst: number) {
    this.rate = rate;
    this.interval = interval;
    this.burst = burst;
  }

  /** Milliseconds from `now` until the bucket is full again; ≤ 0 when it is full. */
  private untilFull(now: number): number {
    return (this.granted * this.interval) / this.rate - (now - this.anchor);
  }

  waitFor(now: number, ahead: number): number {
    // Stryker disable next-line EqualityOperator: at exactly 0 both branches give the same wait
    if (this.untilFull(now) <= 0) {
      // Full: `burst` permits now, then one per interval / rate.
      const beyond = ahead + 1 - this.burst;
      // Stryker disable next-line ConditionalExpression,EqualityOperator: dueWithin() answers 0 for a wait ≤ 0 too
      return beyond <= 0 ? 0 : dueWithin(now, (beyond * this.interval) / this.rate);
    }
    // The (ahead + 1)-th permit from now is due once the bucket owes at most `burst - 1` of the
    // `granted + ahead + 1` tokens taken since `anchor`.
    const wait = ((this.granted + ahead + 1 - this.burst) * this.interval) / this.rate - (now - this.anchor);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: dueWithin() answers 0 for a wait ≤ 0 too
    return wait <= 0 ? 0 : dueWithin(now, wait);
  }

  take(now: number): void {
    // Stryker disable next-line EqualityOperator: exactly full, restarting the run at now and counting on from the anchor describe the same bucket
    if (this.untilFull(now) <= 0) {
      this.anchor = now;
      this.granted = 1;
    } else {
      this.granted++;
    }
  }

  available(now: number): number {
    const owed = this.granted - ((now - this.anchor) * this.rate) / this.interval;
    // Stryker disable next-line EqualityOperator: with nothing owed the formula below gives burst too
    if (!(owed > 0)) return this.burst;
    // A hair above a whole number is float error, not a token short.
    return Math.max(0, Math.floor(this.burst - owed + TOLERANCE));
  }

  atRest(now: number): boolean {
    return this.untilFull(now) <= 0;
  }
}
