import { describe, expect, it } from 'vitest';
import { SlidingWindow } from '../../src/rate-limit/sliding-window.js';

const T0 = 1_700_000_000_000;

function slots(window: SlidingWindow): number {
  return (window as unknown as { times: Float64Array }).times.length;
}

describe('SlidingWindow: an exact log of the last rate permits', () => {
  it('grants rate permits, then the next one interval after the oldest', () => {
    const window = new SlidingWindow(3, 1_000);
    expect(window.available(T0)).toBe(3);
    window.take(T0);
    window.take(T0 + 100);
    window.take(T0 + 200);
    expect(window.available(T0 + 200)).toBe(0);
    expect(window.waitFor(T0 + 200, 0)).toBe(800);
    expect(window.waitFor(T0 + 200, 1)).toBe(900);
    expect(window.waitFor(T0 + 200, 2)).toBe(1_000);
    // Beyond the log: a permit still to come binds the one rate places after it.
    expect(window.waitFor(T0 + 200, 3)).toBe(1_800);
    expect(window.waitFor(T0 + 200, 7)).toBe(2_900);
    expect(window.waitFor(T0 + 1_000, 0)).toBe(0);
    expect(window.available(T0 + 1_000)).toBe(1);
    expect(window.available(T0 + 1_150)).toBe(2);
    expect(window.atRest(T0 + 1_199)).toBe(false);
    expect(window.atRest(T0 + 1_200)).toBe(true);
  });

  it.each([
    [1, 1],
    [5, 10],
    [100, 1_000],
    [7, 3],
  ])('rate %i per %i ms: taking every permit at its predicted time never puts more than rate in a window', (rate, interval) => {
    const window = new SlidingWindow(rate, interval);
    let now = T0;
    const granted: number[] = [];
    for (let i = 0; i < 5 * rate + 3; i++) {
      now += window.waitFor(now, 0);
      window.take(now);
      granted.push(now);
      if (i % 3 === 0) now += (i * 7) % interval; // some idle gaps
    }
    for (let i = 0; i + rate < granted.length; i++) expect((granted[i + rate] as number) - (granted[i] as number)).toBeGreaterThanOrEqual(interval);
  });

  it('predicts a whole queue exactly', () => {
    const window = new SlidingWindow(4, 100);
    window.take(T0 + 10);
    window.take(T0 + 20);
    const now = T0 + 30;
    const predicted = Array.from({ length: 11 }, (_, ahead) => now + window.waitFor(now, ahead));
    expect(predicted.map((at) => at - T0)).toEqual([30, 30, 110, 120, 130, 130, 210, 220, 230, 230, 310]);
    let clock = now;
    for (const at of predicted) {
      clock = Math.max(clock, at);
      expect(window.waitFor(clock, 0)).toBe(0);
      window.take(clock);
    }
  });

  it('grows its log as permits crowd in, and shrinks it back once they are all interval old', () => {
    const window = new SlidingWindow(100_000, 1_000);
    expect(slots(window)).toBe(8);
    for (let i = 0; i < 1_000; i++) window.take(T0);
    expect(slots(window)).toBe(1_024);
    expect(window.available(T0 + 999)).toBe(99_000);
    expect(window.atRest(T0 + 1_000)).toBe(true);
    window.take(T0 + 1_000);
    expect(slots(window)).toBe(8);
    expect(window.available(T0 + 1_000)).toBe(99_999);
  });

  it('a full log overwrites its oldest permit', () => {
    const window = new SlidingWindow(2, 10);
    for (const at of [0, 10, 20, 30, 31]) {
      expect(window.waitFor(T0 + at, 0)).toBe(0);
      window.take(T0 + at);
    }
    expect(slots(window)).toBe(2);
    expect(window.waitFor(T0 + 31, 0)).toBe(9);
  });
});
