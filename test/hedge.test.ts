import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  BulkheadRejectedError,
  CircuitBreaker,
  CircuitOpenError,
  HedgeLostError,
  HedgePolicy,
  MetricsRegistry,
  RetryBudget,
  TimeoutError,
  compose,
  hedge,
  isRefusal,
  logPolicyEvents,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type Clock,
  type ExecutionContext,
  type HedgeDelayInfo,
  type HedgeEvents,
  type HedgeOptions,
  type LogLevel,
  type PolicyLogger,
} from '../src/index.js';
import { registerOpenTelemetryMetrics, type OtelMeter } from '../src/otel/index.js';
import { renderPrometheus } from '../src/prometheus/index.js';
import { CountingClock } from './fixtures/clock.js';
import { probe } from './fixtures/layer-probe.js';
import { collectingUnhandledRejections, deferred, flushMicrotasks, hang, hangUntilAborted, letNodeReportUnhandledRejections, rejectionOf, track, type Deferred } from './fixtures/promises.js';

// ── Helpers ───────────────────────────────────────────────────────────────────────────────

interface Attempt {
  readonly ctx: ExecutionContext;
  readonly answer: Deferred<unknown>;
  /** Ms after the test's start. */
  readonly at: number;
}

let t0 = 0;
const elapsed = (): number => Date.now() - t0;

/** A function whose attempts the test settles by hand: each call records its context and start time. */
function controlled() {
  const attempts: Attempt[] = [];
  const fn = (ctx: ExecutionContext): Promise<unknown> => {
    const answer = deferred<unknown>();
    attempts.push({ ctx, answer, at: elapsed() });
    return answer.promise;
  };
  const attempt = (n: number): Attempt => {
    const found = attempts[n - 1];
    if (found === undefined) throw new Error(`attempt ${n} never started`);
    return found;
  };
  return { fn, attempts, attempt, starts: () => attempts.map((a) => a.at), numbers: () => attempts.map((a) => a.ctx.attempt) };
}

/** A function that answers `value <attempt>` (or fails with `error <attempt>`) after `ms(attempt)`, and stops when its signal aborts. */
function timed(ms: (attempt: number) => number, fails: (attempt: number) => boolean = () => false) {
  const signals: AbortSignal[] = [];
  const fn = ({ attempt, signal }: ExecutionContext): Promise<string> => {
    signals.push(signal);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (fails(attempt) ? reject(new Error(`error ${attempt}`)) : resolve(`value ${attempt}`)), ms(attempt));
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason);
      }, { once: true });
    });
  };
  return { fn, signals };
}

/** Records every event of a hedging policy, in order. */
function recordEvents(policy: HedgePolicy): string[] {
  const log: string[] = [];
  policy.on('hedge', ({ attempt, trigger }) => void log.push(`hedge ${attempt} ${trigger}`));
  policy.on('won', ({ attempt }) => void log.push(`won ${attempt}`));
  policy.on('budgetExhausted', ({ attempt }) => void log.push(`budgetExhausted ${attempt}`));
  return log;
}

/** A budget that allows `allowed` hedges, then refuses, and counts what it was asked. */
function fakeBudget(allowed: number) {
  const budget = {
    deposits: 0,
    withdrawals: 0,
    refusals: 0,
    deposit: () => void budget.deposits++,
    tryWithdraw: (): boolean => {
      if (budget.withdrawals >= allowed) {
        budget.refusals++;
        return false;
      }
      budget.withdrawals++;
      return true;
    },
  };
  return budget;
}

/** What reached the console: the line naming what failed, then the error's message. */
const reported = (spy: { mock: { calls: unknown[][] } }): string[] => spy.mock.calls.map((call) => `${String(call[0])} ${String((call[1] as Error)?.message ?? call[1])}`);

