import { dueWithin, type PermitState } from './token-bucket.js';

/** The largest `rate` a sliding window takes: it keeps the time of each of the last `rate` permits (8 bytes each). */
export const MAX_SLIDING_WINDOW_RATE = 100_000;

/** Slots a log starts with, and goes back to when it empties after holding more. */
const INITIAL_SLOTS = 8;

/**
 * An exact sliding window: no window of `interval` ms (from any instant, inclusive, to
 * `interval` later, exclusive) ever holds more than `rate` permits. It keeps a log of the last
 * `rate` permit times in a ring, so a permit is free once the `rate`-th most recent one is
 * `interval` old, and the time of any future permit is exact: the `k`-th permit from now comes
 * `interval` after the permit `rate` places before it, logged or itself still to come.
 *
 * The ring starts small and doubles up to `rate` slots as permits crowd in; once every logged
 * permit is `interval` old the log is emptied (those permits bind nothing any more), and a ring
 * that had grown goes back to its first size, so an idle limiter with a large `rate` costs little.
 */
export class SlidingWindow implements PermitState {
  readonly rate: number;
  readonly interval: number;
  private times: Float64Array;
  /** Index of the oldest logged permit. */
  private start = 0;
  /** Permits logged (at most `rate`). */
  private count = 0;

  constructor(rate: number, interval: number) {
    this.rate = rate;
    this.interval = interval;
    this.times = new Float64Array(Math.min(rate, INITIAL_SLOTS));
  }

  /** The `index`-th logged permit time, oldest first. */
  private at(index: number): number {
    return this.times[(this.start + index) % this.times.length] as number;
  }

  waitFor(now: number, ahead: number): number {
    // The (ahead + 1)-th permit from now waits for the permit `rate` places before it. Counting
    // `rate - count` permits older than any window before the log, that one is the log's entry
    // `ahead - (rate - count)`; beyond the log it is a permit still to come, which itself comes
    // `interval` after the one `rate` places before it, and so on: one `interval` per round.
    const rounds = Math.floor(ahead / this.rate);
    // Stryker disable next-line ArithmeticOperator: calls wait only while the log is full (count = rate = ring size), where ahead ± rounds × rate fall on the same slot
    const index = ahead - rounds * this.rate - (this.rate - this.count);
    const first = index < 0 ? 0 : Math.max(0, this.at(index) - now + this.interval);
    return dueWithin(now, first + rounds * this.interval);
  }

  take(now: number): void {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: an empty log has nothing to clear (at(-1) reads undefined, never ≤ a time)
    if (this.count > 0 && this.at(this.count - 1) <= now - this.interval) this.clear();
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a ring of rate slots grows into a copy of the same size
    if (this.count === this.times.length && this.count < this.rate) this.grow();
    if (this.count === this.rate) {
      // Full: the oldest permit gives its slot to the newest.
      this.times[this.start] = now;
      this.start = (this.start + 1) % this.times.length;
      return;
    }
    this.times[(this.start + this.count) % this.times.length] = now;
    this.count++;
  }

  available(now: number): number {
    // Logged permits are in time order: find the first one inside the window by bisection.
    const since = now - this.interval;
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.at(middle) <= since) low = middle + 1;
      else high = middle;
    }
    return this.rate - (this.count - low);
  }

  atRest(now: number): boolean {
    return this.count === 0 || this.at(this.count - 1) <= now - this.interval;
  }

  private clear(): void {
    this.start = 0;
    this.count = 0;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: replacing a ring of the first size by a new one of that size only costs memory
    if (this.times.length > INITIAL_SLOTS) this.times = new Float64Array(Math.min(this.rate, INITIAL_SLOTS));
  }

  private grow(): void {
    const grown = new Float64Array(Math.min(this.rate, this.times.length * 2));
    // Stryker disable next-line EqualityOperator: one slot more is copied, and written over by the next permit before it is read
    for (let index = 0; index < this.count; index++) grown[index] = this.at(index);
    this.times = grown;
    this.start = 0;
  }
}
