/**
 * retryWithBackoff({ budget }): the storm it prevents, the healthy traffic it leaves alone,
 * how a call deposits and withdraws, give-up reasons, aborts, metrics, logs, and the budget
 * in a stack with the five policies.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  MetricsRegistry,
  RetryBudget,
  compose,
  isTimeoutError,
  logPolicyEvents,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type Clock,
  type ExecutionContext,
  type LogLevel,
  type PolicyLogger,
  type RetryBudgetOptions,
  type RetryEvents,
  type RetryOptions,
  type RetryPolicy,
} from '../src/index.js';
import { registerOpenTelemetryMetrics } from '../src/otel/index.js';
import { renderPrometheus } from '../src/prometheus/index.js';
import { flushMicrotasks, hangUntilAborted, track } from './fixtures/promises.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const down = (): Promise<never> => Promise.reject(new Error('down'));

/** A deterministic source of numbers in [0, 1) (mulberry32). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface StormResult {
  calls: number;
  attempts: number;
  budgetGiveUps: number;
  exhausted: number;
  failedCalls: number;
}

interface Timer {
  readonly at: number;
  readonly order: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/**
 * A hand-driven Clock for runs with tens of thousands of timers: a binary heap, where fake
 * timers scan every pending timer for each one they fire. `advance` fires due timers in time
 * order, letting promise reactions run after each instant, so a retry armed by one fires in
 * the same advance when it is due.
 */
class StormClock implements Clock {
  time = 0;
  pending = 0;
  private order = 0;
  private readonly heap: Timer[] = [];

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const timer: Timer = { at: this.time + Math.max(0, ms), order: this.order++, callback, cancelled: false };
    this.push(timer);
    this.pending++;
    return timer;
  }

  clearTimeout(handle: unknown): void {
    const timer = handle as Timer;
    if (timer.cancelled) return;
    timer.cancelled = true;
    this.pending--;
  }

  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await macrotask();
    for (let top = this.heap[0]; top !== undefined && top.at <= target; top = this.heap[0]) {
      this.time = top.at;
      while (this.heap[0] !== undefined && (this.heap[0] as Timer).at === this.time) {
        const timer = this.pop();
        if (timer.cancelled) continue;
        timer.cancelled = true;
        this.pending--;
        timer.callback();
      }
      await macrotask();
    }
    this.time = target;
  }

  private before(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    for (let at = heap.length - 1; at > 0; ) {
      const parent = (at - 1) >> 1;
      if (!this.before(heap[at] as Timer, heap[parent] as Timer)) break;
      [heap[at], heap[parent]] = [heap[parent] as Timer, heap[at] as Timer];
      at = parent;
    }
  }

  private pop(): Timer {
    const heap = this.heap;
    const top = heap[0] as Timer;
    const last = heap.pop() as Timer;
    if (heap.length > 0) {
      heap[0] = last;
      for (let at = 0; ; ) {
        const left = 2 * at + 1;
        const right = left + 1;
        let least = at;
        if (left < heap.length && this.before(heap[left] as Timer, heap[least] as Timer)) least = left;
        if (right < heap.length && this.before(heap[right] as Timer, heap[least] as Timer)) least = right;
        if (least === at) break;
        [heap[at], heap[least]] = [heap[least] as Timer, heap[at] as Timer];
        at = least;
      }
    }
    return top;
  }
}

/** A real macrotask turn: every pending promise reaction runs (setImmediate is not faked in these runs). */
const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface StormOptions {
  readonly seconds: number;
  readonly perSecond: number;
  /** The chance that an attempt fails. */
  readonly failureRate: number;
  /** The budget's options; none: no budget. */
  readonly budget?: RetryBudgetOptions;
  /** The retry policies, given the clock and the budget; calls go to each in turn. */
  readonly policies: (clock: Clock, budget: RetryBudget | undefined) => RetryPolicy[];
}

/**
 * `perSecond` calls a second for `seconds` (on a {@link StormClock}) against a dependency whose
 * every attempt fails with probability `failureRate`; then lets every retry finish.
 */
