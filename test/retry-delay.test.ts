/**
 * retryWithBackoff's results as failures (`retryOnResult`) and its per-failure delay hook
 * (`delay(attempt, outcome, backoff)`): what is retried, what the caller gets, the events and
 * log lines, the budget, aborts, and the hook's answers at their extremes.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  RetryBudget,
  logPolicyEvents,
  retryWithBackoff,
  withTimeout,
  compose,
  isTimeoutError,
  type Clock,
  type ExecutionContext,
  type Outcome,
  type PolicyLogger,
  type RetryEvents,
} from '../src/index.js';
import { flushMicrotasks, hangUntilAborted, track } from './fixtures/promises.js';
import { propertyRuns } from './fixtures/property.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

interface Reply {
  readonly status: number;
}

/** A function answering with the given statuses in turn (the last one from then on), as new objects it keeps. */
function replies(...statuses: number[]): { fn: (ctx: ExecutionContext) => Promise<Reply>; seen: Reply[]; attempts: number[] } {
  const seen: Reply[] = [];
  const attempts: number[] = [];
  const fn = async ({ attempt }: ExecutionContext): Promise<Reply> => {
    const reply = { status: statuses[Math.min(seen.length, statuses.length - 1)] as number };
    seen.push(reply);
    attempts.push(attempt);
    return reply;
  };
  return { fn, seen, attempts };
}

const is503 = (value: unknown): boolean => (value as Reply).status === 503;
const noJitter = { jitter: 'none', baseDelay: 100 } as const;

