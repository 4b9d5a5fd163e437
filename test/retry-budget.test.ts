/**
 * The retry budget on its own: what it allows, how deposits and withdrawals leave its window,
 * its options at their extremes, its event, and a property test against a model written from
 * its definition.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RetryBudget, type Clock, type RetryBudgetOptions } from '../src/index.js';
import { propertyParameters, propertyRuns } from './fixtures/property.js';

/** A clock read by hand: only `now` is used by a budget. */
function manualClock(start = 1_700_000_000_000): { now: () => number; set: (ms: number) => void; advance: (ms: number) => void } {
  let time = start;
  return {
    now: () => time,
    set: (ms) => {
      time = start + ms;
    },
    advance: (ms) => {
      time += ms;
    },
  };
}

function deposit(budget: RetryBudget, times: number): void {
  for (let i = 0; i < times; i++) budget.deposit();
}

/** Withdraws until refused; returns how many were taken. */
function drain(budget: RetryBudget): number {
  let taken = 0;
  while (budget.tryWithdraw()) taken++;
  return taken;
}

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('RetryBudget: what it allows', () => {
  it('has Finagle defaults: 20 % of calls plus 10 per second over 10 s, so 100 retries with no call', () => {
    const budget = new RetryBudget({ clock: manualClock() });
    expect([budget.ratio, budget.minPerSecond, budget.window, budget.name]).toEqual([0.2, 10, 10_000, undefined]);
    expect(budget.available).toBe(100);
  });

  it('allows minPerSecond × window / 1000 + ratio × deposits − withdrawals, rounded down', () => {
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 1, window: 2_000, clock: manualClock() });
    expect(budget.available).toBe(2);
    deposit(budget, 4);
    expect(budget.available).toBe(2); // 2 + 0.8
    budget.deposit();
    expect(budget.available).toBe(3); // 2 + 1
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.available).toBe(2);
    expect(drain(budget)).toBe(2);
    expect(budget.available).toBe(0);
    deposit(budget, 4);
    expect(budget.available).toBe(0); // 2 + 1.8 − 3 = 0.8
    budget.deposit();
    expect(budget.available).toBe(1);
  });

  it('counts an allowance 1e-9 short of a whole retry as that retry (floating point slack), and no less', () => {
    const budget = new RetryBudget({ ratio: 0.999999999, minPerSecond: 0, clock: manualClock() });
    budget.deposit();
    expect(budget.available).toBe(1);
    expect(budget.tryWithdraw()).toBe(true);
    const short = new RetryBudget({ ratio: 0.99999999, minPerSecond: 0, clock: manualClock() });
    short.deposit();
    expect(short.available).toBe(0);
    expect(short.tryWithdraw()).toBe(false);
  });

  it('refuses without taking anything once spent, and emits exhausted with the window counts each time', () => {
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0, clock: manualClock() });
    const exhausted = vi.fn();
    budget.on('exhausted', exhausted);
    deposit(budget, 3);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
    expect(budget.tryWithdraw()).toBe(false);
    expect(exhausted).toHaveBeenCalledTimes(2);
    expect(exhausted).toHaveBeenLastCalledWith({ deposits: 3, withdrawals: 1 });
    budget.deposit(); // 0.5 × 4 − 1 = 1: the refusals took nothing
    expect(budget.tryWithdraw()).toBe(true);
  });

  it.each([
    [0.1, 10, 1],
    [0.29, 100, 29],
    [0.3, 10, 3],
    [0.7, 10, 7],
    [1 / 3, 3, 1],
    [0.01, 100, 1],
  ])('counts ratio %d × %d deposits as %d whole retries despite floating point', (ratio, deposits, expected) => {
    const budget = new RetryBudget({ ratio, minPerSecond: 0, clock: manualClock() });
    deposit(budget, deposits);
    expect(budget.available).toBe(expected);
    expect(drain(budget)).toBe(expected);
  });

  it('arms no timer, ever', () => {
    vi.useFakeTimers();
    const budget = new RetryBudget();
    deposit(budget, 1_000);
    drain(budget);
    vi.advanceTimersByTime(60_000);
    void budget.available;
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('RetryBudget: the window', () => {
  it('lets a deposit go with its bucket: window / 20 ms wide, so it counts 19/20 of the window at least and the whole window at most', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, window: 1_000, clock });
    budget.deposit(); // at 0, first bucket [0, 50)
    clock.set(49);
    budget.deposit(); // at 49, same bucket
    clock.set(50);
    budget.deposit(); // at 50, second bucket
    clock.set(999);
    expect(budget.available).toBe(3);
    clock.set(1_000); // the first bucket leaves: the deposit made at 49 counted 951 ms, the one at 0 the whole 1 000
    expect(budget.available).toBe(1);
    clock.set(1_049);
    expect(budget.available).toBe(1);
    clock.set(1_050);
    expect(budget.available).toBe(0);
  });

  it('gives back a withdrawal when its bucket leaves', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 1, window: 3_000, clock });
    expect(drain(budget)).toBe(3);
    clock.set(1_500);
    expect(budget.available).toBe(0);
    clock.set(2_999);
    expect(budget.available).toBe(0);
    clock.set(3_000);
    expect(budget.available).toBe(3);
  });

  it('forgets everything after a whole window of silence, and after a jump of the clock far ahead', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, window: 1_000, clock });
    deposit(budget, 5);
    budget.tryWithdraw();
    clock.advance(1_000);
    expect(budget.available).toBe(0);
    deposit(budget, 2);
    clock.advance(1e12);
    expect(budget.available).toBe(0);
    budget.deposit();
    expect(budget.available).toBe(1);
  });

  it('holds its window where it is when the clock steps back or reads NaN', () => {
    let time = 10_000;
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, window: 1_000, clock: { now: () => time } });
    deposit(budget, 2);
    time = 0; // stepped back before the budget was built
    budget.deposit();
    expect(budget.available).toBe(3);
    time = Number.NaN;
    budget.deposit();
    expect(budget.available).toBe(4);
    time = 10_999;
    expect(budget.available).toBe(4);
    time = 11_000;
    expect(budget.available).toBe(0);
  });

  it('keeps its memory constant: a million deposits over many windows leave the same two arrays', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ window: 1_000, clock });
    for (let i = 0; i < 1_000_000; i++) {
      budget.deposit();
      if (i % 10 === 0) budget.tryWithdraw();
      if (i % 1_000 === 0) clock.advance(7);
    }
    const arrays = Object.values(budget).filter((value) => value instanceof Float64Array) as Float64Array[];
    expect(arrays.map((array) => array.length)).toEqual([20, 20]);
    expect(budget.available).toBeGreaterThanOrEqual(0);
  });
});

