import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CountWindow, TimeWindow, createWindow, describeShape, sameShape } from '../../src/circuit-breaker/window.js';

interface Outcome {
  readonly failed: boolean;
  readonly slow: boolean;
}

const outcomeArb: fc.Arbitrary<Outcome> = fc.record({ failed: fc.boolean(), slow: fc.boolean() });

function totals(outcomes: readonly Outcome[]): { calls: number; failures: number; slowCalls: number } {
  return {
    calls: outcomes.length,
    failures: outcomes.filter((outcome) => outcome.failed).length,
    slowCalls: outcomes.filter((outcome) => outcome.slow).length,
  };
}

function countsOf(window: { calls: number; failures: number; slowCalls: number }): { calls: number; failures: number; slowCalls: number } {
  return { calls: window.calls, failures: window.failures, slowCalls: window.slowCalls };
}

describe('CountWindow', () => {
  it('holds the totals of exactly the last `size` outcomes, whatever the sequence', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(outcomeArb, { maxLength: 60 }), (size, outcomes) => {
        const window = new CountWindow(size);
        outcomes.forEach((outcome, at) => {
          window.record(outcome.failed, outcome.slow);
          expect(countsOf(window)).toEqual(totals(outcomes.slice(Math.max(0, at + 1 - size), at + 1)));
        });
      }),
    );
  });

  it('saves its outcomes oldest first and loads them back into the same totals and order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(outcomeArb, { maxLength: 30 }), fc.array(outcomeArb, { maxLength: 10 }), (size, before, after) => {
        const original = new CountWindow(size);
        for (const outcome of before) original.record(outcome.failed, outcome.slow);
        const saved = original.save();
        const kept = before.slice(Math.max(0, before.length - size));
        if (kept.length === 0) {
          expect(saved).toBeUndefined();
          return;
        }
        expect(saved).toEqual({ calls: size, outcomes: kept.map((outcome) => (outcome.failed ? 1 : 0) | (outcome.slow ? 2 : 0)) });
        const copy = new CountWindow(size);
        copy.load(JSON.parse(JSON.stringify(saved)));
        // the copy behaves as the original from here on: same outcomes leave in the same order
        for (const outcome of after) {
          original.record(outcome.failed, outcome.slow);
          copy.record(outcome.failed, outcome.slow);
          expect(countsOf(copy)).toEqual(countsOf(original));
        }
      }),
    );
  });

  it('clear() empties it, and later outcomes are counted from zero', () => {
    const window = new CountWindow(3);
    window.record(true, true);
    window.record(true, false);
    window.record(false, true);
    window.clear();
    expect(countsOf(window)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
    window.record(false, false);
    window.record(true, false);
    window.record(false, false);
    window.record(false, false); // pushes out the first success after clear(), not a stale failure
    expect(countsOf(window)).toEqual({ calls: 3, failures: 1, slowCalls: 0 });
  });

  it('saves nothing before its first outcome', () => {
    expect(new CountWindow(100).save()).toBeUndefined();
  });

  it('saves nothing once cleared, like a window that never held an outcome (a snapshot of a closed breaker restores into any options)', () => {
    const window = new CountWindow(4);
    window.record(true, false);
    window.clear();
    expect(window.save()).toBeUndefined();
  });
});