describe('retryWithBackoff retryOnResult', () => {
  it('retries a value it accepts and returns the first it declines, the same object', async () => {
    const { fn, seen } = replies(503, 503, 200);
    const call = track(retryWithBackoff({ ...noJitter, retryOnResult: is503 }).execute(fn));
    await vi.runAllTimersAsync();
    expect(call.value).toBe(seen[2]);
    expect(seen.map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it('returns the last value, not an error, when the retries are spent', async () => {
    const { fn, seen } = replies(503);
    const giveUps: RetryEvents['giveUp'][] = [];
    const policy = retryWithBackoff({ ...noJitter, maxRetries: 2, retryOnResult: is503 });
    policy.on('giveUp', (e) => giveUps.push(e));
    const call = track(policy.execute(fn));
    await vi.runAllTimersAsync();
    expect(call.state).toBe('fulfilled');
    expect(call.value).toBe(seen[2]);
    expect(seen).toHaveLength(3);
    expect(giveUps).toEqual([{ error: undefined, attempts: 3, reason: 'retries-spent', value: seen[2] }]);
  });

  it('with maxRetries 0 asks about the value once and returns it', async () => {
    const { fn, seen } = replies(503);
    const retryOnResult = vi.fn(is503);
    await expect(retryWithBackoff({ maxRetries: 0, retryOnResult }).execute(fn)).resolves.toBe(seen[0]);
    expect(retryOnResult).toHaveBeenCalledWith(seen[0], 1);
  });

  it('asks with the attempt number, from 1, and counts ctx.attempt up', async () => {
    const { fn, attempts } = replies(503, 503, 200);
    const retryOnResult = vi.fn((value: unknown, _attempt: number) => is503(value));
    const call = track(retryWithBackoff({ ...noJitter, retryOnResult }).execute(fn));
    await vi.runAllTimersAsync();
    expect(call.state).toBe('fulfilled');
    expect(retryOnResult.mock.calls.map((c) => c[1])).toEqual([1, 2, 3]);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('emits retry with the value and an undefined error, and the delays of the backoff', async () => {
    const { fn, seen } = replies(503, 503, 200);
    const retries: RetryEvents['retry'][] = [];
    const policy = retryWithBackoff({ ...noJitter, retryOnResult: is503 });
    policy.on('retry', (e) => retries.push(e));
    track(policy.execute(fn));
    await vi.runAllTimersAsync();
    expect(retries).toEqual([
      { error: undefined, attempt: 1, delay: 100, value: seen[0] },
      { error: undefined, attempt: 2, delay: 200, value: seen[1] },
    ]);
  });

  it('mixes errors and values: each is classified by its own predicate', async () => {
    let n = 0;
    const ok = { status: 200 };
    const fn = async (): Promise<Reply> => {
      n++;
      if (n === 1) throw new Error('reset');
      if (n === 2) return { status: 503 };
      return ok;
    };
    const retries: RetryEvents['retry'][] = [];
    const policy = retryWithBackoff({ ...noJitter, retryOnResult: is503 });
    policy.on('retry', (e) => retries.push(e));
    const call = track(policy.execute(fn));
    await vi.runAllTimersAsync();
    expect(call.value).toBe(ok);
    expect(retries.map((e) => 'value' in e)).toEqual([false, true]);
  });

  it('does not change how errors are treated, nor what an error event carries', async () => {
    const boom = new Error('boom');
    const retries: RetryEvents['retry'][] = [];
    const policy = retryWithBackoff({ ...noJitter, maxRetries: 1, retryOnResult: is503 });
    policy.on('retry', (e) => retries.push(e));
    const call = track(policy.execute(() => Promise.reject(boom)));
    await vi.runAllTimersAsync();
    expect(call.error).toBe(boom);
    expect(retries).toEqual([{ error: boom, attempt: 1, delay: 100 }]);
  });

  it('without retryOnResult has no onValue hook: values pass at no cost', () => {
    expect((retryWithBackoff() as unknown as { onValue?: unknown }).onValue).toBeUndefined();
    expect((retryWithBackoff({ retryOnResult: is503 }) as unknown as { onValue?: unknown }).onValue).toBeTypeOf('function');
  });

  it('a predicate that throws fails the call with what it threw, and no retry runs', async () => {
    const broken = new Error('predicate broke');
    const { fn, seen } = replies(503);
    const call = track(
      retryWithBackoff({
        retryOnResult: () => {
          throw broken;
        },
      }).execute(fn),
    );
    await vi.runAllTimersAsync();
    expect(call.error).toBe(broken);
    expect(seen).toHaveLength(1);
  });

  it('a predicate that throws on a later attempt fails the call too', async () => {
    const broken = new Error('predicate broke');
    const { fn, seen } = replies(503);
    const call = track(
      retryWithBackoff({
        ...noJitter,
        retryOnResult: (_value, attempt) => {
          if (attempt === 2) throw broken;
          return true;
        },
      }).execute(fn),
    );
    await vi.runAllTimersAsync();
    expect(call.error).toBe(broken);
    expect(seen).toHaveLength(2);
  });

  it('a predicate that returns a promise is refused with a TypeError, its rejection reported', async () => {
    const { fn } = replies(503);
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    const call = track(retryWithBackoff({ retryOnResult: (() => Promise.reject(new Error('async'))) as never }).execute(fn));
    await vi.runAllTimersAsync();
    expect(call.error).toBeInstanceOf(TypeError);
    expect((call.error as Error).message).toBe('retryWithBackoff retryOnResult must return its answer synchronously, got a promise (an async function?)');
    expect(reported).toHaveBeenCalled();
  });

  it('a caller abort during the backoff after a value answers at once with the reason', async () => {
    const { fn, seen } = replies(503);
    const controller = new AbortController();
    const call = track(retryWithBackoff({ ...noJitter, retryOnResult: is503 }).execute(fn, { signal: controller.signal }));
    await flushMicrotasks();
    expect(seen).toHaveLength(1);
    const reason = new Error('caller left');
    controller.abort(reason);
    await flushMicrotasks();
    expect(call.error).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a per-attempt timeout inside and result retries: each attempt gets its own deadline', async () => {
    let n = 0;
    const fn = (ctx: ExecutionContext): Promise<Reply> => (++n === 1 ? hangUntilAborted(ctx) : Promise.resolve({ status: n === 2 ? 503 : 200 }));
    const call = track(compose(retryWithBackoff({ ...noJitter, retryOnResult: is503 }), withTimeout(50)).execute(fn));
    await vi.runAllTimersAsync();
    expect(call.value).toEqual({ status: 200 });
    expect(n).toBe(3);
  });

  it('an enclosing timeout expiring returns no value: the call rejects with the TimeoutError', async () => {
    const { fn } = replies(503);
    const call = track(compose(withTimeout(250), retryWithBackoff({ ...noJitter, maxRetries: 10, retryOnResult: is503 })).execute(fn));
    await vi.runAllTimersAsync();
    expect(isTimeoutError(call.error)).toBe(true);
  });

  it('100 racing callers each get their own last value', async () => {
    const policy = retryWithBackoff({ jitter: 'full', baseDelay: 10, maxRetries: 3, retryOnResult: (v) => (v as { n: number; attempt: number }).attempt < 3 });
    const calls = Array.from({ length: 100 }, (_, i) => track(policy.execute(async ({ attempt }) => ({ n: i, attempt }))));
    await vi.runAllTimersAsync();
    calls.forEach((call, i) => expect(call.value).toEqual({ n: i, attempt: 3 }));
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('retryWithBackoff retryOnResult with a budget', () => {
  it('takes one retry per value retried, and returns the value when the budget is spent', async () => {
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0 });
    const giveUps: RetryEvents['giveUp'][] = [];
    const policy = retryWithBackoff({ ...noJitter, budget, retryOnResult: is503 });
    policy.on('giveUp', (e) => giveUps.push(e));
    const { fn, seen } = replies(503);
    const call = track(policy.execute(fn));
    await vi.runAllTimersAsync();
    expect(call.state).toBe('fulfilled');
    expect(call.value).toBe(seen[seen.length - 1]);
    expect(giveUps).toHaveLength(1);
    expect(giveUps[0]).toMatchObject({ reason: 'budget-spent', error: undefined });
    expect(giveUps[0]?.value).toBe(call.value);
  });
});

describe('retryWithBackoff delay hook', () => {
  it('is honoured exactly, before each retry, with the attempt, the outcome and the backoff', async () => {
    const boom = new Error('boom');
    let n = 0;
    const last = { status: 200 };
    const first = { status: 503 };
    const fn = async (): Promise<Reply> => {
      n++;
      if (n === 1) return first;
      if (n === 2) throw boom;
      return last;
    };
    const delay = vi.fn((attempt: number, _outcome: Outcome, _backoff: number) => (attempt === 1 ? 5_000 : 70));
    const call = track(retryWithBackoff({ ...noJitter, retryOnResult: is503, delay }).execute(fn));
    await vi.advanceTimersByTimeAsync(4_999);
    expect(n).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(n).toBe(2);
    await vi.advanceTimersByTimeAsync(69);
    expect(n).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(n).toBe(3);
    expect(call.value).toBe(last);
    expect(delay.mock.calls).toEqual([
      [1, { ok: true, value: first }, 100],
      [2, { ok: false, error: boom }, 200],
    ]);
    expect(delay.mock.calls[0]?.[1].ok && delay.mock.calls[0][1].value).toBe(first);
  });

  it('undefined keeps the backoff', async () => {
    const { fn, seen } = replies(503, 200);
    const retries: number[] = [];
    const policy = retryWithBackoff({ ...noJitter, retryOnResult: is503, delay: () => undefined });
    policy.on('retry', ({ delay }) => retries.push(delay));
    track(policy.execute(fn));
    await vi.advanceTimersByTimeAsync(99);
    expect(seen).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toHaveLength(2);
    expect(retries).toEqual([100]);
  });

  it('0 retries at once; the retry event carries the delay the hook chose', async () => {
    const { fn, seen } = replies(503, 503, 200);
    const retries: number[] = [];
    const policy = retryWithBackoff({ ...noJitter, retryOnResult: is503, delay: () => 0 });
    policy.on('retry', ({ delay }) => retries.push(delay));
    const call = track(policy.execute(fn));
    await flushMicrotasks();
    expect(call.value).toBe(seen[2]);
    expect(retries).toEqual([0, 0]);
  });

  it('may exceed maxDelay', async () => {
    const { fn, seen } = replies(503, 200);
    track(retryWithBackoff({ baseDelay: 10, maxDelay: 20, retryOnResult: is503, delay: () => 60_000 }).execute(fn));
    await vi.advanceTimersByTimeAsync(59_999);
    expect(seen).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toHaveLength(2);
  });

  it('is not asked when the policy does not retry (declined, retries spent, aborted)', async () => {
    const delay = vi.fn(() => 10);
    const { fn } = replies(200);
    await retryWithBackoff({ retryOnResult: is503, delay }).execute(fn);
    await expect(retryWithBackoff({ maxRetries: 0, delay }).execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(delay).not.toHaveBeenCalled();
  });

  it('waits a delay longer than one timer can (2³¹ ms and more) in several timers', async () => {
    const { fn, seen } = replies(503, 200);
    const huge = 2 ** 31 * 2 + 5;
    track(retryWithBackoff({ retryOnResult: is503, delay: () => huge }).execute(fn));
    await vi.advanceTimersByTimeAsync(2 ** 31);
    expect(seen).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2 ** 31);
    expect(seen).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(4);
    expect(seen).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toHaveLength(2);
  });

  it('a caller abort during a long hook delay answers at once and leaves no timer', async () => {
    const { fn, seen } = replies(503);
    const controller = new AbortController();
    const call = track(retryWithBackoff({ retryOnResult: is503, delay: () => 2 ** 33 }).execute(fn, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(2 ** 31 + 10);
    controller.abort('gone');
    await flushMicrotasks();
    expect(call.error).toBe('gone');
    expect(seen).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an enclosing timeout ends a hook delay with its TimeoutError', async () => {
    const { fn } = replies(503);
    const call = track(compose(withTimeout(1_000), retryWithBackoff({ retryOnResult: is503, delay: () => 10_000 })).execute(fn));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(isTimeoutError(call.error)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each([
    ['NaN', Number.NaN, 'NaN'],
    ['a negative number', -1, '-1'],
    ['Infinity', Infinity, 'Infinity'],
    ['a string', '10', '"10"'],
    ['null', null, 'null'],
    ['an object', { ms: 1 }, 'an object'],
  ])('refuses %s with a TypeError that fails the call, running no retry', async (_, answer, shown) => {
    const { fn, seen } = replies(503);
    const call = track(retryWithBackoff({ retryOnResult: is503, delay: () => answer as never }).execute(fn));
    await vi.runAllTimersAsync();
    expect(call.error).toBeInstanceOf(TypeError);
    expect((call.error as Error).message).toBe(`retryWithBackoff delay must return a finite duration ≥ 0 or undefined, got ${shown}`);
    expect(seen).toHaveLength(1);
  });

  it('refuses a promise with a TypeError, and reports its rejection', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    const call = track(retryWithBackoff({ delay: (() => Promise.reject(new Error('late'))) as never }).execute(() => Promise.reject(new Error('down'))));
    await vi.runAllTimersAsync();
    expect((call.error as Error).message).toBe('retryWithBackoff delay must return its answer synchronously, got a promise (an async function?)');
    expect(reported).toHaveBeenCalled();
  });

  it('a throw fails the call with what it threw, and gives the budget its retry back', async () => {
    const broken = new Error('hook broke');
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0 });
    const hook = vi.fn((): number => {
      throw broken;
    });
    const call = track(retryWithBackoff({ budget, delay: hook }).execute(() => Promise.reject(new Error('down'))));
    await vi.runAllTimersAsync();
    expect(call.error).toBe(broken);
    expect(hook).toHaveBeenCalledTimes(1);
    // The retry it was asked about went back: the one call deposited leaves one retry available.
    expect(budget.available).toBe(1);
  });

  it('rejects a hook that is not a function when the policy is built', () => {
    expect(() => retryWithBackoff({ delay: 100 as never })).toThrow(TypeError);
    expect(() => retryWithBackoff({ retryOnResult: true as never })).toThrow(TypeError);
    expect(() => retryWithBackoff({ delayGenerator: () => 1 } as never)).toThrow('"delay"');
  });

  it('works on a clock of its own', async () => {
    const timers: number[] = [];
    const clock: Clock = {
      now: () => 0,
      setTimeout: (callback: () => void, ms: number) => {
        timers.push(ms);
        return setTimeout(callback, ms);
      },
      clearTimeout: (handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    const { fn } = replies(503, 200);
    track(retryWithBackoff({ clock, retryOnResult: is503, delay: () => 2 ** 31 + 1 }).execute(fn));
    await vi.runAllTimersAsync();
    expect(timers).toEqual([2 ** 31 - 1, 2]);
  });
});

describe('retryWithBackoff results in logs', () => {
  it('writes the status of a value, never its contents', async () => {
    const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
    const log = (level: string) => (fields: Record<string, unknown>, message: string) => lines.push({ level, message, fields });
    const logger = { info: log('info'), warn: log('warn'), error: log('error') } as unknown as PolicyLogger;
    const policy = retryWithBackoff({ ...noJitter, maxRetries: 1, retryOnResult: is503, name: 'api' });
    const stop = logPolicyEvents(policy, logger, { levels: { retry: 'info' } });
    track(policy.execute(async () => ({ status: 503, secret: 'token' })));
    await vi.runAllTimersAsync();
    stop();
    expect(lines.map((l) => l.message)).toEqual([
      'retry "api": attempt 1 failed, retrying in 100 ms: returned a failing result (status 503)',
      'retry "api" gave up after 2 attempts: returned a failing result (status 503)',
    ]);
    expect(lines[0]?.fields).toMatchObject({ attempt: 1, delay: 100, result: { type: 'object', status: 503 } });
    expect(JSON.stringify(lines)).not.toContain('token');
  });
});

describe('retryWithBackoff retryOnResult: property', () => {
  it('never makes more than maxRetries + 1 attempts, and returns the last value or the first declined one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 6 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }), fc.boolean(), async (maxRetries, failures, hooked) => {
        let attempts = 0;
        const fn = async (): Promise<{ failed: boolean; n: number }> => ({ failed: failures[attempts % failures.length] as boolean, n: ++attempts });
        const policy = retryWithBackoff({ maxRetries, baseDelay: 1, retryOnResult: (v) => (v as { failed: boolean }).failed, ...(hooked ? { delay: (a: number) => a * 3 } : {}) });
        const call = track(policy.execute(fn));
        await vi.runAllTimersAsync();
        const value = call.value as { failed: boolean; n: number };
        expect(attempts).toBeLessThanOrEqual(maxRetries + 1);
        expect(value.n).toBe(attempts);
        if (value.failed) expect(attempts).toBe(maxRetries + 1);
        expect(vi.getTimerCount()).toBe(0);
      }),
      { numRuns: propertyRuns(150) },
    );
  });
});