describe('RetryBudget: extreme options', () => {
  it('ratio 0: only the minimum, whatever the calls', () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 2, window: 1_000, clock: manualClock() });
    deposit(budget, 10_000);
    expect(drain(budget)).toBe(2);
  });

  it('minPerSecond 0 and ratio 0: no retry, ever', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0, clock });
    deposit(budget, 1_000);
    expect(budget.available).toBe(0);
    expect(budget.tryWithdraw()).toBe(false);
    clock.advance(60_000);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('minPerSecond 0: no retry until enough deposits (5 for ratio 0.2)', () => {
    const budget = new RetryBudget({ minPerSecond: 0, clock: manualClock() });
    expect(budget.tryWithdraw()).toBe(false);
    deposit(budget, 4);
    expect(budget.tryWithdraw()).toBe(false);
    budget.deposit();
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('ratio 1 000: a thousand retries per call', () => {
    const budget = new RetryBudget({ ratio: 1_000, minPerSecond: 0, clock: manualClock() });
    budget.deposit();
    expect(budget.available).toBe(1_000);
    expect(drain(budget)).toBe(1_000);
  });

  it('a huge minimum: available stays a safe whole number and every withdrawal is allowed', () => {
    const budget = new RetryBudget({ ratio: 1_000, minPerSecond: Number.MAX_VALUE, window: 2_147_483_647, clock: manualClock() });
    expect(budget.available).toBe(Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < 1_000; i++) expect(budget.tryWithdraw()).toBe(true);
    expect(Number.isSafeInteger(budget.available)).toBe(true);
  });

  it('window 1 ms: the minimum rounds to nothing (10 per second is 0.01 per ms) and each millisecond starts afresh', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 1, window: 1, clock });
    expect(budget.available).toBe(0);
    budget.deposit();
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
    clock.advance(1);
    expect(budget.available).toBe(0);
    budget.deposit();
    expect(budget.available).toBe(1);
  });

  it('the longest window (2³¹ − 1 ms, about 24.8 days): the reserve is minPerSecond × its seconds, and deposits count for weeks', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0.001, window: 2_147_483_647, clock });
    expect(budget.available).toBe(2_147);
    budget.deposit();
    clock.advance(20 * 86_400_000);
    expect(budget.available).toBe(2_148);
    clock.advance(5 * 86_400_000);
    expect(budget.available).toBe(2_147);
  });

  it('a whole window of fractional milliseconds (a performance.now clock) moves on like whole ones', () => {
    let time = 0.25;
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, window: 10, clock: { now: () => time } });
    budget.deposit();
    time = 10.2;
    expect(budget.available).toBe(1);
    time = 10.25;
    expect(budget.available).toBe(0);
  });
});

