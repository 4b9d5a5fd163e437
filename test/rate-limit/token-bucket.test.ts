import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/rate-limit/token-bucket.js';

const T0 = 1_700_000_000_000;

/** Takes permits at `now` while one is due; returns how many. */
function drain(bucket: TokenBucket, now: number): number {
  let taken = 0;
  while (bucket.waitFor(now, 0) === 0) {
    bucket.take(now);
    taken++;
  }
  return taken;
}

describe('TokenBucket: a state machine of clock readings', () => {
  it('starts full: burst permits at once, then one per interval / rate', () => {
    const bucket = new TokenBucket(10, 1_000, 3);
    expect(bucket.available(T0)).toBe(3);
    expect(bucket.atRest(T0)).toBe(true);
    expect(drain(bucket, T0)).toBe(3);
    expect(bucket.available(T0)).toBe(0);
    expect(bucket.atRest(T0)).toBe(false);
    expect(bucket.waitFor(T0, 0)).toBe(100);
    expect(bucket.waitFor(T0 + 40, 0)).toBe(60);
    expect(bucket.waitFor(T0 + 100, 0)).toBe(0);
    expect(bucket.available(T0 + 250)).toBe(2);
    expect(bucket.available(T0 + 300)).toBe(3);
    expect(bucket.atRest(T0 + 300)).toBe(true);
    expect(bucket.available(T0 + 10_000)).toBe(3); // never more than burst
  });

  it.each([
    // rate, interval, burst, taken at T0, ahead, expected wait from T0
    [10, 1_000, 10, 10, 0, 100],
    [10, 1_000, 10, 10, 4, 500],
    [10, 1_000, 10, 0, 9, 0],
    [10, 1_000, 10, 0, 10, 100],
    [10, 1_000, 10, 0, 29, 2_000],
    [3, 1_000, 1, 1, 0, 1_000 / 3],
    [3, 1_000, 1, 1, 2, 1_000],
    [1, 2 ** 31 - 1, 1, 1, 1, 2 * (2 ** 31 - 1)],
    [1_000_000, 1, 5, 5, 999_999, 1],
  ])('rate %i per %i ms, burst %i, %i taken: the permit with %i ahead comes in %d ms', (rate, interval, burst, taken, ahead, wait) => {
    const bucket = new TokenBucket(rate, interval, burst);
    for (let i = 0; i < taken; i++) bucket.take(T0);
    expect(bucket.waitFor(T0, ahead)).toBeCloseTo(wait, 9);
  });

  it('each permit comes exactly when waitFor said, over a long run of rounding-prone rates', () => {
    const bucket = new TokenBucket(3, 1_000, 2);
    drain(bucket, T0);
    let now = T0;
    for (let i = 0; i < 30_000; i++) {
      const wait = bucket.waitFor(now, 0);
      expect(wait).toBeGreaterThan(0);
      now += wait;
      expect(bucket.waitFor(now, 0)).toBe(0);
      bucket.take(now);
    }
    // 30 000 permits at 3 per second after the first 2: 10 000 s, with no drift.
    expect(now - T0).toBeCloseTo(10_000_000, 3);
  });

  it('a late reading grants what refilled meanwhile, never more than burst', () => {
    const bucket = new TokenBucket(1_000, 1_000, 5);
    drain(bucket, T0);
    expect(drain(bucket, T0 + 3)).toBe(3);
    expect(drain(bucket, T0 + 1_000)).toBe(5);
  });

  it('the predicted times of a queue hold as the permits are taken one by one', () => {
    const bucket = new TokenBucket(7, 1_000, 4);
    bucket.take(T0);
    const predicted = Array.from({ length: 20 }, (_, ahead) => T0 + bucket.waitFor(T0, ahead));
    for (const at of predicted) {
      expect(bucket.waitFor(at, 0)).toBe(0);
      bucket.take(at);
    }
    expect(predicted.slice(0, 3)).toEqual([T0, T0, T0]); // 3 tokens left of 4
    // Clock readings near 1.7e12 carry about 2e-4 ms of float: close to the exact times within that.
    expect(predicted.slice(3, 6).map((at) => at - T0)).toEqual([1_000 / 7, 2_000 / 7, 3_000 / 7].map((ms) => expect.closeTo(ms, 3)));
  });

  it('huge rates and bursts do not overflow into wrong answers', () => {
    const huge = new TokenBucket(Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < 1_000; i++) huge.take(T0);
    expect(huge.waitFor(T0, 0)).toBe(0);
    const max = new TokenBucket(Number.MAX_VALUE, 1, 1);
    max.take(T0);
    expect(max.waitFor(T0, 0)).toBe(0); // 1 / MAX_VALUE ms: due now
    expect(max.available(T0 + 1)).toBe(1);
  });
});