async function storm({ seconds, perSecond, failureRate, budget: budgetOptions, policies: make }: StormOptions): Promise<StormResult> {
  vi.useRealTimers();
  const clock = new StormClock();
  const budget = budgetOptions === undefined ? undefined : new RetryBudget({ ...budgetOptions, clock });
  const policies = make(clock, budget);
  const random = seeded(42);
  const result: StormResult = { calls: 0, attempts: 0, budgetGiveUps: 0, exhausted: 0, failedCalls: 0 };
  const fn = (): Promise<string> => {
    result.attempts++;
    return random() < failureRate ? Promise.reject(new Error('down')) : Promise.resolve('ok');
  };
  for (const policy of policies) {
    policy.on('giveUp', ({ reason }) => {
      if (reason === 'budget-spent') result.budgetGiveUps++;
    });
  }
  budget?.on('exhausted', () => result.exhausted++);
  // 10 calls every 10 ms, or one call every 1000 / perSecond ms when that is rarer.
  const interval = Math.max(10, 1_000 / perSecond);
  const perTick = (perSecond * interval) / 1_000;
  for (let ms = 0; ms < seconds * 1_000; ms += interval) {
    for (let i = 0; i < perTick; i++) {
      const policy = policies[result.calls % policies.length] as RetryPolicy;
      result.calls++;
      policy.execute(fn).catch(() => result.failedCalls++);
    }
    await clock.advance(interval);
  }
  await clock.advance(60_000);
  expect(clock.pending).toBe(0);
  return result;
}

const STORM: RetryOptions = { maxRetries: 3, baseDelay: 100, maxDelay: 1_000, jitter: 'full' };

describe('a dependency failing every call at 1 000 calls a second for 30 s (maxRetries 3)', () => {
  // The bound asserted, for a budget of `ratio`, `minPerSecond` and `window`:
  //   attempts ≤ calls × (1 + ratio) + minPerSecond × (seconds + tail) × 20/19 + reserve
  // - calls × ratio: a retry is withdrawn after its call's deposit, so it leaves the window no
  //   earlier than that deposit: the ratio's share never counts a call that already left;
  // - minPerSecond × …: the reserve (minPerSecond × window / 1000) comes back as the retries
  //   that took it leave the window, which they do after 19/20 of a window at the earliest
  //   (buckets of window / 20); the run lasts `seconds` of calls plus `tail`, the longest
  //   chain of delays after the last call (100 + 200 + 400 ms);
  // - + reserve: the first window's reserve is there at once, before any time has passed.
  // On the defaults this is 36 423 attempts for 30 000 calls, 1.21 per call, where the same
  // run without a budget makes 4 per call (120 000): the test below without a budget.
  const TAIL = 0.7;
  function bound(calls: number, { ratio = 0.2, minPerSecond = 10, window = 10_000 }: RetryBudgetOptions, seconds: number): number {
    return calls * (1 + ratio) + minPerSecond * (seconds + TAIL) * (20 / 19) + (minPerSecond * window) / 1_000;
  }

  it('without a budget makes 4 attempts per call: the storm the budget is for', async () => {
    const result = await storm({ seconds: 30, perSecond: 1_000, failureRate: 1, policies: (clock) => [retryWithBackoff({ ...STORM, random: seeded(1), clock })] });
    expect(result.calls).toBe(30_000);
    expect(result.attempts).toBe(4 * result.calls);
    expect(result.failedCalls).toBe(result.calls);
  });

  it('with a budget adds at most the budgeted load: about 21 % instead of 300 %', async () => {
    const result = await storm({ seconds: 30, perSecond: 1_000, failureRate: 1, budget: {}, policies: (clock, budget) => [retryWithBackoff({ ...STORM, random: seeded(1), clock, budget })] });
    expect(result.calls).toBe(30_000);
    expect(result.attempts).toBeLessThanOrEqual(bound(result.calls, {}, 30));
    // The budget is used, not merely refused: retries reach most of their share.
    expect(result.attempts).toBeGreaterThan(result.calls * 1.19);
    expect(result.failedCalls).toBe(result.calls);
    expect(result.budgetGiveUps).toBe(result.exhausted);
    expect(result.budgetGiveUps).toBeGreaterThan(result.calls * 0.9);
  });

  it('with three retry policies (other maxRetries and delays) sharing one budget, the bound holds for their sum', async () => {
    const result = await storm({
      seconds: 30,
      perSecond: 1_000,
      failureRate: 1,
      budget: {},
      policies: (clock, budget) => [
        retryWithBackoff({ ...STORM, random: seeded(1), clock, budget }),
        retryWithBackoff({ maxRetries: 5, baseDelay: 0, clock, budget }),
        retryWithBackoff({ maxRetries: 2, baseDelay: 300, jitter: 'none', clock, budget }),
      ],
    });
    expect(result.calls).toBe(30_000);
    expect(result.attempts).toBeLessThanOrEqual(bound(result.calls, {}, 30));
    expect(result.attempts).toBeGreaterThan(result.calls * 1.19);
  });

  it('with a tighter budget (ratio 0.05, minPerSecond 1, window 2 s) the bound follows its options', async () => {
    const result = await storm({
      seconds: 30,
      perSecond: 1_000,
      failureRate: 1,
      budget: { ratio: 0.05, minPerSecond: 1, window: 2_000 },
      policies: (clock, budget) => [retryWithBackoff({ ...STORM, random: seeded(3), clock, budget })],
    });
    expect(result.attempts).toBeLessThanOrEqual(bound(result.calls, { ratio: 0.05, minPerSecond: 1, window: 2_000 }, 30));
    expect(result.attempts).toBeGreaterThan(result.calls * 1.04);
  });
});