describe('RetryBudget: options are checked when it is built', () => {
  it.each<[string, unknown, ErrorConstructor, string]>([
    ['ratio not a number', { ratio: '0.2' }, TypeError, 'RetryBudget ratio must be a number, got "0.2"'],
    ['ratio NaN', { ratio: Number.NaN }, RangeError, 'RetryBudget ratio must be a number from 0 to 1000, got NaN'],
    ['ratio negative', { ratio: -0.1 }, RangeError, 'RetryBudget ratio must be a number from 0 to 1000, got -0.1'],
    ['ratio above 1 000', { ratio: 1_000.5 }, RangeError, 'RetryBudget ratio must be a number from 0 to 1000, got 1000.5'],
    ['ratio Infinity', { ratio: Infinity }, RangeError, 'RetryBudget ratio must be a number from 0 to 1000, got Infinity'],
    ['minPerSecond negative', { minPerSecond: -1 }, RangeError, 'RetryBudget minPerSecond must be a finite number ≥ 0, got -1'],
    ['minPerSecond Infinity', { minPerSecond: Infinity }, RangeError, 'RetryBudget minPerSecond must be a finite number ≥ 0, got Infinity'],
    ['minPerSecond NaN', { minPerSecond: Number.NaN }, RangeError, 'RetryBudget minPerSecond must be a number, got NaN'],
    ['minPerSecond a string', { minPerSecond: '10' }, TypeError, 'RetryBudget minPerSecond must be a number, got "10"'],
    ['window 0', { window: 0 }, RangeError, 'RetryBudget window must be a number from 1 to 2147483647 (a duration in ms), got 0'],
    ['window below 1 ms', { window: 0.5 }, RangeError, 'RetryBudget window must be a number from 1 to 2147483647 (a duration in ms), got 0.5'],
    ['window negative', { window: -10 }, RangeError, 'RetryBudget window must be a number from 1 to 2147483647 (a duration in ms), got -10'],
    ['window too long', { window: 2_147_483_648 }, RangeError, 'RetryBudget window must be a number from 1 to 2147483647 (a duration in ms), got 2147483648'],
    ['window Infinity', { window: Infinity }, RangeError, 'RetryBudget window must be a number from 1 to 2147483647 (a duration in ms), got Infinity'],
    ['window null', { window: null }, TypeError, 'RetryBudget window must be a number, got null'],
    ['clock without now', { clock: {} }, TypeError, 'RetryBudget clock must be a Clock with now(), got an object'],
    ['clock null', { clock: null }, TypeError, 'RetryBudget clock must be a Clock with now(), got null'],
    ['clock a function with now', { clock: Object.assign(() => 0, { now: () => 0 }) }, TypeError, 'RetryBudget clock must be a Clock with now(), got a function'],
    ['name a number', { name: 1 }, TypeError, 'RetryBudget name must be a string, got 1'],
    ['options a number', 5, TypeError, 'RetryBudget options must be an object, got 5'],
    ['options null', null, TypeError, 'RetryBudget options must be an object, got null'],
  ])('%s', (_, options, ErrorClass, message) => {
    let thrown: unknown;
    try {
      new RetryBudget(options as RetryBudgetOptions);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ErrorClass);
    expect((thrown as Error).message).toBe(message);
  });

  it.each([
    ['percentCanRetry', '"ratio"'],
    ['tokenRatio', '"ratio"'],
    ['budgetPercent', '"ratio"'],
    ['minRetriesPerSec', '"minPerSecond"'],
    ['minRetriesPerSecond', '"minPerSecond"'],
    ['ttl', '"window"'],
  ])("refuses the peer's name %s, naming bulwark's %s", (key, ours) => {
    expect(() => new RetryBudget({ [key]: 1 } as RetryBudgetOptions)).toThrow(
      new TypeError(`RetryBudget has no option "${key}" (another library's name: bulwark's is ${ours}); known options: "ratio", "minPerSecond", "window", "clock", "name"`),
    );
  });

  it('refuses a misspelt option with a suggestion', () => {
    expect(() => new RetryBudget({ ration: 0.1 } as RetryBudgetOptions)).toThrow(/has no option "ration" \(did you mean "ratio"\?\)/);
  });

  it('accepts undefined for every option, and a Clock with timers (it reads only now)', () => {
    const budget = new RetryBudget({ ratio: undefined, minPerSecond: undefined, window: undefined, clock: undefined, name: undefined });
    expect(budget.available).toBe(100);
    const clock: Clock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} };
    expect(new RetryBudget({ clock, name: 'api' }).name).toBe('api');
  });
});