beforeEach(() => {
  vi.useFakeTimers();
  t0 = Date.now();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

// ── HedgeLostError ───────────────────────────────────────────────────────────────────────
// First in the file: the first HedgeLostError made brands the class as a refusal.

describe('HedgeLostError', () => {
  it('is a refusal (a breaker inside does not count a loser), names the winner, and says which attempt settled the call', () => {
    const lost = new HedgeLostError(3);
    expect(isRefusal(lost)).toBe(true);
    expect(isRefusal(new HedgeLostError(2))).toBe(true);
    expect(lost).toMatchObject({ name: 'HedgeLostError', winner: 3, message: 'Attempt 3 of the hedged call settled it first' });
  });
});

// ── Options ───────────────────────────────────────────────────────────────────────────────

describe('hedge: options', () => {
  it('has the defaults of Polly: delay 2 000 ms, one hedged attempt', () => {
    expect(hedge()).toMatchObject({ delay: 2_000, maxHedgedAttempts: 1, name: undefined });
    expect(hedge({ name: 'search' }).name).toBe('search');
  });

  it.each<[string, HedgeOptions, ErrorConstructor, string]>([
    ['a negative delay', { delay: -1 }, RangeError, 'hedge delay must be a duration in ms from 0 to 2147483647 or Infinity, got -1'],
    ['a NaN delay', { delay: Number.NaN }, RangeError, 'hedge delay must be a number, got NaN'],
    ['a delay no timer can wait', { delay: 2 ** 31 }, RangeError, 'hedge delay must be a duration in ms from 0 to 2147483647 or Infinity, got 2147483648'],
    ['a delay that is a string', { delay: '10' as never }, TypeError, 'hedge delay must be a duration in ms or a function, got "10"'],
    ['a delay that is null', { delay: null as never }, TypeError, 'hedge delay must be a duration in ms or a function, got null'],
    ['negative hedged attempts', { maxHedgedAttempts: -1 }, RangeError, 'hedge maxHedgedAttempts must be a whole number ≥ 0, got -1'],
    ['fractional hedged attempts', { maxHedgedAttempts: 1.5 }, RangeError, 'hedge maxHedgedAttempts must be a whole number ≥ 0, got 1.5'],
    ['more than 10 hedged attempts', { maxHedgedAttempts: 11 }, RangeError, 'hedge maxHedgedAttempts must be a whole number from 0 to 10, got 11'],
    ['Infinity hedged attempts', { maxHedgedAttempts: Infinity }, RangeError, 'hedge maxHedgedAttempts must be a whole number ≥ 0, got Infinity'],
    ['NaN hedged attempts', { maxHedgedAttempts: Number.NaN }, RangeError, 'hedge maxHedgedAttempts must be a number, got NaN'],
    ['hedged attempts as a string', { maxHedgedAttempts: '1' as never }, TypeError, 'hedge maxHedgedAttempts must be a number, got "1"'],
    ['hedgeOn that is not a function', { hedgeOn: true as never }, TypeError, 'hedge hedgeOn must be a function, got true'],
    ['hedgeOnResult that is not a function', { hedgeOnResult: 1 as never }, TypeError, 'hedge hedgeOnResult must be a function, got 1'],
    ['a budget without deposit', { budget: { tryWithdraw: () => true } as never }, TypeError, 'hedge budget must be an object with deposit() and tryWithdraw() (a RetryBudget), got an object'],
    ['a budget that is null', { budget: null as never }, TypeError, 'hedge budget must be an object with deposit() and tryWithdraw() (a RetryBudget), got null'],
    ['a budget that is a function, even with both methods', { budget: Object.assign(() => {}, { deposit() {}, tryWithdraw: () => true }) as never }, TypeError, 'hedge budget must be an object with deposit() and tryWithdraw() (a RetryBudget), got a function'],
    ['a budget without tryWithdraw', { budget: { deposit() {} } as never }, TypeError, 'hedge budget must be an object with deposit() and tryWithdraw() (a RetryBudget), got an object'],
    ['a budget that is a number', { budget: 3 as never }, TypeError, 'hedge budget must be an object with deposit() and tryWithdraw() (a RetryBudget), got 3'],
    ['a clock without now', { clock: { setTimeout() {}, clearTimeout() {} } as never }, TypeError, 'hedge clock must be a Clock with now(), setTimeout() and clearTimeout(), got an object'],
    ['a name that is not a string', { name: 5 as never }, TypeError, 'hedge name must be a string, got 5'],
  ])('refuses %s', (_what, options, type, message) => {
    expect(() => hedge(options)).toThrow(type);
    expect(() => hedge(options)).toThrow(message);
  });

  it('refuses options that are not an object, an unknown key with a suggestion, and names Polly’s options as its own', () => {
    expect(() => hedge(5 as never)).toThrow(new TypeError('hedge options must be an object, got 5'));
    expect(() => hedge({ dlay: 5 } as never)).toThrow('hedge has no option "dlay" (did you mean "delay"?)');
    expect(() => hedge({ shouldHandle: () => true } as never)).toThrow('hedge has no option "shouldHandle" (another library\'s name: bulwark\'s is "hedgeOn" or "hedgeOnResult")');
    expect(() => hedge({ delayGenerator: () => 5 } as never)).toThrow('(another library\'s name: bulwark\'s is "delay" (a function))');
    expect(() => hedge({ maxAttempts: 2 } as never)).toThrow('"maxHedgedAttempts" (attempts beyond the first)');
    expect(() => hedge({ onHedging: () => {} } as never)).toThrow("on('hedge', listener)");
    expect(() => hedge({ hedgingDelay: 5 } as never)).toThrow(new TypeError('hedge has no option "hedgingDelay" (another library\'s name: bulwark\'s is "delay"); known options: "delay", "maxHedgedAttempts", "hedgeOn", "hedgeOnResult", "budget", "clock", "name"'));
    expect(() => hedge({ handleWhenResult: () => true } as never)).toThrow(new TypeError('hedge has no option "handleWhenResult" (another library\'s name: bulwark\'s is "hedgeOnResult"); known options: "delay", "maxHedgedAttempts", "hedgeOn", "hedgeOnResult", "budget", "clock", "name"'));
    expect(() => hedge({ hedges: 2 } as never)).toThrow(new TypeError('hedge has no option "hedges" (another library\'s name: bulwark\'s is "maxHedgedAttempts"); known options: "delay", "maxHedgedAttempts", "hedgeOn", "hedgeOnResult", "budget", "clock", "name"'));
    expect(() => hedge({ nope: 1 } as never)).toThrow('known options: "delay", "maxHedgedAttempts", "hedgeOn", "hedgeOnResult", "budget", "clock", "name"');
  });

  it('accepts every extreme: delay 0, Infinity and the longest timer, 0 and 10 hedged attempts, a delay function', () => {
    const delay = (): number => 5;
    expect(hedge({ delay: 0 }).delay).toBe(0);
    expect(hedge({ delay: Infinity }).delay).toBe(Infinity);
    expect(hedge({ delay: 2_147_483_647 }).delay).toBe(2_147_483_647);
    expect(hedge({ delay }).delay).toBe(delay);
    expect(hedge({ maxHedgedAttempts: 0 }).maxHedgedAttempts).toBe(0);
    expect(hedge({ maxHedgedAttempts: 10 }).maxHedgedAttempts).toBe(10);
    expect(hedge({ delay: undefined, maxHedgedAttempts: undefined, hedgeOn: undefined, budget: undefined, clock: undefined, name: undefined })).toMatchObject({ delay: 2_000, maxHedgedAttempts: 1 });
  });

  it('runs a hedge after the longest delay a timer can wait, and not a millisecond before', async () => {
    const { fn, attempts } = controlled();
    const call = track(hedge({ delay: 2_147_483_647 }).execute(fn));
    await vi.advanceTimersByTimeAsync(2_147_483_646);
    expect(attempts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toHaveLength(2);
    attempts[1]?.answer.resolve('late');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('late');
  });
});

// ── Timing ────────────────────────────────────────────────────────────────────────────────

describe('hedge: when attempts start', () => {
  it('starts the hedge when the delay is exactly reached, as attempt 2, and not a millisecond before', async () => {
    const { fn, attempt, starts, numbers } = controlled();
    const call = track(hedge({ delay: 100 }).execute(fn));
    await vi.advanceTimersByTimeAsync(99);
    expect(starts()).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts()).toEqual([0, 100]);
    expect(numbers()).toEqual([1, 2]);
    attempt(2).answer.resolve('from the hedge');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('from the hedge');
  });

  it('with the default delay, hedges after 2 000 ms', async () => {
    const { fn, starts } = controlled();
    const call = hedge().execute(fn);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(starts()).toEqual([0, 2_000]);
    void call.catch(() => undefined);
  });

  it('an answer before the delay starts no hedge and leaves no timer', async () => {
    const { fn, attempt, attempts } = controlled();
    const call = track(hedge({ delay: 100 }).execute(fn));
    await vi.advanceTimersByTimeAsync(99);
    attempt(1).answer.resolve('fast');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('fast');
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(attempts).toHaveLength(1);
  });

  it('an answer whose timer fires in the same instant as the hedge timer, but first, starts no hedge', async () => {
    const { fn } = timed(() => 100);
    const seen: number[] = [];
    const call = track(hedge({ delay: 100 }).execute((ctx) => (seen.push(ctx.attempt), fn(ctx))));
    await vi.advanceTimersByTimeAsync(100);
    expect(call.value).toBe('value 1');
    expect(seen).toEqual([1]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an answer in the same instant as the hedge timer, but after it: the hedge starts, the first attempt still wins and the hedge is aborted', async () => {
    const signals: AbortSignal[] = [];
    const policy = hedge({ delay: 100 });
    const events = recordEvents(policy);
    // The answer's timer is armed some microtasks later, after the hedge's: at 100 ms the hedge's fires first.
    const call = track(
      policy.execute((ctx) => {
        signals.push(ctx.signal);
        return ctx.attempt === 1 ? flushMicrotasks().then(() => new Promise((resolve) => setTimeout(() => resolve('first'), 100))) : hangUntilAborted(ctx);
      }),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(call.value).toBe('first');
    expect(events).toEqual(['hedge 2 delay']);
    expect(signals[1]?.reason).toBeInstanceOf(HedgeLostError);
    expect(signals[0]?.aborted).toBe(false);
  });

  it('delay 0 starts every attempt at once, in the call’s own turn, and arms no timer', async () => {
    const { fn, numbers, attempt } = controlled();
    const policy = hedge({ delay: 0, maxHedgedAttempts: 3 });
    const events = recordEvents(policy);
    const call = track(policy.execute(fn));
    expect(numbers()).toEqual([1, 2, 3, 4]);
    expect(vi.getTimerCount()).toBe(0);
    expect(events).toEqual(['hedge 2 delay', 'hedge 3 delay', 'hedge 4 delay']);
    attempt(3).answer.resolve('third');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('third');
    expect(events.at(-1)).toBe('won 3');
    for (const n of [1, 2, 4]) expect(attempt(n).ctx.signal.reason).toEqual(new HedgeLostError(3));
    expect(attempt(3).ctx.signal.aborted).toBe(false);
  });

  it('delay Infinity hedges only on failure: the next attempt starts at once when one fails, and no timer is ever armed', async () => {
    const { fn, attempt, starts } = controlled();
    const policy = hedge({ delay: Infinity, maxHedgedAttempts: 2 });
    const events = recordEvents(policy);
    const call = track(policy.execute(fn));
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000_000);
    expect(starts()).toEqual([0]);
    attempt(1).answer.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(starts()).toEqual([0, 1_000_000]);
    expect(vi.getTimerCount()).toBe(0);
    attempt(2).answer.resolve('recovered');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('recovered');
    expect(events).toEqual(['hedge 2 failure', 'won 2']);
  });

  it('a failure starts the next attempt at once, without waiting for its delay, and the delay of the one after counts from then', async () => {
    const { fn, attempt, starts } = controlled();
    const call = track(hedge({ delay: 100, maxHedgedAttempts: 3 }).execute(fn));
    await vi.advanceTimersByTimeAsync(30);
    attempt(1).answer.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(starts()).toEqual([0, 30]);
    await vi.advanceTimersByTimeAsync(100);
    expect(starts()).toEqual([0, 30, 130]);
    attempt(2).answer.resolve('ok');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('ok');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a delay function is asked for each hedge with its number, its attempt and the call’s context', async () => {
    const { fn, starts, attempt } = controlled();
    const asked: HedgeDelayInfo[] = [];
    const delay = (info: HedgeDelayInfo): number => (asked.push(info), info.hedge * 10);
    const call = track(hedge({ delay, maxHedgedAttempts: 3 }).execute(fn));
    await vi.advanceTimersByTimeAsync(100);
    expect(starts()).toEqual([0, 10, 30, 60]);
    expect(asked.map(({ hedge: h, attempt: a }) => [h, a])).toEqual([[1, 2], [2, 3], [3, 4]]);
    expect(asked[0]?.context.attempt).toBe(1);
    expect(asked[0]?.context.signal).toBeInstanceOf(AbortSignal);
    attempt(4).answer.resolve('fourth');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('fourth');
  });

  it('a delay function may answer 0 (start at once) and Infinity (only on failure) per hedge', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { fn, starts, attempt } = controlled();
    const call = track(hedge({ delay: ({ hedge: h }) => (h === 1 ? 0 : Infinity), maxHedgedAttempts: 2 }).execute(fn));
    expect(starts()).toEqual([0, 0]);
    expect(vi.getTimerCount()).toBe(0);
    attempt(2).answer.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(starts()).toEqual([0, 0, 0]);
    attempt(3).answer.resolve('third');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('third');
    expect(errors).not.toHaveBeenCalled();
  });

  it('a delay function may answer the longest delay a timer can wait: the hedge starts then, and nothing is reported', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { fn, attempts } = controlled();
    const call = track(hedge({ delay: () => 2_147_483_647 }).execute(fn));
    await vi.advanceTimersByTimeAsync(2_147_483_646);
    expect(attempts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toHaveLength(2);
    expect(errors).not.toHaveBeenCalled();
    attempts[1]?.answer.resolve('late');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('late');
  });

  it.each<[string, unknown, string]>([
    ['a negative number', -1, 'got -1'],
    ['NaN', Number.NaN, 'got NaN'],
    ['a string', '10', 'got "10"'],
    ['a delay no timer can wait', 2 ** 31, 'got 2147483648'],
    ['undefined', undefined, 'got undefined'],
  ])('a delay function answering %s is reported and read as Infinity: no hedge until a failure', async (_what, answer, got) => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { fn, attempt, starts } = controlled();
    const call = track(hedge({ delay: () => answer as number }).execute(fn));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(starts()).toEqual([0]);
    expect(reported(errors)).toEqual([`bulwark: the hedge delay function failed hedge delay(info) must return a duration in ms from 0 to 2147483647 or Infinity, ${got}; read as Infinity`]);
    attempt(1).answer.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(starts()).toEqual([0, 10_000]);
    attempt(2).answer.resolve('ok');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('ok');
  });

  it('a delay function that throws, or returns a promise that rejects, is reported, never unhandled, and read as Infinity', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const throwing = controlled();
    const first = track(hedge({ delay: () => { throw new Error('delay bug'); } }).execute(throwing.fn));
    const asyncDelay = controlled();
    const second = track(hedge({ delay: (async () => { throw new Error('async delay bug'); }) as never }).execute(asyncDelay.fn));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(throwing.attempts).toHaveLength(1);
    expect(asyncDelay.attempts).toHaveLength(1);
    expect(reported(errors).sort()).toEqual([
      'bulwark: the hedge delay function failed async delay bug',
      'bulwark: the hedge delay function failed delay bug',
      'bulwark: the hedge delay function failed hedge delay(info) must return a duration in ms from 0 to 2147483647 or Infinity, got a promise; read as Infinity',
    ]);
    throwing.attempt(1).answer.resolve(1);
    asyncDelay.attempt(1).answer.resolve(2);
    await vi.advanceTimersByTimeAsync(0);
    expect([first.value, second.value]).toEqual([1, 2]);
  });

  it('maxHedgedAttempts 0 passes calls through: one attempt, its failure as it is, no timer, no abort race', async () => {
    const budget = fakeBudget(5);
    const policy = hedge({ maxHedgedAttempts: 0, delay: 0, budget });
    const events = recordEvents(policy);
    const failure = new Error('down');
    const contexts: ExecutionContext[] = [];
    expect(await rejectionOf(policy.execute((ctx) => (contexts.push(ctx), Promise.reject(failure))))).toBe(failure);
    expect(await policy.execute(({ attempt }) => attempt)).toBe(1);
    expect(contexts.map((ctx) => ctx.attempt)).toEqual([1]);
    expect(events).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    expect(budget).toMatchObject({ deposits: 2, withdrawals: 0 });
  });

  it('maxHedgedAttempts 1 makes at most 2 attempts, even when both fail, and rejects with the last failure', async () => {
    const { fn } = timed((attempt) => (attempt === 1 ? 50 : 10), () => true);
    const seen: number[] = [];
    const call = track(hedge({ delay: 20 }).execute((ctx) => (seen.push(ctx.attempt), fn(ctx))));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(seen).toEqual([1, 2]);
    // attempt 2 failed at 30 ms, attempt 1 at 50 ms: the last failure is attempt 1's
    expect(call.error).toEqual(new Error('error 1'));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('maxHedgedAttempts 10 makes at most 11 attempts, and all 11 at once with delay 0', async () => {
    const seen: number[] = [];
    const failing = (ctx: ExecutionContext): Promise<never> => (seen.push(ctx.attempt), Promise.reject(new Error(`error ${ctx.attempt}`)));
    expect(await rejectionOf(hedge({ maxHedgedAttempts: 10, delay: 5 }).execute(failing))).toEqual(new Error('error 11'));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const parallel = controlled();
    const call = track(hedge({ maxHedgedAttempts: 10, delay: 0 }).execute(parallel.fn));
    expect(parallel.numbers()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    parallel.attempt(11).answer.resolve('eleventh');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('eleventh');
  });

  it('an injected clock whose setTimeout throws is reported; the call still answers, only without hedging on time', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const clock: Clock = { now: () => 0, setTimeout: () => { throw new Error('clock bug'); }, clearTimeout: () => {} };
    const { fn, attempt, attempts } = controlled();
    const call = track(hedge({ delay: 10, clock }).execute(fn));
    await vi.advanceTimersByTimeAsync(100);
    expect(attempts).toHaveLength(1);
    expect(reported(errors)).toEqual(['bulwark: the hedge clock.setTimeout() failed clock bug']);
    attempt(1).answer.resolve('first');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('first');
  });

  it('drives its delays through an injected clock, and clears the timer of a hedge it no longer needs', async () => {
    vi.useRealTimers();
    const clock = new CountingClock();
    const { fn, attempt, attempts } = controlled();
    const call = track(hedge({ delay: 100, maxHedgedAttempts: 2, clock }).execute(fn));
    await clock.advance(100);
    expect(attempts).toHaveLength(2);
    expect(clock.armed).toBe(1);
    attempt(1).answer.resolve('first');
    await clock.advance(0);
    expect(call.value).toBe('first');
    expect(clock).toMatchObject({ armed: 0, created: 2, cleared: 1 });
  });
});

// ── Outcomes ──────────────────────────────────────────────────────────────────────────────

describe('hedge: which outcome answers', () => {
  it('the first value wins; every other attempt is aborted through its signal with a HedgeLostError, a refusal', async () => {
    const { fn, attempt } = controlled();
    const call = track(hedge({ delay: 10, maxHedgedAttempts: 2 }).execute(fn));
    await vi.advanceTimersByTimeAsync(20);
    attempt(2).answer.resolve('second');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('second');
    const reason = attempt(1).ctx.signal.reason as HedgeLostError;
    expect(reason).toBe(attempt(3).ctx.signal.reason);
    expect(reason).toMatchObject({ name: 'HedgeLostError', winner: 2, message: 'Attempt 2 of the hedged call settled it first' });
    expect(isRefusal(reason)).toBe(true);
    expect(attempt(2).ctx.signal.aborted).toBe(false);
  });

  it('the late outcomes of losers reach no one: never an unhandled rejection', async () => {
    await collectingUnhandledRejections(async (unhandled) => {
      const { fn, attempt } = controlled();
      const call = hedge({ delay: 0, maxHedgedAttempts: 3 }).execute(fn);
      attempt(1).answer.resolve('first');
      expect(await call).toBe('first');
      attempt(2).answer.reject(new Error('late failure'));
      attempt(3).answer.resolve('late value');
      attempt(4).answer.reject(new Error('another late failure'));
      await letNodeReportUnhandledRejections();
      expect(unhandled).toEqual([]);
    });
  });

  it('a failure hedgeOn accepts falls through; the other attempts go on and may still answer', async () => {
    const { fn, attempt } = controlled();
    const call = track(hedge({ delay: 10, maxHedgedAttempts: 1 }).execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    attempt(2).answer.reject(new Error('hedge failed'));
    await vi.advanceTimersByTimeAsync(0);
    expect(call.settled).toBe(false);
    attempt(1).answer.resolve('first, late');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('first, late');
  });

  it('when every attempt failed, rejects with the last failure in time order', async () => {
    const { fn, attempt } = controlled();
    const call = track(hedge({ delay: 0, maxHedgedAttempts: 2 }).execute(fn));
    attempt(3).answer.reject(new Error('third'));
    attempt(1).answer.reject(new Error('first'));
    await vi.advanceTimersByTimeAsync(0);
    expect(call.settled).toBe(false);
    attempt(2).answer.reject(new Error('second, last'));
    await vi.advanceTimersByTimeAsync(0);
    expect(call.error).toEqual(new Error('second, last'));
  });

  it('hedgeOn is asked with the error and the attempt that failed; a failure it declines answers at once and aborts the others', async () => {
    const asked: [string, number][] = [];
    const hedgeOn = vi.fn((error: unknown, attempt: number) => (asked.push([(error as Error).message, attempt]), (error as Error).message !== 'not found'));
    const { fn, attempt } = controlled();
    const call = track(hedge({ delay: 10, maxHedgedAttempts: 3, hedgeOn }).execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    attempt(2).answer.reject(new Error('busy'));
    await vi.advanceTimersByTimeAsync(0);
    attempt(3).answer.reject(new Error('not found'));
    await vi.advanceTimersByTimeAsync(0);
    expect(call.error).toEqual(new Error('not found'));
    expect(asked).toEqual([['busy', 2], ['not found', 3]]);
    expect(attempt(1).ctx.signal.reason).toEqual(new HedgeLostError(3));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with what a throwing hedgeOn threw, and refuses a hedgeOn that answers with a promise', async () => {
    const bug = new Error('hedgeOn bug');
    const throwing = controlled();
    const first = track(hedge({ hedgeOn: () => { throw bug; } }).execute(throwing.fn));
    throwing.attempt(1).answer.reject(new Error('down'));
    const asyncOn = controlled();
    const second = track(hedge({ hedgeOn: (async () => true) as never }).execute(asyncOn.fn));
    asyncOn.attempt(1).answer.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(first.error).toBe(bug);
    expect(second.error).toEqual(new TypeError('hedge hedgeOn must return its answer synchronously, got a promise (an async function?)'));
  });

  it('a refusal (declined by default) while another attempt runs stops further hedges; the running attempt still answers', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const policy = hedge({ delay: 10, maxHedgedAttempts: 3 });
    const events = recordEvents(policy);
    const { fn, attempt, attempts } = controlled();
    const call = track(compose(policy, bulkhead).execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    // Attempt 2 was refused by the full bulkhead: no attempt 3 or 4, however long attempt 1 takes.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(attempts).toHaveLength(1);
    expect(events).toEqual(['hedge 2 delay']);
    expect(vi.getTimerCount()).toBe(0);
    attempt(1).answer.resolve('first');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('first');
  });

  it('a refusal of the only attempt running answers: an open circuit rejects the call without running it', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    breaker.isolate();
    const fn = vi.fn();
    expect(await rejectionOf(compose(hedge({ delay: 0, maxHedgedAttempts: 2 }), breaker).execute(fn))).toBeInstanceOf(CircuitOpenError);
    expect(fn).not.toHaveBeenCalled();
  });

  it('a refusal after the others failed answers with the last failure', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const { fn, attempt } = controlled();
    const call = track(compose(hedge({ delay: 10, maxHedgedAttempts: 2 }), bulkhead).execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    attempt(1).answer.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(call.error).toEqual(new Error('down'));
  });

  it('a hedgeOn that accepts refusals falls through them: the next attempt starts at once', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const { fn, attempts } = controlled();
    const call = track(compose(hedge({ delay: 10, maxHedgedAttempts: 3, hedgeOn: () => true }), bulkhead).execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    // Attempts 2, 3 and 4 were refused one after the other at 10 ms.
    expect(attempts).toHaveLength(1);
    expect(call.settled).toBe(false);
    attempts[0]?.answer.resolve('first');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('first');
    // Every attempt refused: the call rejects with the last refusal.
    const held = compose(bulkhead).execute(hang);
    void held;
    expect(await rejectionOf(compose(hedge({ maxHedgedAttempts: 3, hedgeOn: () => true }), bulkhead).execute(hang))).toBeInstanceOf(BulkheadRejectedError);
  });
});

// ── Budget ────────────────────────────────────────────────────────────────────────────────

describe('hedge: budget', () => {
  it('deposits once per call and withdraws before each hedge, never for the first attempt', async () => {
    const budget = fakeBudget(10);
    const policy = hedge({ delay: 10, maxHedgedAttempts: 2, budget });
    const { fn, attempt } = controlled();
    const call = track(policy.execute(fn));
    expect(budget).toMatchObject({ deposits: 1, withdrawals: 0 });
    await vi.advanceTimersByTimeAsync(20);
    expect(budget).toMatchObject({ deposits: 1, withdrawals: 2 });
    attempt(1).answer.resolve('first');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('first');
    expect(await policy.execute(() => 'fast')).toBe('fast');
    expect(budget).toMatchObject({ deposits: 2, withdrawals: 2 });
  });

  it('a refused hedge does not start, nor any later one of the call; the running attempts go on; budgetExhausted says so', async () => {
    const budget = fakeBudget(1);
    const policy = hedge({ delay: 10, maxHedgedAttempts: 3, budget });
    const events = recordEvents(policy);
    const { fn, attempt, attempts } = controlled();
    const call = track(policy.execute(fn));
    await vi.advanceTimersByTimeAsync(100);
    expect(attempts).toHaveLength(2);
    expect(events).toEqual(['hedge 2 delay', 'budgetExhausted 3']);
    expect(budget.refusals).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    // A failure now starts nothing either: the other attempt still answers.
    attempt(2).answer.reject(new Error('hedge failed'));
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts).toHaveLength(2);
    attempt(1).answer.resolve('first');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('first');
  });

  it('after a refused hedge, a failure asks the budget no more and starts nothing, even when the budget would now allow it', async () => {
    let asked = 0;
    const policy = hedge({ delay: 10, maxHedgedAttempts: 2, budget: { deposit() {}, tryWithdraw: () => ++asked > 1 } });
    const events = recordEvents(policy);
    const { fn, attempt, attempts } = controlled();
    const call = track(policy.execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    expect(events).toEqual(['budgetExhausted 2']);
    attempt(1).answer.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(100);
    expect(attempts).toHaveLength(1);
    expect(asked).toBe(1);
    expect(call.error).toEqual(new Error('down'));
    expect(events).toEqual(['budgetExhausted 2']);
  });

  it('in only-on-failure mode, a refused hedge leaves the call with the failure', async () => {
    const policy = hedge({ delay: Infinity, budget: fakeBudget(0) });
    const events = recordEvents(policy);
    const failure = new Error('down');
    expect(await rejectionOf(policy.execute(() => Promise.reject(failure)))).toBe(failure);
    expect(events).toEqual(['budgetExhausted 2']);
  });

  it('a budget whose tryWithdraw throws, answers with a promise, or answers other than true or false is reported and read as false; a throwing deposit is reported', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const budgets = [
      { deposit() { throw new Error('deposit bug'); }, tryWithdraw: () => true },
      { deposit() {}, tryWithdraw(): boolean { throw new Error('withdraw bug'); } },
      { deposit() {}, tryWithdraw: () => 1 as unknown as boolean },
      { deposit() {}, tryWithdraw: (async () => true) as unknown as () => boolean },
    ];
    const starts: number[] = [];
    for (const budget of budgets) {
      const { fn, attempts } = controlled();
      const call = hedge({ delay: 0, budget }).execute(fn);
      starts.push(attempts.length);
      attempts[0]?.answer.resolve('ok');
      expect(await call).toBe('ok');
    }
    expect(starts).toEqual([2, 1, 1, 1]);
    expect(reported(errors)).toEqual([
      'bulwark: hedge budget.deposit() failed deposit bug',
      'bulwark: hedge budget.tryWithdraw() failed withdraw bug',
      'bulwark: hedge budget.tryWithdraw() failed hedge budget.tryWithdraw() must return true or false, got 1; read as false',
      'bulwark: hedge budget.tryWithdraw() failed hedge budget.tryWithdraw() must return its answer synchronously, got a promise (an async function?)',
    ]);
  });

  it('works with a RetryBudget: hedges stop when the budget is spent, and start again as calls deposit', async () => {
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0 });
    const policy = hedge({ delay: 0, budget });
    const events = recordEvents(policy);
    const attemptsPerCall: number[] = [];
    for (let i = 0; i < 4; i++) {
      let attempts = 0;
      await policy.execute(() => (attempts++, Promise.resolve('ok')));
      attemptsPerCall.push(attempts);
    }
    // Call 1 deposits 0.5 of a hedge: refused; call 2 makes it 1: allowed, then spent; and so on.
    expect(attemptsPerCall).toEqual([1, 2, 1, 2]);
    expect(events.filter((event) => event.startsWith('budgetExhausted'))).toHaveLength(2);
  });
});