describe('TimeWindow', () => {
  const start = 1_700_000_000_000; // a multiple of every bucket width below

  it('drops an outcome between duration − width and duration ms after it was recorded', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(100, 1_000, 30_000),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 400 }), outcome: outcomeArb }), { maxLength: 40 }),
        (duration, buckets, steps) => {
          const window = new TimeWindow(duration, buckets);
          const width = duration / buckets;
          const recorded: { at: number; outcome: Outcome }[] = [];
          let now = start;
          for (const { gap, outcome } of steps) {
            now += gap;
            window.record(outcome.failed, outcome.slow, now);
            recorded.push({ at: now, outcome });
            // What a bucketed window must hold: every outcome from the start of the oldest bucket it keeps.
            const oldestKept = (Math.floor(now / width) - buckets + 1) * width;
            const expected = recorded.filter(({ at }) => at >= oldestKept).map(({ outcome: kept }) => kept);
            expect(countsOf(window)).toEqual(totals(expected));
            for (const { at } of recorded) {
              const age = now - at;
              if (age < duration - width) expect(at).toBeGreaterThanOrEqual(oldestKept); // still in
              if (age >= duration) expect(at).toBeLessThan(oldestKept); // gone
            }
          }
        },
      ),
    );
  });

  it('at the bucket edges: in at duration − 1 ms, out at duration', () => {
    const window = new TimeWindow(1_000, 10);
    window.record(true, false, start);
    window.record(false, true, start + 99);
    window.advance(start + 999);
    expect(countsOf(window)).toEqual({ calls: 2, failures: 1, slowCalls: 1 });
    window.advance(start + 1_000);
    expect(countsOf(window)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });

  it('empties at once after a pause longer than the window', () => {
    const window = new TimeWindow(1_000, 4);
    for (let i = 0; i < 10; i++) window.record(true, false, start + i * 100);
    window.advance(start + 50_000);
    expect(countsOf(window)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
    window.record(false, false, start + 50_000);
    expect(countsOf(window)).toEqual({ calls: 1, failures: 0, slowCalls: 0 });
  });

  it('a clock that goes backwards records into the newest bucket and loses nothing', () => {
    const window = new TimeWindow(1_000, 10);
    window.record(true, false, start + 500);
    window.record(true, false, start + 100); // the clock stepped back
    expect(countsOf(window)).toEqual({ calls: 2, failures: 2, slowCalls: 0 });
    window.advance(start + 1_499);
    expect(window.calls).toBe(2); // both were counted in the bucket of start + 500
    window.advance(start + 1_500);
    expect(window.calls).toBe(0);
  });

  it('saves its live buckets with their start times and loads them into another window at another time', () => {
    const window = new TimeWindow(1_000, 10);
    window.record(true, false, start);
    window.record(false, true, start + 350);
    window.record(false, false, start + 380);
    const saved = window.save(start + 400);
    expect(saved).toEqual({
      duration: 1_000,
      buckets: 10,
      counts: [
        [start, 1, 1, 0],
        [start + 300, 2, 0, 1],
      ],
    });
    const copy = new TimeWindow(1_000, 10);
    copy.load(JSON.parse(JSON.stringify(saved)), start + 950);
    expect(countsOf(copy)).toEqual({ calls: 3, failures: 1, slowCalls: 1 });
    copy.advance(start + 1_000);
    expect(countsOf(copy)).toEqual({ calls: 2, failures: 0, slowCalls: 1 });
    copy.advance(start + 1_300);
    expect(countsOf(copy)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });

  it('loading drops buckets already out of the window and counts buckets from a clock ahead as the newest', () => {
    const copy = new TimeWindow(1_000, 10);
    copy.load(
      {
        duration: 1_000,
        buckets: 10,
        counts: [
          [start - 5_000, 4, 4, 0], // long gone
          [start + 60_000, 1, 1, 1], // from a clock a minute ahead
        ],
      },
      start,
    );
    expect(countsOf(copy)).toEqual({ calls: 1, failures: 1, slowCalls: 1 });
    copy.advance(start + 999);
    expect(copy.calls).toBe(1);
    copy.advance(start + 1_000);
    expect(copy.calls).toBe(0);
  });

  it('uses fractional bucket widths without losing outcomes', () => {
    const window = new TimeWindow(1_000, 3); // 333.33… ms each
    for (let t = 0; t < 1_000; t += 10) window.record(false, false, start + t);
    expect(window.calls).toBe(100);
  });

  it('saves nothing while empty', () => {
    expect(new TimeWindow(1_000, 10).save(start)).toBeUndefined();
  });

  it('saves nothing once its outcomes expired or were cleared', () => {
    const window = new TimeWindow(1_000, 10);
    window.record(true, false, start);
    expect(window.save(start + 1_000)).toBeUndefined();
    window.record(true, false, start + 1_000);
    window.clear();
    expect(window.save(start + 1_000)).toBeUndefined();
  });

  it('a clock set back while the window is empty: an outcome recorded then leaves duration after it, not after the time the clock came from', () => {
    const window = new TimeWindow(1_000, 10);
    window.record(true, false, start + 10_000);
    window.advance(start + 11_000);
    expect(window.calls).toBe(0);
    window.record(true, false, start + 5_000); // the clock was set back 6 s
    window.advance(start + 5_999);
    expect(window.calls).toBe(1);
    window.advance(start + 6_000);
    expect(window.calls).toBe(0);
  });

  it('a window idle for centuries empties in one step, however many buckets the pause spans', () => {
    const window = new TimeWindow(10_000, 10_000); // 1 ms buckets
    window.record(true, true, start);
    window.advance(start + 1e13);
    expect(countsOf(window)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });

  it('keeps buckets apart and expires them on a clock that reads negative times', () => {
    const window = new TimeWindow(1_000, 10);
    window.record(true, false, -1_550);
    window.record(false, true, -1_250);
    expect(countsOf(window)).toEqual({ calls: 2, failures: 1, slowCalls: 1 });
    window.advance(-600); // the bucket of -1 600 is 1 000 ms old: gone
    expect(countsOf(window)).toEqual({ calls: 1, failures: 0, slowCalls: 1 });
    window.advance(-300);
    expect(countsOf(window)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });

  it('loading keeps a saved bucket until duration − 1 ms after it began and drops it at duration', () => {
    const saved = { duration: 1_000, buckets: 10, counts: [[start, 2, 1, 1]] as [number, number, number, number][] };
    const kept = new TimeWindow(1_000, 10);
    kept.load(saved, start + 999);
    expect(countsOf(kept)).toEqual({ calls: 2, failures: 1, slowCalls: 1 });
    const dropped = new TimeWindow(1_000, 10);
    dropped.load(saved, start + 1_000);
    expect(countsOf(dropped)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });

  it('buckets from a clock ahead merge into the newest, and leave it together', () => {
    const copy = new TimeWindow(1_000, 10);
    copy.load(
      {
        duration: 1_000,
        buckets: 10,
        counts: [
          [start + 60_000, 2, 1, 1],
          [start + 61_000, 3, 2, 1],
        ],
      },
      start + 500,
    );
    expect(countsOf(copy)).toEqual({ calls: 5, failures: 3, slowCalls: 2 });
    copy.advance(start + 1_499);
    expect(countsOf(copy)).toEqual({ calls: 5, failures: 3, slowCalls: 2 });
    copy.advance(start + 1_500);
    expect(countsOf(copy)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });

  it('a loaded bucket takes its failures and slow calls away with it when it expires', () => {
    const copy = new TimeWindow(1_000, 10);
    copy.load({ duration: 1_000, buckets: 10, counts: [[start + 300, 3, 2, 1]] }, start + 500);
    expect(countsOf(copy)).toEqual({ calls: 3, failures: 2, slowCalls: 1 });
    copy.advance(start + 1_299);
    expect(countsOf(copy)).toEqual({ calls: 3, failures: 2, slowCalls: 1 });
    copy.advance(start + 1_300);
    expect(countsOf(copy)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });
});

describe('window shapes', () => {
  it('compares and describes shapes', () => {
    expect(sameShape({ calls: 5 }, { calls: 5 })).toBe(true);
    expect(sameShape({ calls: 5 }, { calls: 6 })).toBe(false);
    expect(sameShape({ calls: 5 }, { duration: 5, buckets: 1 })).toBe(false);
    expect(sameShape({ duration: 5, buckets: 1 }, { duration: 5, buckets: 1 })).toBe(true);
    expect(sameShape({ duration: 5, buckets: 1 }, { duration: 5, buckets: 5 })).toBe(false);
    expect(sameShape(undefined, undefined)).toBe(true);
    expect(sameShape(undefined, { calls: 1 })).toBe(false);
    expect(describeShape({ calls: 100 })).toBe('{ calls: 100 }');
    expect(describeShape({ duration: 30_000, buckets: 10 })).toBe('{ duration: 30000, buckets: 10 }');
    expect(createWindow({ calls: 3 })).toBeInstanceOf(CountWindow);
    expect(createWindow({ duration: 3, buckets: 1 })).toBeInstanceOf(TimeWindow);
  });
});