describe('RetryBudget: events', () => {
  it('on returns the unsubscribe; an unknown event or a listener that is no function is refused', () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0 });
    const listener = vi.fn();
    const off = budget.on('exhausted', listener);
    budget.tryWithdraw();
    off();
    off();
    budget.tryWithdraw();
    expect(listener).toHaveBeenCalledTimes(1);
    expect(() => budget.on('spent' as 'exhausted', listener)).toThrow(new TypeError('Unknown event "spent": expected one of "exhausted"'));
    expect(() => budget.on('exhausted', 'no' as unknown as () => void)).toThrow(TypeError);
  });

  it('a listener that throws or rejects is reported, and the refusal stands', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0 });
    const thrown = new Error('listener broke');
    const rejected = new Error('async listener broke');
    budget.on('exhausted', () => {
      throw thrown;
    });
    budget.on('exhausted', async () => {
      throw rejected;
    });
    const after = vi.fn();
    budget.on('exhausted', after);
    expect(budget.tryWithdraw()).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(after).toHaveBeenCalledTimes(1);
    expect(reported.mock.calls.map((call) => call[1])).toEqual([thrown, rejected]);
  });
});

// ---------------------------------------------------------------------------------------------
// The property: random deposits, withdrawals and steps of time, against a model
// ---------------------------------------------------------------------------------------------

type Step = { readonly op: 'deposit'; readonly times: number } | { readonly op: 'withdraw'; readonly times: number } | { readonly op: 'wait'; readonly ms: number } | { readonly op: 'read' };

/**
 * The budget from its definition, with no ring: every deposit and successful withdrawal kept
 * with its time, and counted while fewer than 20 buckets of window / 20 ms separate its bucket
 * from the current one.
 */
class ModelBudget {
  readonly deposits: number[] = [];
  readonly withdrawals: number[] = [];
  constructor(
    readonly ratio: number,
    readonly minPerSecond: number,
    readonly window: number,
  ) {}
  private counted(times: readonly number[], now: number): number {
    const bucket = (time: number): number => Math.floor((time * 20) / this.window);
    return times.filter((time) => bucket(now) - bucket(time) < 20).length;
  }
  allowance(now: number): number {
    return (this.minPerSecond * this.window) / 1000 + this.ratio * this.counted(this.deposits, now) - this.counted(this.withdrawals, now);
  }
}

describe('RetryBudget: property', () => {
  it('matches the model at every step, and never allows more than its share in any window', () => {
    const options = fc.record({
      ratio: fc.constantFrom(0, 0.1, 0.2, 0.5, 1, 3),
      minPerSecond: fc.constantFrom(0, 0.5, 1, 10),
      window: fc.constantFrom(1, 7, 100, 1_000, 10_000),
    });
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ op: fc.constant('deposit' as const), times: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ op: fc.constant('withdraw' as const), times: fc.integer({ min: 1, max: 10 }) }),
      fc.record({ op: fc.constant('wait' as const), ms: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 15_000 })) }),
      fc.constant({ op: 'read' as const }),
    );
    fc.assert(
      fc.property(options, fc.array(step, { maxLength: 200 }), ({ ratio, minPerSecond, window }, steps) => {
        let now = 0;
        const budget = new RetryBudget({ ratio, minPerSecond, window, clock: { now: () => now } });
        const model = new ModelBudget(ratio, minPerSecond, window);
        const reserve = (minPerSecond * window) / 1000;
        for (const s of steps) {
          if (s.op === 'wait') {
            now += s.ms;
          } else if (s.op === 'deposit') {
            for (let i = 0; i < s.times; i++) budget.deposit();
            for (let i = 0; i < s.times; i++) model.deposits.push(now);
          } else if (s.op === 'withdraw') {
            for (let i = 0; i < s.times; i++) {
              const expected = model.allowance(now) + 1e-9 >= 1;
              if (budget.tryWithdraw() !== expected) return false;
              if (!expected) continue;
              model.withdrawals.push(now);
              // The share, with no reference to buckets: the retries of the last window × 19/20
              // ms are at most the reserve plus ratio × the calls of the last window.
              const recentRetries = model.withdrawals.filter((time) => time > now - (window * 19) / 20).length;
              const recentCalls = model.deposits.filter((time) => time > now - window).length;
              if (recentRetries > reserve + ratio * recentCalls + 1e-9) return false;
            }
          }
          const allowance = model.allowance(now);
          const available = allowance + 1e-9 >= 1 ? Math.floor(allowance + 1e-9) : 0;
          if (budget.available !== available) return false;
        }
        return true;
      }),
      propertyParameters(propertyRuns(300)),
    );
  });
});

describe('RetryBudget: a clock that reads NaN when the budget is built', () => {
  it('still moves its window on once the clock reads numbers', () => {
    let time = Number.NaN;
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, window: 1_000, clock: { now: () => time } });
    time = 5_000;
    budget.deposit();
    expect(budget.available).toBe(1);
    time = 6_000;
    expect(budget.available).toBe(0);
  });
});