describe('a healthy dependency', () => {
  it('with 5 % of attempts failing at 1 000 calls a second is never limited', async () => {
    const result = await storm({ seconds: 30, perSecond: 1_000, failureRate: 0.05, budget: {}, policies: (clock, budget) => [retryWithBackoff({ ...STORM, random: seeded(1), clock, budget })] });
    expect(result.budgetGiveUps).toBe(0);
    expect(result.exhausted).toBe(0);
    expect(result.attempts).toBeGreaterThan(result.calls * 1.04);
    expect(result.failedCalls).toBeLessThan(5); // 0.05⁴ of 30 000 calls: about 0.2
  });

  it('with little traffic (one call a second, half failing) retries on the minimum per second', async () => {
    const result = await storm({ seconds: 600, perSecond: 1, failureRate: 0.5, budget: {}, policies: (clock, budget) => [retryWithBackoff({ ...STORM, random: seeded(1), clock, budget })] });
    expect(result.calls).toBe(600);
    expect(result.budgetGiveUps).toBe(0);
    expect(result.attempts).toBeGreaterThan(result.calls * 1.7);
  });
});

describe('retryWithBackoff({ budget }): deposits and withdrawals', () => {
  it('deposits once per call, not per attempt, and withdraws once per retry', async () => {
    const budget = new RetryBudget();
    const deposit = vi.spyOn(budget, 'deposit');
    const retry = retryWithBackoff({ maxRetries: 5, baseDelay: 10, budget });
    const fn = vi.fn((ctx: ExecutionContext) => (ctx.attempt < 4 ? Promise.reject(new Error(`attempt ${ctx.attempt}`)) : 'ok'));
    const outcome = track(retry.execute(fn));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome.value).toBe('ok');
    expect(fn).toHaveBeenCalledTimes(4);
    expect(deposit).toHaveBeenCalledTimes(1);
    expect(budget.available).toBe(97); // floor(100 + 0.2 − 3)
  });

  it('inside another retry, deposits once per run of the policy: once per attempt of the outer one', async () => {
    const outerBudget = new RetryBudget();
    const innerBudget = new RetryBudget();
    const outerDeposits = vi.spyOn(outerBudget, 'deposit');
    const innerDeposits = vi.spyOn(innerBudget, 'deposit');
    const stack = compose(retryWithBackoff({ maxRetries: 2, baseDelay: 0, budget: outerBudget }), retryWithBackoff({ maxRetries: 1, baseDelay: 0, budget: innerBudget }));
    const fn = vi.fn(down);
    await expect(stack.execute(fn)).rejects.toThrow('down');
    expect(fn).toHaveBeenCalledTimes(6);
    expect(outerDeposits).toHaveBeenCalledTimes(1);
    expect(innerDeposits).toHaveBeenCalledTimes(3);
    expect(outerBudget.available).toBe(98); // floor(100 + 0.2 − 2)
    expect(innerBudget.available).toBe(97); // floor(100 + 0.6 − 3)
  });

  it('when the budget is spent, the failure passes through at once: no delay, no retry event, giveUp says why, the budget emits exhausted', async () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0, name: 'api' });
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 1_000, budget });
    const events: unknown[] = [];
    retry.on('retry', (event) => events.push(['retry', event]));
    retry.on('giveUp', (event) => events.push(['giveUp', event]));
    budget.on('exhausted', (event) => events.push(['exhausted', event]));
    const error = new Error('down');
    const outcome = track(retry.execute(() => Promise.reject(error)));
    await flushMicrotasks();
    expect(outcome.rejected).toBe(true);
    expect(outcome.error).toBe(error);
    expect(vi.getTimerCount()).toBe(0);
    expect(events).toEqual([
      ['exhausted', { deposits: 1, withdrawals: 0 }],
      ['giveUp', { error, attempts: 1, reason: 'budget-spent' }],
    ]);
  });

  it('spent after a retry: gives up on the next failure with the attempts made', async () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0.1 }); // a reserve of exactly 1
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 100, budget });
    const giveUp = vi.fn();
    retry.on('giveUp', giveUp);
    const fn = vi.fn(down);
    const outcome = track(retry.execute(fn));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome.rejected).toBe(true);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(giveUp).toHaveBeenCalledWith({ error: outcome.error, attempts: 2, reason: 'budget-spent' });
  });

  it.each<[string, RetryOptions, number, string]>([
    ['retries spent: the last failure takes nothing', { maxRetries: 1, baseDelay: 0 }, 2, 'retries-spent'],
    ['retryOn declined: takes nothing', { maxRetries: 3, baseDelay: 0, retryOn: () => false }, 1, 'not-retryable'],
  ])('%s', async (_, options, attempts, reason) => {
    const budget = new RetryBudget();
    const retry = retryWithBackoff({ ...options, budget });
    const giveUp = vi.fn();
    retry.on('giveUp', giveUp);
    const exhausted = vi.fn();
    budget.on('exhausted', exhausted);
    const error = await retry.execute(down).catch((e: unknown) => e);
    expect(giveUp).toHaveBeenCalledWith({ error, attempts, reason });
    expect(exhausted).not.toHaveBeenCalled();
    expect(budget.available).toBe(100 - (attempts - 1)); // floor(100 + 0.2 − retries)
  });

  it('retries without delay withdraw too, through the streaks that yield to the event loop', async () => {
    const budget = new RetryBudget({ ratio: 1_000, minPerSecond: 0 });
    const retry = retryWithBackoff({ maxRetries: 200, baseDelay: 0, budget });
    const fn = vi.fn(down);
    const outcome = track(retry.execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    expect(outcome.rejected).toBe(true);
    expect(fn).toHaveBeenCalledTimes(201);
    expect(budget.available).toBe(800);
  });
});