// ── Aborts ────────────────────────────────────────────────────────────────────────────────

describe('hedge: aborts', () => {
  it('a signal aborted before the call rejects with its reason and runs nothing', async () => {
    const controller = new AbortController();
    const reason = new Error('gone');
    controller.abort(reason);
    const fn = vi.fn();
    expect(await rejectionOf(hedge({ delay: 0, maxHedgedAttempts: 2 }).execute(fn, { signal: controller.signal }))).toBe(reason);
    expect(fn).not.toHaveBeenCalled();
  });

  it('an abort before the first hedge answers at once, aborts the attempt with the reason, clears the timer and starts nothing more', async () => {
    const controller = new AbortController();
    const policy = hedge({ delay: 100 });
    const events = recordEvents(policy);
    const { fn, attempts } = controlled();
    const call = track(policy.execute(fn, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    const reason = new Error('gone');
    controller.abort(reason);
    await flushMicrotasks();
    expect(call.error).toBe(reason);
    expect(attempts[0]?.ctx.signal.reason).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(attempts).toHaveLength(1);
    expect(events).toEqual([]);
  });

  it('a hedge timer that fires in the turn of the abort, before the attempt’s outcome comes back, starts no hedge', async () => {
    const timers: (() => void)[] = [];
    const clock: Clock = { now: () => 0, setTimeout: (callback) => timers.push(callback), clearTimeout: () => {} };
    const controller = new AbortController();
    const policy = hedge({ delay: 10, clock });
    const events = recordEvents(policy);
    const { fn, attempts } = controlled();
    const call = track(policy.execute(fn, { signal: controller.signal }));
    await flushMicrotasks();
    expect(timers).toHaveLength(1);
    const reason = new Error('gone');
    controller.abort(reason);
    timers[0]?.();
    await flushMicrotasks();
    expect(call.error).toBe(reason);
    expect(attempts).toHaveLength(1);
    expect(events).toEqual([]);
  });

  it('an abort between hedges, and after all started, aborts every attempt with the reason, even attempts that ignore their signal', async () => {
    for (const abortAt of [15, 25]) {
      const controller = new AbortController();
      const signals: AbortSignal[] = [];
      const call = track(hedge({ delay: 10, maxHedgedAttempts: 2 }).execute((ctx) => (signals.push(ctx.signal), hang()), { signal: controller.signal }));
      await vi.advanceTimersByTimeAsync(abortAt);
      const reason = new Error(`gone at ${abortAt}`);
      controller.abort(reason);
      await flushMicrotasks();
      expect(call.error).toBe(reason);
      expect(signals.map((signal) => signal.reason)).toEqual(abortAt === 15 ? [reason, reason] : [reason, reason, reason]);
      expect(vi.getTimerCount()).toBe(0);
      await vi.advanceTimersByTimeAsync(100);
      expect(signals).toHaveLength(abortAt === 15 ? 2 : 3);
    }
  });

  it('an abort while attempts wait in a bulkhead queue inside answers at once and takes them out of the queue', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 5 });
    const holder = deferred<string>();
    const held = bulkhead.execute(() => holder.promise);
    const controller = new AbortController();
    const fn = vi.fn();
    const call = track(compose(hedge({ delay: 10 }), bulkhead).execute(fn, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    expect(bulkhead.queued).toBe(2);
    const reason = new Error('gone');
    controller.abort(reason);
    await flushMicrotasks();
    expect(call.error).toBe(reason);
    expect(bulkhead.queued).toBe(0);
    holder.resolve('done');
    expect(await held).toBe('done');
    expect(fn).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no listener on a caller signal shared by many hedged calls, and no timer', async () => {
    const controller = new AbortController();
    const policy = hedge({ delay: 5, maxHedgedAttempts: 2 });
    const calls = Array.from({ length: 50 }, (_, i) => policy.execute((ctx) => (ctx.attempt === 3 || i % 2 === 0 ? `call ${i}` : hangUntilAborted(ctx)), { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 50 }, (_, i) => `call ${i}`));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an enclosing timeout answers on time with its TimeoutError and aborts every attempt with it', async () => {
    const policy = hedge({ delay: 10, maxHedgedAttempts: 5 });
    const events = recordEvents(policy);
    const signals: AbortSignal[] = [];
    const call = track(compose(withTimeout(25), policy).execute((ctx) => (signals.push(ctx.signal), hang())));
    await vi.advanceTimersByTimeAsync(24);
    expect(call.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(call.error).toBeInstanceOf(TimeoutError);
    expect(signals).toHaveLength(3);
    for (const signal of signals) expect(signal.reason).toBe(call.error);
    expect(vi.getTimerCount()).toBe(0);
    expect(events).toEqual(['hedge 2 delay', 'hedge 3 delay']);
  });

  it('a per-attempt timeout inside: an attempt that times out falls through and the next starts at once', async () => {
    const { fn, attempt, starts } = controlled();
    const call = track(compose(hedge({ delay: 100, maxHedgedAttempts: 2 }), withTimeout(30)).execute(fn));
    await vi.advanceTimersByTimeAsync(30);
    expect(starts()).toEqual([0, 30]);
    expect(attempt(1).ctx.signal.reason).toBeInstanceOf(TimeoutError);
    attempt(2).answer.resolve('second');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('second');
  });
});

// ── With the other policies ───────────────────────────────────────────────────────────────

describe('hedge: composed', () => {
  it('a breaker inside sees each attempt; a loser aborted by hedging is not counted as a failure', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const { fn, attempt } = controlled();
    const call = track(compose(hedge({ delay: 10, maxHedgedAttempts: 2 }), breaker).execute(fn));
    await vi.advanceTimersByTimeAsync(20);
    attempt(3).answer.resolve('third');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('third');
    // Two losers aborted, one success: a threshold of one failure would have opened the circuit.
    expect(breaker.stats()).toMatchObject({ state: 'closed', failures: 0, consecutiveFailures: 0 });
    // Its real failures are counted, attempt by attempt.
    const failing = track(compose(hedge({ delay: Infinity }), breaker).execute(() => Promise.reject(new Error('down'))));
    await vi.advanceTimersByTimeAsync(0);
    expect(failing.error).toBeInstanceOf(CircuitOpenError);
    expect(breaker.state).toBe('open');
  });

  it('a breaker in its half-open trial frees the trial of an aborted loser once its work ends', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxCalls: 2 });
    await rejectionOf(breaker.execute(() => Promise.reject(new Error('down'))));
    await vi.advanceTimersByTimeAsync(1_000);
    const { fn, attempt } = controlled();
    const call = track(compose(hedge({ delay: 0 }), breaker).execute(fn));
    expect(breaker.stats().trialsInFlight).toBe(2);
    attempt(2).answer.resolve('trial ok');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('trial ok');
    expect(breaker.stats().trialsInFlight).toBe(1); // the loser still runs: its function ignored the signal
    attempt(1).answer.resolve('late');
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.stats().trialsInFlight).toBe(0);
  });

  it('a bulkhead inside keeps a loser’s slot until its work really ends', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 2 });
    const { fn, attempt } = controlled();
    const call = track(compose(hedge({ delay: 10 }), bulkhead).execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    expect(bulkhead.active).toBe(2);
    attempt(2).answer.resolve('second');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('second');
    expect(attempt(1).ctx.signal.aborted).toBe(true);
    expect(bulkhead.active).toBe(1);
    attempt(1).answer.resolve('ignored its signal');
    await vi.advanceTimersByTimeAsync(0);
    expect(bulkhead.active).toBe(0);
  });

  it('a retry around hedges the whole of each attempt again; attempts inside count from 1', async () => {
    const seen: number[] = [];
    const fn = (ctx: ExecutionContext): Promise<never> => (seen.push(ctx.attempt), Promise.reject(new Error('down')));
    const call = track(compose(retryWithBackoff({ maxRetries: 1, baseDelay: 100, jitter: 'none' }), hedge({ delay: Infinity })).execute(fn));
    await vi.advanceTimersByTimeAsync(100);
    expect(call.error).toEqual(new Error('down'));
    expect(seen).toEqual([1, 2, 1, 2]);
  });

  it('in the full stack: fallback, total timeout, hedge, breaker, per-attempt timeout, bulkhead', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 5 });
    const bulkhead = new Bulkhead({ maxConcurrent: 10 });
    const stack = compose(withFallback('fallback'), withTimeout(1_000), hedge({ delay: 50, maxHedgedAttempts: 2 }), breaker, withTimeout(200), bulkhead);
    const slowFirst = timed((attempt) => (attempt === 1 ? 500 : 20));
    const fast = track(stack.execute(slowFirst.fn));
    const down = track(stack.execute(() => Promise.reject(new Error('down'))));
    const stuck = track(stack.execute(hang));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fast.value).toBe('value 2');
    expect(down.value).toBe('fallback');
    expect(stuck.value).toBe('fallback');
    expect(bulkhead.active).toBe(3); // the stuck call's three attempts ignore their signal
    expect(vi.getTimerCount()).toBe(0);
  });

  it('holds under 100 racing callers: each call answers once with its fastest attempt, at most 3 attempts each, no timer left', async () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 16_807) % 2_147_483_647) - 1) / 2_147_483_646;
    const policy = hedge({ delay: 20, maxHedgedAttempts: 2 });
    let hedges = 0;
    let wins = 0;
    policy.on('hedge', () => void hedges++);
    policy.on('won', () => void wins++);
    // Odd durations from even starts: no answer falls in the instant a hedge starts.
    const plans = Array.from({ length: 100 }, () => [1, 2, 3].map(() => 2 * Math.floor(random() * 30) + 1));
    const started = plans.map(() => [] as number[]);
    const calls = plans.map((plan, i) =>
      track(
        policy.execute((ctx) => {
          started[i]?.push(ctx.attempt);
          return timed((attempt) => plan[attempt - 1] as number).fn(ctx);
        }),
      ),
    );
    await vi.advanceTimersByTimeAsync(200);
    plans.forEach((plan, i) => {
      // The model: attempt k starts at 20 (k − 1) ms unless the call was answered before, and answers `plan[k − 1]` ms later.
      let answeredAt = Infinity;
      let winner = 0;
      let attempts = 0;
      for (let k = 0; k < 3 && 20 * k < answeredAt; k++) {
        attempts++;
        const finish = 20 * k + (plan[k] as number);
        if (finish < answeredAt) [answeredAt, winner] = [finish, k + 1];
      }
      expect(calls[i]?.value).toBe(`value ${winner}`);
      expect(started[i]).toEqual([1, 2, 3].slice(0, attempts));
    });
    expect(hedges).toBe(started.reduce((sum, attempts) => sum + attempts.length - 1, 0));
    expect(wins).toBe(calls.filter((call) => call.value !== 'value 1').length);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('hedge: what the contract gives a breaker', () => {
  it('a loser aborted with an error that is not a refusal counts as a failure of the breaker inside: why HedgeLostError is one', async () => {
    // A hedging policy of two parallel attempts that aborts its loser with a plain Error.
    const plain = probe(
      {
        run: async (call) => {
          const inner = call.inner();
          const runs = [inner.start(1), inner.start(2)];
          const value = await Promise.any(runs.map((run) => run.outcome));
          for (const run of runs) run.abort(new Error('lost'));
          return value;
        },
      },
      { abortsWork: true },
    );
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    expect(await compose(plain, breaker).execute((ctx) => (ctx.attempt === 2 ? 'second' : hang()))).toBe('second');
    await vi.advanceTimersByTimeAsync(0);
    // The breaker saw the loser's abort as a failure (callerAborted is false: no caller gave up) and opened.
    expect(breaker.state).toBe('open');
    const branded = new CircuitBreaker({ failureThreshold: 1 });
    expect(await compose(hedge({ delay: 0 }), branded).execute((ctx) => (ctx.attempt === 2 ? 'second' : hang()))).toBe('second');
    await vi.advanceTimersByTimeAsync(0);
    expect(branded.state).toBe('closed');
  });
});