describe('retryWithBackoff({ budget }): aborts take nothing', () => {
  it('a caller abort during the delay gives the retry back', async () => {
    const budget = new RetryBudget();
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 1_000, budget });
    const controller = new AbortController();
    const outcome = track(retry.execute(down, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    expect(budget.available).toBe(99); // the retry is taken when its delay starts
    controller.abort(new Error('caller left'));
    await flushMicrotasks();
    expect((outcome.error as Error).message).toBe('caller left');
    expect(budget.available).toBe(100);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the abort of an enclosing timeout during the delay gives it back as well', async () => {
    const budget = new RetryBudget();
    const giveUp = vi.fn();
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 1_000, jitter: 'none', budget });
    retry.on('giveUp', giveUp);
    const outcome = track(compose(withTimeout(500), retry).execute(down));
    await vi.advanceTimersByTimeAsync(499);
    expect(budget.available).toBe(99);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(outcome.error)).toBe(true);
    expect(budget.available).toBe(100);
    expect(giveUp).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each([
    ['one window after', 10_000],
    ['more than a window after', 12_000],
  ])('an abort %s the retry was taken gives nothing back: that withdrawal has already left the window', async (_label, abortAt) => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0.1, window: 10_000 }); // a reserve of 1 retry
    const retry = retryWithBackoff({ maxRetries: 1, baseDelay: 15_000, jitter: 'none', budget });
    const controller = new AbortController();
    const outcome = track(retry.execute(down, { signal: controller.signal }));
    await flushMicrotasks();
    expect(budget.available).toBe(0);
    await vi.advanceTimersByTimeAsync(abortAt);
    controller.abort(new Error('caller left'));
    await flushMicrotasks();
    expect((outcome.error as Error).message).toBe('caller left');
    expect(budget.available, 'the reserve alone, not one more').toBe(1);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('a retry given back leaves its bucket as if it was never taken, also when that bucket leaves the window later', async () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0.2, window: 10_000 }); // a reserve of 2, buckets of 500 ms
    const retry = retryWithBackoff({ maxRetries: 1, baseDelay: 5_000, jitter: 'none', budget });
    await vi.advanceTimersByTimeAsync(1_000);
    const controller = new AbortController();
    const outcome = track(retry.execute(down, { signal: controller.signal }));
    await flushMicrotasks();
    expect(budget.available).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    controller.abort(new Error('caller left'));
    await flushMicrotasks();
    expect(outcome.state).toBe('rejected');
    expect(budget.available).toBe(2);
    await vi.advanceTimersByTimeAsync(3_500); // the window moves on, the bucket of the give-back still in it
    expect(budget.available).toBe(2);
    await vi.advanceTimersByTimeAsync(6_500); // now that bucket has left the window
    expect(budget.available, 'the reserve, not more').toBe(2);
    expect(budget.tryWithdraw() && budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('a zero delay streak aborted while it yields gives its retry back', async () => {
    const budget = new RetryBudget({ ratio: 1_000, minPerSecond: 0 });
    const retry = retryWithBackoff({ maxRetries: Infinity, baseDelay: 0, budget });
    const controller = new AbortController();
    let attempts = 0;
    const outcome = track(
      retry.execute(
        () => {
          attempts++;
          return Promise.reject(new Error('down'));
        },
        { signal: controller.signal },
      ),
    );
    // The 64th retry in a row waits on a 0 ms timer: abort there.
    for (let i = 0; i < 1_000 && vi.getTimerCount() === 0; i++) await Promise.resolve();
    expect(vi.getTimerCount()).toBe(1);
    expect(attempts).toBe(64);
    controller.abort('stop');
    await flushMicrotasks();
    expect(outcome.error).toBe('stop');
    expect(budget.available).toBe(1_000 - (attempts - 1));
  });

  it('a call aborted while its attempt runs takes nothing', async () => {
    const budget = new RetryBudget();
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 10, budget });
    const controller = new AbortController();
    const outcome = track(retry.execute(hangUntilAborted, { signal: controller.signal }));
    await flushMicrotasks();
    controller.abort('stop');
    await vi.advanceTimersByTimeAsync(100);
    expect(outcome.error).toBe('stop');
    expect(budget.available).toBe(100);
  });

  it('a call whose signal is already aborted deposits nothing', async () => {
    const budget = new RetryBudget();
    const deposit = vi.spyOn(budget, 'deposit');
    const retry = retryWithBackoff({ budget });
    await expect(retry.execute(down, { signal: AbortSignal.abort('early') })).rejects.toBe('early');
    expect(deposit).not.toHaveBeenCalled();
  });
});