// ── Events and observability ──────────────────────────────────────────────────────────────

describe('hedge: events', () => {
  it('emits hedge for each attempt beyond the first, won when a hedge answers, and nothing for a call answered by its first attempt', async () => {
    const policy = hedge({ delay: 10, maxHedgedAttempts: 2 });
    const payloads: unknown[] = [];
    policy.on('hedge', (payload) => void payloads.push(payload));
    const unsubscribe = policy.on('won', (payload) => void payloads.push(payload));
    const { fn, attempt } = controlled();
    const call = track(policy.execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    attempt(2).answer.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(0);
    attempt(3).answer.resolve('third');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('third');
    expect(payloads).toEqual([{ attempt: 2, trigger: 'delay' }, { attempt: 3, trigger: 'failure' }, { attempt: 3 }]);
    payloads.length = 0;
    await policy.execute(() => 'first');
    expect(payloads).toEqual([]);
    unsubscribe();
    const other = controlled();
    const second = policy.execute(other.fn);
    await vi.advanceTimersByTimeAsync(10);
    other.attempt(2).answer.resolve('hedge');
    expect(await second).toBe('hedge');
    expect(payloads).toEqual([{ attempt: 2, trigger: 'delay' }]);
  });

  it('refuses an unknown event; a listener that throws or rejects is reported and never breaks the call', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const policy = hedge({ delay: 0 });
    expect(() => policy.on('hedged' as keyof HedgeEvents, () => {})).toThrow('Unknown event "hedged": expected one of "hedge", "won", "budgetExhausted"');
    policy.on('hedge', () => {
      throw new Error('listener bug');
    });
    policy.on('won', async () => {
      throw new Error('async listener bug');
    });
    expect(await policy.execute(({ attempt }) => (attempt === 2 ? 'second' : hang()))).toBe('second');
    await vi.advanceTimersByTimeAsync(0);
    expect(reported(errors)).toEqual(['bulwark: a "hedge" listener failed listener bug', 'bulwark: a "won" listener failed async listener bug']);
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

/** Three calls through a tracked hedging policy: one answered by its first attempt, one by its hedge, one whose hedge the budget refused. */
async function trackedScenario() {
  const policy = hedge({ delay: 10, budget: fakeBudget(1), name: 'search' });
  const registry = new MetricsRegistry();
  registry.track(policy);
  await policy.execute(() => 'first');
  for (let i = 0; i < 2; i++) {
    const { fn, attempt, attempts } = controlled();
    const call = policy.execute(fn);
    await vi.advanceTimersByTimeAsync(10);
    (attempts.length === 2 ? attempt(2) : attempt(1)).answer.resolve('ok');
    await call;
  }
  return { policy, registry };
}

describe('hedge: observed', () => {
  it('MetricsRegistry counts its calls and its hedges, hedge wins and hedges denied', async () => {
    const { registry } = await trackedScenario();
    const snapshot = registry.snapshot();
    expect(snapshot.policies.find((policy) => policy.kind === 'hedge')).toMatchObject({ name: 'search', calls: 3, successes: 3, failures: 0, hedges: 1, hedgeWins: 1, hedgesDenied: 1 });
    expect(snapshot.kinds?.hedge).toMatchObject({ refuses: false, counters: [{ field: 'hedges' }, { field: 'hedgeWins' }, { field: 'hedgesDenied' }], gauges: [] });
  });

  it('renderPrometheus writes its counter families with HELP and TYPE lines', async () => {
    const { registry } = await trackedScenario();
    const text = renderPrometheus(registry);
    const labels = '{policy="search",kind="hedge"}';
    expect(text).toContain(
      '# HELP bulwark_hedges_total Hedged attempts the hedging policy started: attempts beyond the first of a call.\n' + '# TYPE bulwark_hedges_total counter\n' + `bulwark_hedges_total${labels} 1\n`,
    );
    expect(text).toContain(
      '# HELP bulwark_hedge_wins_total Calls a hedged attempt answered first with its value.\n' + '# TYPE bulwark_hedge_wins_total counter\n' + `bulwark_hedge_wins_total${labels} 1\n`,
    );
    expect(text).toContain(
      '# HELP bulwark_hedges_denied_total Hedged attempts the hedging policy did not start because its budget refused them.\n' +
        '# TYPE bulwark_hedges_denied_total counter\n' +
        `bulwark_hedges_denied_total${labels} 1\n`,
    );
    expect(text).not.toContain(`bulwark_rejections_total${labels}`);
  });

  it('logPolicyEvents warns when the budget refuses a hedge, and writes hedges and wins once their level is set', async () => {
    const { logger, lines } = recordingLogger();
    const policy = hedge({ delay: 10, budget: fakeBudget(1), name: 'search' });
    logPolicyEvents(policy, logger, { levels: { hedge: 'info', won: 'info' }, summaryInterval: 0 });
    for (let i = 0; i < 2; i++) {
      const { fn, attempt, attempts } = controlled();
      const call = policy.execute(fn);
      await vi.advanceTimersByTimeAsync(10);
      (attempts.length === 2 ? attempt(2) : attempt(1)).answer.resolve('ok');
      await call;
    }
    const fields = { policy: 'search', kind: 'hedge' };
    expect(lines).toEqual([
      ['info', { ...fields, event: 'hedge', attempt: 2, trigger: 'delay' }, 'hedging "search" started attempt 2 (no answer within its delay)'],
      ['info', { ...fields, event: 'won', attempt: 2 }, 'hedging "search": attempt 2 answered first'],
      ['warn', { ...fields, event: 'budgetExhausted', attempt: 2 }, 'hedging "search": the budget refused attempt 2; no more hedges for this call'],
    ]);
    // By default, only the budget's refusals are written.
    const quiet = recordingLogger();
    const other = hedge({ delay: 0, name: 'quiet' });
    logPolicyEvents(other, quiet.logger, { summaryInterval: 0 });
    await other.execute(({ attempt }) => (attempt === 2 ? 'second' : hang()));
    expect(quiet.lines).toEqual([]);
  });

  it('logPolicyEvents writes each event once per summary window, then counts the rest in a summary; a failure’s hedge says so', async () => {
    const every = recordingLogger();
    const summed = recordingLogger();
    const policy = hedge({ delay: 10, maxHedgedAttempts: 2, budget: fakeBudget(3), name: 'search' });
    const levels = { hedge: 'info', won: 'info' } as const;
    logPolicyEvents(policy, every.logger, { levels, summaryInterval: 0 });
    logPolicyEvents(policy, summed.logger, { levels, summaryInterval: 1_000 });
    // hedge 2 on delay, then hedge 3 when attempt 1 fails; attempt 3 wins
    const first = controlled();
    const one = track(policy.execute(first.fn));
    await vi.advanceTimersByTimeAsync(10);
    first.attempt(1).answer.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(0);
    first.attempt(3).answer.resolve('third');
    // hedge 2 on delay wins; then two calls whose hedge the budget refuses
    const second = controlled();
    const two = track(policy.execute(second.fn));
    await vi.advanceTimersByTimeAsync(10);
    second.attempt(2).answer.resolve('second');
    const refused = [controlled(), controlled()];
    const others = refused.map(({ fn }) => track(policy.execute(fn)));
    await vi.advanceTimersByTimeAsync(10);
    for (const { attempt } of refused) attempt(1).answer.resolve('first');
    await vi.advanceTimersByTimeAsync(0);
    expect([one.value, two.value, ...others.map((call) => call.value)]).toEqual(['third', 'second', 'first', 'first']);
    const fields = { policy: 'search', kind: 'hedge' };
    expect(every.lines.map(([level, , message]) => [level, message])).toEqual([
      ['info', 'hedging "search" started attempt 2 (no answer within its delay)'],
      ['info', 'hedging "search" started attempt 3 (an attempt failed)'],
      ['info', 'hedging "search": attempt 3 answered first'],
      ['info', 'hedging "search" started attempt 2 (no answer within its delay)'],
      ['info', 'hedging "search": attempt 2 answered first'],
      ['warn', 'hedging "search": the budget refused attempt 2; no more hedges for this call'],
      ['warn', 'hedging "search": the budget refused attempt 2; no more hedges for this call'],
    ]);
    expect(every.lines[1]?.[1]).toEqual({ ...fields, event: 'hedge', attempt: 3, trigger: 'failure' });
    expect(summed.lines.map(([level, , message]) => [level, message])).toEqual([
      ['info', 'hedging "search" started attempt 2 (no answer within its delay)'],
      ['info', 'hedging "search": attempt 3 answered first'],
      ['warn', 'hedging "search": the budget refused attempt 2; no more hedges for this call'],
    ]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(summed.lines.slice(3)).toEqual([
      ['info', { ...fields, event: 'hedge', repeated: 2, intervalMs: 1_000 }, 'hedging "search": 2 more hedges in the last 1000 ms'],
      ['info', { ...fields, event: 'won', repeated: 1, intervalMs: 1_000 }, 'hedging "search": 1 more hedge wins in the last 1000 ms'],
      ['warn', { ...fields, event: 'budgetExhausted', repeated: 1, intervalMs: 1_000 }, 'hedging "search": 1 more hedges denied in the last 1000 ms'],
    ]);
  });

  it('registerOpenTelemetryMetrics reports its counters as bulwark.hedges, bulwark.hedge_wins and bulwark.hedges_denied, in {hedge}', async () => {
    const { registry } = await trackedScenario();
    const made: [name: string, unit: unknown, description: unknown][] = [];
    const instrument = (name: string, options?: { unit?: string; description?: string }) => (made.push([name, options?.unit, options?.description]), { addCallback() {}, removeCallback() {} });
    const meter = {
      createHistogram: () => ({ record() {} }),
      createObservableCounter: instrument,
      createObservableUpDownCounter: instrument,
      createObservableGauge: instrument,
      addBatchObservableCallback() {},
      removeBatchObservableCallback() {},
    } as unknown as OtelMeter;
    registerOpenTelemetryMetrics(registry, meter);
    expect(made.filter(([name]) => name.startsWith('bulwark.hedge'))).toEqual([
      ['bulwark.hedges', '{hedge}', 'Hedged attempts the hedging policy started: attempts beyond the first of a call.'],
      ['bulwark.hedge_wins', '{hedge}', 'Calls a hedged attempt answered first with its value.'],
      ['bulwark.hedges_denied', '{hedge}', 'Hedged attempts the hedging policy did not start because its budget refused them.'],
    ]);
  });
});