describe('retryWithBackoff({ budget }): many callers, listeners, options', () => {
  it('100 callers failing at once share the budget exactly: the reserve plus 20 % of 100 calls', async () => {
    const budget = new RetryBudget({ minPerSecond: 1 }); // reserve 10, + 0.2 × 100 = 30 retries
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 100, jitter: 'none', budget });
    const reasons: string[] = [];
    retry.on('giveUp', ({ reason }) => reasons.push(reason));
    let attempts = 0;
    const fn = (): Promise<never> => {
      attempts++;
      return Promise.reject(new Error('down'));
    };
    const outcomes = Array.from({ length: 100 }, () => track(retry.execute(fn)));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcomes.every((outcome) => outcome.rejected)).toBe(true);
    expect(attempts).toBe(130);
    expect(reasons).toEqual(Array.from({ length: 100 }, () => 'budget-spent'));
    expect(budget.available).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('giveUp and exhausted listeners that throw or reject are reported, and the call rejects with its own error', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0 });
    const retry = retryWithBackoff({ budget });
    const broken = [new Error('exhausted listener'), new Error('async exhausted listener'), new Error('giveUp listener'), new Error('async giveUp listener')];
    budget.on('exhausted', () => {
      throw broken[0];
    });
    budget.on('exhausted', () => Promise.reject(broken[1]));
    retry.on('giveUp', () => {
      throw broken[2];
    });
    retry.on('giveUp', () => Promise.reject(broken[3]));
    const error = new Error('down');
    await expect(retry.execute(() => Promise.reject(error))).rejects.toBe(error);
    await flushMicrotasks();
    expect(reported.mock.calls.map((call) => call[1])).toEqual(expect.arrayContaining(broken));
    expect(reported).toHaveBeenCalledTimes(4);
  });

  it('refuses a budget that is not a RetryBudget, and names peers\' options for it', () => {
    expect(() => retryWithBackoff({ budget: {} as RetryBudget })).toThrow(new TypeError('retryWithBackoff budget must be a RetryBudget, got an object'));
    expect(() => retryWithBackoff({ budget: null as unknown as RetryBudget })).toThrow(new TypeError('retryWithBackoff budget must be a RetryBudget, got null'));
    expect(() => retryWithBackoff({ budget: { deposit() {}, tryWithdraw: () => true } as unknown as RetryBudget })).toThrow(TypeError);
    expect(() => retryWithBackoff({ retryBudget: new RetryBudget() } as RetryOptions)).toThrow(/has no option "retryBudget" \(another library's name: bulwark's is "budget"\)/);
    expect(retryWithBackoff({ budget: undefined }).budget).toBeUndefined();
  });
});

function recordingLogger() {
  const lines: [LogLevel, ...unknown[]][] = [];
  const logger = {
    info: (...args: unknown[]) => void lines.push(['info', ...args]),
    warn: (...args: unknown[]) => void lines.push(['warn', ...args]),
    error: (...args: unknown[]) => void lines.push(['error', ...args]),
  } satisfies PolicyLogger;
  return { logger, lines };
}

describe('retryWithBackoff({ budget }): metrics and logs', () => {
  it('MetricsRegistry shows the budget gauge and the counter of budget give-ups; a retry without a budget shows neither', async () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0.1 });
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 0, budget });
    const plain = retryWithBackoff({ maxRetries: 1, baseDelay: 0 });
    const registry = new MetricsRegistry();
    registry.track(retry, { name: 'orders' });
    registry.track(plain, { name: 'plain' });
    await retry.execute(down).catch(() => undefined);
    await retry.execute(down).catch(() => undefined);
    await plain.execute(down).catch(() => undefined);
    const [orders, other] = registry.snapshot().policies;
    expect(orders).toMatchObject({ name: 'orders', kind: 'retry', calls: 2, failures: 2, retries: 1, retryBudgetGiveUps: 2, retryBudgetAvailable: 0 });
    expect(other).toMatchObject({ name: 'plain', kind: 'retry', retries: 1 });
    expect(other).not.toHaveProperty('retryBudgetGiveUps');
    expect(other).not.toHaveProperty('retryBudgetAvailable');
  });

  it('the counter of budget give-ups counts no other give-up', async () => {
    const retry = retryWithBackoff({ maxRetries: 1, baseDelay: 0, budget: new RetryBudget(), retryOn: (error) => (error as Error).message !== 'fatal' });
    const registry = new MetricsRegistry();
    registry.track(retry, { name: 'orders' });
    await retry.execute(down).catch(() => undefined); // retries spent
    await retry.execute(() => Promise.reject(new Error('fatal'))).catch(() => undefined); // not retryable
    expect(registry.snapshot().policies[0]).toMatchObject({ name: 'orders', failures: 2, retries: 1, retryBudgetGiveUps: 0 });
  });

  it('registerOpenTelemetryMetrics creates the counter of budget give-ups and the gauge of the budget with their units and descriptions', () => {
    const made: [string, string, unknown][] = [];
    const observable = () => ({ addCallback() {}, removeCallback() {} });
    const meter = {
      createHistogram: (name: string, options: unknown) => (made.push(['histogram', name, options]), { record() {} }),
      createObservableCounter: (name: string, options: unknown) => (made.push(['counter', name, options]), observable()),
      createObservableUpDownCounter: (name: string, options: unknown) => (made.push(['up-down counter', name, options]), observable()),
      createObservableGauge: (name: string, options: unknown) => (made.push(['gauge', name, options]), observable()),
      addBatchObservableCallback() {},
      removeBatchObservableCallback() {},
    };
    const registry = new MetricsRegistry();
    registry.track(retryWithBackoff({ budget: new RetryBudget() }), { name: 'orders' });
    registerOpenTelemetryMetrics(registry, meter as unknown as Parameters<typeof registerOpenTelemetryMetrics>[1]);
    expect(made.filter(([, name]) => name.includes('budget'))).toEqual([
      ['counter', 'bulwark.retry_budget_give_ups', { description: 'Calls the retry policy gave up on because its retry budget was spent.', unit: '{call}', valueType: 0 }],
      ['up-down counter', 'bulwark.retry.budget.available', { description: "Retries the retry policy's budget would allow now.", unit: '{retry}', valueType: 0 }],
    ]);
  });

  it('renderPrometheus prints the two families with HELP and TYPE lines', async () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0.2 });
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 0, budget });
    const registry = new MetricsRegistry();
    registry.track(retry, { name: 'orders' });
    await retry.execute(down).catch(() => undefined);
    const text = renderPrometheus(registry);
    expect(text).toContain('# TYPE bulwark_retry_budget_give_ups_total counter\n');
    expect(text).toMatch(/bulwark_retry_budget_give_ups_total\{[^}]*policy="orders"[^}]*\} 1\n/);
    expect(text).toContain('# TYPE bulwark_retry_budget_available_retries gauge\n');
    expect(text).toMatch(/bulwark_retry_budget_available_retries\{[^}]*policy="orders"[^}]*\} 0\n/);
    expect(text).toMatch(/# HELP bulwark_retry_budget_available_retries .*budget.*\n/);
  });

  it('logPolicyEvents writes a budget give-up with its reason, and other give-ups as before', async () => {
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 0 });
    const retry = retryWithBackoff({ name: 'orders', maxRetries: 2, baseDelay: 0, budget });
    const { logger, lines } = recordingLogger();
    logPolicyEvents(retry, logger, { summaryInterval: 0 });
    await retry.execute(down).catch(() => undefined);
    const unlimited = retryWithBackoff({ name: 'users', maxRetries: 1, baseDelay: 0, budget: new RetryBudget() });
    logPolicyEvents(unlimited, logger, { summaryInterval: 0 });
    await unlimited.execute(down).catch(() => undefined);
    expect(lines).toEqual([
      [
        'warn',
        { policy: 'orders', kind: 'retry', event: 'giveUp', attempts: 1, reason: 'budget-spent', error: { name: 'Error', message: 'down' } },
        'retry "orders" gave up after 1 attempt, its retry budget spent: down',
      ],
      ['warn', { policy: 'users', kind: 'retry', event: 'giveUp', attempts: 2, error: { name: 'Error', message: 'down' } }, 'retry "users" gave up after 2 attempts: down'],
    ]);
  });

  it('giveUp payloads type their reason', () => {
    const reason: RetryEvents['giveUp']['reason'] = 'budget-spent';
    expect(['retries-spent', 'not-retryable', 'budget-spent']).toContain(reason);
  });
});

describe('retryWithBackoff({ budget }) in a stack with the five', () => {
  it('fallback, breaker, budgeted retry, timeout and bulkhead: the fallback answers, and the budget bounds the attempts', async () => {
    const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 0 });
    const breaker = new CircuitBreaker({ failureThreshold: 1_000 });
    const stack = compose(withFallback('cached'), breaker, retryWithBackoff({ maxRetries: 3, baseDelay: 10, budget }), withTimeout(50), new Bulkhead({ maxConcurrent: 20, maxQueue: 1_000 }));
    let attempts = 0;
    const fn = (): Promise<never> => {
      attempts++;
      return Promise.reject(new Error('down'));
    };
    const outcomes = Array.from({ length: 100 }, () => track(stack.execute(fn)));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(outcomes.every((outcome) => outcome.value === 'cached')).toBe(true);
    expect(attempts).toBe(110); // 10 % of 100 calls
    expect(vi.getTimerCount()).toBe(0);
  });

  it('one budget across two stacks with a timeout per attempt: hanging attempts that time out are retried within the budget', async () => {
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0 });
    const a = compose(retryWithBackoff({ maxRetries: 2, baseDelay: 10, budget }), withTimeout(20));
    const b = compose(retryWithBackoff({ maxRetries: 2, baseDelay: 10, budget }), withTimeout(20));
    let attempts = 0;
    const fn = (ctx: ExecutionContext): Promise<never> => {
      attempts++;
      return hangUntilAborted(ctx);
    };
    const outcomes = [...Array.from({ length: 10 }, () => track(a.execute(fn))), ...Array.from({ length: 10 }, () => track(b.execute(fn)))];
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcomes.every((outcome) => isTimeoutError(outcome.error))).toBe(true);
    expect(attempts).toBe(30);
    expect(vi.getTimerCount()).toBe(0);
  });
});
