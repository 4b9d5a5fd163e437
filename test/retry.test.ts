import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BulkheadRejectedError,
  CircuitOpenError,
  RetryPolicy,
  TimeoutError,
  compose,
  isTimeoutError,
  logPolicyEvents,
  retryWithBackoff,
  withTimeout,
  type ExecutionContext,
  type JitterMode,
  type RetryOptions,
} from '../src/index.js';
import { CountingClock } from './fixtures/clock.js';
import { track } from './fixtures/promises.js';

/** A function that fails every time with a new error, and keeps the errors and contexts it saw. */
function failing(): { fn: (ctx: ExecutionContext) => Promise<never>; errors: Error[]; contexts: ExecutionContext[]; times: number[] } {
  const errors: Error[] = [];
  const contexts: ExecutionContext[] = [];
  const times: number[] = [];
  const fn = (ctx: ExecutionContext): Promise<never> => {
    const error = new Error(`attempt ${ctx.attempt} failed`);
    errors.push(error);
    contexts.push(ctx);
    times.push(Date.now());
    return Promise.reject(error);
  };
  return { fn, errors, contexts, times };
}

/** The delays of retries 1..count as a run chains them (each one is the `previous` of the next). */
function chainedDelays(policy: RetryPolicy, count: number): number[] {
  const delays: number[] = [];
  let previous: number | undefined;
  for (let retry = 1; retry <= count; retry++) {
    const delay = previous === undefined ? policy.delay(retry) : policy.delay(retry, previous);
    delays.push(delay);
    previous = delay;
  }
  return delays;
}

/** True for a delay that is not a finite number within [0, maxDelay]. */
function outOfRange(delay: number, maxDelay: number): boolean {
  return !(Number.isFinite(delay) && delay >= 0 && delay <= maxDelay);
}

const jitterModes: JitterMode[] = ['proportional', 'full', 'equal', 'decorrelated', 'none'];

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('retryWithBackoff: how many calls', () => {
  it.each([
    [0, 1],
    [1, 2],
    [3, 4],
    [7, 8],
  ])('maxRetries %i makes %i calls, then rethrows the last error', async (maxRetries, calls) => {
    const { fn, errors } = failing();
    const outcome = track(retryWithBackoff({ maxRetries, baseDelay: 0 }).execute(fn));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.rejected).toBe(true);
    expect(errors).toHaveLength(calls);
    expect(outcome.error).toBe(errors[calls - 1]);
  });

  it('makes 4 calls with the defaults (maxRetries 3) and waits between them', async () => {
    const { fn, errors } = failing();
    const outcome = track(retryWithBackoff({ random: () => 0.5 }).execute(fn));
    // proportional jitter with random 0.5 is exactly the exponential delay: 1 000, 2 000, 4 000 ms.
    await vi.advanceTimersByTimeAsync(6_999);
    expect(errors).toHaveLength(3);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(errors).toHaveLength(4);
    expect(outcome.error).toBe(errors[3]);
  });

  it('returns the first success without further calls', async () => {
    let calls = 0;
    const result = { id: 42 };
    const retry = retryWithBackoff({ maxRetries: 5, baseDelay: 10, jitter: 'none' });
    const outcome = track(
      retry.execute(() => {
        calls++;
        return calls < 3 ? Promise.reject(new Error('flaky')) : Promise.resolve(result);
      }),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome.value).toBe(result);
    expect(calls).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('counts ctx.attempt 1, 2, 3, 4', async () => {
    const { fn, contexts } = failing();
    const outcome = track(retryWithBackoff({ maxRetries: 3, baseDelay: 0 }).execute(fn));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.rejected).toBe(true);
    expect(contexts.map((ctx) => ctx.attempt)).toEqual([1, 2, 3, 4]);
  });

  it('retries a synchronous throw like a rejection', async () => {
    let calls = 0;
    const error = new Error('sync');
    const retry = retryWithBackoff({ maxRetries: 2, baseDelay: 0 });
    await expect(
      retry.execute(() => {
        calls++;
        throw error;
      }),
    ).rejects.toBe(error);
    expect(calls).toBe(3);
  });

  it('rethrows a frozen error object untouched', async () => {
    const error = Object.freeze(new Error('frozen'));
    const seen: unknown[] = [];
    const retry = retryWithBackoff({ maxRetries: 2, baseDelay: 0 });
    retry.on('retry', ({ error: failed }) => seen.push(failed));
    await expect(retry.execute(() => Promise.reject(error))).rejects.toBe(error);
    expect(Object.isFrozen(error)).toBe(true);
    expect(Object.keys(error)).toEqual([]);
    expect(seen).toEqual([error, error]);
  });

  it('rethrows a thrown non-error value as it is', async () => {
    const retry = retryWithBackoff({ maxRetries: 1, baseDelay: 0 });
    await expect(retry.execute(() => Promise.reject('plain string'))).rejects.toBe('plain string');
  });
});

describe('retryWithBackoff: the delay formula', () => {
  const shape = { baseDelay: 100, maxDelay: 1_000, exponentialBase: 2 };

  // baseDelay 100, maxDelay 1 000, exponentialBase 2: the exponential delays are 100, 200, 400, 800, 1 000 (1 600 capped).
  it.each<[JitterMode, number, number[]]>([
    ['none', 0, [100, 200, 400, 800, 1_000]],
    ['none', 0.999, [100, 200, 400, 800, 1_000]],
    ['proportional', 0, [50, 100, 200, 400, 500]],
    ['proportional', 0.5, [100, 200, 400, 800, 1_000]],
    ['proportional', 0.999, [149.9, 299.8, 599.6, 1_000, 1_000]],
    ['full', 0, [0, 0, 0, 0, 0]],
    ['full', 0.5, [50, 100, 200, 400, 500]],
    ['full', 0.999, [99.9, 199.8, 399.6, 799.2, 999]],
    ['equal', 0, [50, 100, 200, 400, 500]],
    ['equal', 0.5, [75, 150, 300, 600, 750]],
    ['equal', 0.999, [99.95, 199.9, 399.8, 799.6, 999.5]],
    // decorrelated: baseDelay + r × (3 × previous − baseDelay), the first previous being baseDelay.
    ['decorrelated', 0, [100, 100, 100, 100, 100]],
    ['decorrelated', 0.5, [200, 350, 575, 912.5, 1_000]],
    ['decorrelated', 0.999, [299.8, 898.6006, 1_000, 1_000, 1_000]],
  ])('jitter %s with random %d waits %j before retries 1..5', async (jitter, random, expected) => {
    const policy = retryWithBackoff({ ...shape, jitter, random: () => random, maxRetries: 5 });
    const computed = chainedDelays(policy, 5);
    expected.forEach((delay, i) => expect(computed[i]).toBeCloseTo(delay, 9));

    // A run waits the same delays, and reports them in the retry event.
    const reported: number[] = [];
    policy.on('retry', ({ delay }) => reported.push(delay));
    const { fn } = failing();
    const outcome = track(policy.execute(fn));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(outcome.rejected).toBe(true);
    expect(reported).toHaveLength(5);
    expected.forEach((delay, i) => expect(reported[i]).toBeCloseTo(delay, 9));
  });

  it.each<[number, number[]]>([
    [1, [100, 100, 100, 100, 100]],
    [1.5, [100, 150, 225, 337.5, 506.25]],
    [3, [100, 300, 900, 1_000, 1_000]],
    [10, [100, 1_000, 1_000, 1_000, 1_000]],
  ])('exponentialBase %d gives %j with no jitter', (exponentialBase, expected) => {
    const policy = retryWithBackoff({ ...shape, exponentialBase, jitter: 'none' });
    expect(chainedDelays(policy, 5)).toEqual(expected);
  });

  it.each(jitterModes.flatMap((jitter) => [0, 0.25, 0.5, 0.75, 0.999, 0.9999999999].map((random) => [jitter, random] as const)))(
    'jitter %s with random %d never exceeds maxDelay nor goes below 0',
    (jitter, random) => {
      const policy = retryWithBackoff({ baseDelay: 300, maxDelay: 2_000, jitter, random: () => random });
      const delays = chainedDelays(policy, 60);
      expect(delays.filter((delay) => outOfRange(delay, 2_000))).toEqual([]);
    },
  );

  it('decorrelated jitter draws each delay between baseDelay and three times the previous one, capped by maxDelay', () => {
    // A deterministic spread of random numbers in [0, 1).
    let seed = 7;
    const random = (): number => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed / 2_147_483_647;
    };
    const policy = retryWithBackoff({ baseDelay: 50, maxDelay: 5_000, jitter: 'decorrelated', random });
    let previous = 50;
    let reachedCap = false;
    let grew = false;
    for (let retry = 1; retry <= 500; retry++) {
      const delay = policy.delay(retry, previous);
      expect(delay).toBeGreaterThanOrEqual(50);
      expect(delay).toBeLessThanOrEqual(Math.min(5_000, 3 * previous));
      if (delay === 5_000) reachedCap = true;
      if (delay > previous) grew = true;
      previous = delay;
    }
    expect(grew).toBe(true);
    expect(reachedCap).toBe(true);
  });

  it.each(jitterModes.flatMap((jitter) => [0, 100].flatMap((baseDelay) => [0, 0.5, 0.999].map((random) => [jitter, baseDelay, random] as const))))(
    'jitter %s with baseDelay %d and random %d gives a finite delay ≤ maxDelay at retry 2000',
    (jitter, baseDelay, random) => {
      const policy = retryWithBackoff({ baseDelay, maxDelay: 10_000, exponentialBase: 10, jitter, random: () => random });
      const delays = chainedDelays(policy, 2_000);
      expect(delays.filter((delay) => outOfRange(delay, 10_000))).toEqual([]);
      expect(outOfRange(policy.delay(2_000), 10_000)).toBe(false);
      if (baseDelay === 0) expect(delays.every((delay) => delay === 0)).toBe(true);
    },
  );

  it.each(jitterModes.flatMap((jitter) => [0, 0.5, 0.999].map((random) => [jitter, random] as const)))(
    'jitter %s with random %d keeps delay(retry, previous) finite and capped for any previous',
    (jitter, random) => {
      const policy = retryWithBackoff({ baseDelay: 100, maxDelay: 1_000, jitter, random: () => random });
      const bad = [0, 1_000, 50_000, Number.MAX_VALUE, Infinity]
        .map((previous) => ({ previous, delay: policy.delay(3, previous) }))
        .filter(({ delay }) => outOfRange(delay, 1_000));
      expect(bad).toEqual([]);
    },
  );

  it.each([
    ['above 1', () => 1.5],
    ['negative', () => -0.5],
    ['NaN', () => Number.NaN],
  ])('keeps delays within [0, maxDelay] when random returns a number %s', (_label, random) => {
    for (const jitter of jitterModes) {
      const policy = retryWithBackoff({ baseDelay: 100, maxDelay: 1_000, jitter, random });
      for (const delay of chainedDelays(policy, 10)) {
        expect(Number.isFinite(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(1_000);
      }
    }
  });

  it('decorrelated jitter after a 0 ms delay waits exactly baseDelay; a negative or NaN previous counts as baseDelay', () => {
    const policy = retryWithBackoff({ baseDelay: 100, maxDelay: 10_000, jitter: 'decorrelated', random: () => 0.5 });
    expect(policy.delay(2, 0)).toBe(100); // between baseDelay and max(baseDelay, 3 × 0)
    expect(policy.delay(2, 100)).toBe(200); // 100 + 0.5 × (300 − 100)
    expect(policy.delay(2, -1)).toBe(200);
    expect(policy.delay(2, Number.NaN)).toBe(200);
  });

  it('reports a random source that returns a promise, by name, and draws 0 for that delay', async () => {
    const report = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const broken = new Error('no entropy');
    const policy = retryWithBackoff({ baseDelay: 100, jitter: 'full', random: () => Promise.reject(broken) as unknown as number });
    expect(policy.delay(1)).toBe(0);
    await Promise.resolve();
    await Promise.resolve();
    expect(report).toHaveBeenCalledWith('bulwark: retryWithBackoff random failed', broken);
    report.mockRestore();
  });

  it('waits maxDelay before every retry when only maxDelay is given below the default baseDelay', () => {
    const policy = retryWithBackoff({ maxDelay: 500, jitter: 'none' });
    expect(chainedDelays(policy, 5)).toEqual([500, 500, 500, 500, 500]);
    const proportional = retryWithBackoff({ maxDelay: 500, random: () => 0.999 });
    expect(chainedDelays(proportional, 5)).toEqual([500, 500, 500, 500, 500]);
  });
});

describe('retryWithBackoff: real waits', () => {
  it('starts each retry exactly after its delay, not 1 ms earlier', async () => {
    const { fn, times } = failing();
    const outcome = track(retryWithBackoff({ maxRetries: 3, baseDelay: 100, jitter: 'none' }).execute(fn));
    await vi.advanceTimersByTimeAsync(0);
    expect(times).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(times).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(199);
    expect(times).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(399);
    expect(times).toHaveLength(3);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toHaveLength(4);
    expect(outcome.rejected).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('drives its sleeps through an injected clock', async () => {
    const scheduled: number[] = [];
    const clock = {
      now: () => Date.now(),
      setTimeout: (callback: () => void, ms: number): unknown => {
        scheduled.push(ms);
        return globalThis.setTimeout(callback, ms);
      },
      clearTimeout: (handle: unknown): void => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    const { fn } = failing();
    const outcome = track(retryWithBackoff({ maxRetries: 2, baseDelay: 40, jitter: 'none', clock }).execute(fn));
    await vi.advanceTimersByTimeAsync(120);
    expect(outcome.rejected).toBe(true);
    expect(scheduled).toEqual([40, 80]);
  });
});

describe('retryWithBackoff: events', () => {
  it('emits retry { error, attempt, delay } for each failed attempt it retries, then giveUp once', async () => {
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 100, jitter: 'none' });
    const retries: { error: unknown; attempt: number; delay: number }[] = [];
    const giveUps: { error: unknown; attempts: number }[] = [];
    retry.on('retry', (event) => retries.push(event));
    retry.on('giveUp', (event) => giveUps.push(event));
    const { fn, errors } = failing();
    const outcome = track(retry.execute(fn));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome.error).toBe(errors[3]);
    expect(retries).toEqual([
      { error: errors[0], attempt: 1, delay: 100 },
      { error: errors[1], attempt: 2, delay: 200 },
      { error: errors[2], attempt: 3, delay: 400 },
    ]);
    retries.forEach((event, i) => expect(event.error).toBe(errors[i]));
    expect(giveUps).toHaveLength(1);
    expect(giveUps[0]?.error).toBe(errors[3]);
    expect(giveUps[0]?.attempts).toBe(4);
  });

  it('reports in the retry event the delay it really waits', async () => {
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 100, random: () => 0.25 });
    const delays: number[] = [];
    retry.on('retry', ({ delay }) => delays.push(delay));
    const { fn, times } = failing();
    const outcome = track(retry.execute(fn));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome.rejected).toBe(true);
    expect(delays).toEqual([75, 150, 300]);
    expect(times.slice(1).map((time, i) => time - (times[i] ?? 0))).toEqual(delays);
  });

  it('emits giveUp once with the attempt count when retryOn declines', async () => {
    const retry = retryWithBackoff({ maxRetries: 5, baseDelay: 10, jitter: 'none', retryOn: (_error, attempt) => attempt < 2 });
    const giveUp = vi.fn();
    const onRetry = vi.fn();
    retry.on('giveUp', giveUp);
    retry.on('retry', onRetry);
    const { fn, errors } = failing();
    const outcome = track(retry.execute(fn));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(errors).toHaveLength(2);
    expect(outcome.error).toBe(errors[1]);
    expect(onRetry).toHaveBeenCalledTimes(1);
    expect(giveUp).toHaveBeenCalledTimes(1);
    expect(giveUp).toHaveBeenCalledWith({ error: errors[1], attempts: 2, reason: 'not-retryable' });
  });

  it('emits nothing for a call that succeeds at once, and stops emitting after unsubscribe', async () => {
    const retry = retryWithBackoff({ maxRetries: 1, baseDelay: 0 });
    const onRetry = vi.fn();
    const unsubscribe = retry.on('retry', onRetry);
    await expect(retry.execute(() => 'ok')).resolves.toBe('ok');
    expect(onRetry).not.toHaveBeenCalled();
    unsubscribe();
    await expect(retry.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(onRetry).not.toHaveBeenCalled();
  });
});

describe('retryWithBackoff: logs', () => {
  it('sums up the retries after the first in one line of "N more retries" when they are logged', async () => {
    const lines: unknown[][] = [];
    const record = (level: string) => (...args: unknown[]) => void lines.push([level, ...args]);
    const clock = new CountingClock({ flush: () => Promise.resolve() });
    const policy = retryWithBackoff({ name: 'orders', maxRetries: 3, baseDelay: 0 });
    logPolicyEvents(policy, { info: record('info'), warn: record('warn'), error: record('error') }, { levels: { retry: 'info', giveUp: 'off' }, clock, summaryInterval: 1_000 });
    await expect(policy.execute(failing().fn)).rejects.toThrow('attempt 4 failed');
    await clock.advance(1_000);
    expect(lines.map((line) => line[2])).toEqual([
      'retry "orders": attempt 1 failed, retrying in 0 ms: attempt 1 failed',
      'retry "orders": 2 more retries in the last 1000 ms',
    ]);
  });
});

describe('retryWithBackoff: retryOn', () => {
  it('is asked with the error and the number of the attempt that failed', async () => {
    const retryOn = vi.fn((_error: unknown, _attempt: number) => true);
    const { fn, errors } = failing();
    const outcome = track(retryWithBackoff({ maxRetries: 3, baseDelay: 0, retryOn }).execute(fn));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.error).toBe(errors[3]);
    expect(retryOn.mock.calls.slice(0, 3)).toEqual([
      [errors[0], 1],
      [errors[1], 2],
      [errors[2], 3],
    ]);
    retryOn.mock.calls.slice(0, 3).forEach(([error], i) => expect(error).toBe(errors[i]));
  });

  it('stops at once when it declines: one call, the same error, no timer left', async () => {
    const { fn, errors } = failing();
    const outcome = track(retryWithBackoff({ maxRetries: 3, baseDelay: 100, retryOn: () => false }).execute(fn));
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.error).toBe(errors[0]);
    expect(errors).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with what a throwing retryOn threw, without retrying', async () => {
    const broken = new Error('retryOn is broken');
    const { fn, errors } = failing();
    const retry = retryWithBackoff({
      maxRetries: 3,
      baseDelay: 0,
      retryOn: () => {
        throw broken;
      },
    });
    await expect(retry.execute(fn)).rejects.toBe(broken);
    expect(errors).toHaveLength(1);
  });

  it.each<[string, string, () => Error, number]>([
    // what the default does, the error, how many calls maxRetries 3 makes
    ['does not retry', 'a CircuitOpenError', () => new CircuitOpenError(1_000), 1],
    ['does not retry', 'a BulkheadRejectedError', () => new BulkheadRejectedError('full', 1, 0), 1],
    ['retries', 'a TypeError (fetch network failure)', () => new TypeError('fetch failed'), 4],
    ['retries', 'a plain Error', () => new Error('503'), 4],
    ['retries', 'a TimeoutError', () => new TimeoutError(100), 4],
  ])('by default %s %s', async (_verb, _label, make, expectedCalls) => {
    const error = make();
    let calls = 0;
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 0 });
    await expect(
      retry.execute(() => {
        calls++;
        return Promise.reject(error);
      }),
    ).rejects.toBe(error);
    expect(calls).toBe(expectedCalls);
  });
});

describe('retryWithBackoff: caller aborts', () => {
  it('rejects at once with signal.reason when the caller aborts during a sleep, and clears the timer', async () => {
    const retry = retryWithBackoff({ maxRetries: 5, baseDelay: 1_000, jitter: 'none' });
    const giveUp = vi.fn();
    retry.on('giveUp', giveUp);
    const controller = new AbortController();
    const { fn, errors } = failing();
    const outcome = track(retry.execute(fn, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    expect(errors).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(1);

    const reason = new Error('user navigated away');
    controller.abort(reason);
    await Promise.resolve();
    await Promise.resolve();
    expect(outcome.rejected).toBe(true);
    expect(outcome.error).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);

    await vi.advanceTimersByTimeAsync(60_000);
    expect(errors).toHaveLength(1);
    expect(giveUp).not.toHaveBeenCalled();
  });

  it('rejects with the default AbortError reason when the caller aborts without a reason', async () => {
    const controller = new AbortController();
    const { fn } = failing();
    const outcome = track(retryWithBackoff({ maxRetries: 5, baseDelay: 1_000 }).execute(fn, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.error).toBe(controller.signal.reason);
    expect((outcome.error as Error).name).toBe('AbortError');
  });

  it.each([
    ['ignores its signal and fails later', false],
    ['rejects with signal.reason', true],
  ])('does not retry an attempt the caller aborted while it ran (fn %s)', async (_label, listens) => {
    const retry = retryWithBackoff({ maxRetries: 5, baseDelay: 10, jitter: 'none' });
    const retryOn = vi.fn(() => true);
    const onRetry = vi.fn();
    const giveUp = vi.fn();
    const guarded = retryWithBackoff({ maxRetries: 5, baseDelay: 10, jitter: 'none', retryOn });
    for (const policy of [retry, guarded]) {
      policy.on('retry', onRetry);
      policy.on('giveUp', giveUp);
    }
    for (const policy of [retry, guarded]) {
      let calls = 0;
      const controller = new AbortController();
      const outcome = track(
        policy.execute(
          ({ signal }) =>
            new Promise<never>((_resolve, reject) => {
              calls++;
              if (listens) signal.addEventListener('abort', () => reject(signal.reason), { once: true });
              setTimeout(() => reject(new Error('late failure')), 50);
            }),
          { signal: controller.signal },
        ),
      );
      await vi.advanceTimersByTimeAsync(20);
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(outcome.error).toBe(reason);
      expect(calls).toBe(1);
    }
    expect(retryOn).not.toHaveBeenCalled();
    expect(onRetry).not.toHaveBeenCalled();
    expect(giveUp).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('with maxRetries Infinity retries until the caller aborts', async () => {
    const controller = new AbortController();
    const giveUp = vi.fn();
    const retry = retryWithBackoff({ maxRetries: Infinity, baseDelay: 10, maxDelay: 10, jitter: 'none' });
    retry.on('giveUp', giveUp);
    const { fn, errors } = failing();
    const outcome = track(retry.execute(fn, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(errors).toHaveLength(101);
    expect(outcome.settled).toBe(false);
    const reason = new Error('stop');
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome.error).toBe(reason);
    expect(errors).toHaveLength(101);
    expect(giveUp).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not call fn when the signal is already aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('already gone');
    controller.abort(reason);
    const fn = vi.fn(() => 'never');
    await expect(retryWithBackoff().execute(fn, { signal: controller.signal })).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
  });

  it('leaves no abort listener on the caller signal after many retried calls', async () => {
    const controller = new AbortController();
    const added = vi.spyOn(controller.signal, 'addEventListener');
    const removed = vi.spyOn(controller.signal, 'removeEventListener');
    const retry = retryWithBackoff({ maxRetries: 2, baseDelay: 1, jitter: 'none' });
    const calls = Array.from({ length: 50 }, () => retry.execute(failing().fn, { signal: controller.signal }).catch(() => undefined));
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all(calls);
    expect(added.mock.calls.length).toBeGreaterThan(0);
    expect(removed.mock.calls.length).toBe(added.mock.calls.length);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('retryWithBackoff with withTimeout', () => {
  it('stops retrying at once when an enclosing timeout expires during a sleep', async () => {
    const retry = retryWithBackoff({ maxRetries: 10, baseDelay: 100, jitter: 'none' });
    const giveUp = vi.fn();
    retry.on('giveUp', giveUp);
    const { fn, times } = failing();
    // Attempts at 0 and 100 ms, then a sleep until 300 ms that the 250 ms deadline cuts short.
    const outcome = track(compose(withTimeout(250), retry).execute(fn));
    await vi.advanceTimersByTimeAsync(249);
    expect(times).toEqual([0, 100].map((t) => t + (times[0] ?? 0)));
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome.rejected).toBe(true);
    expect(isTimeoutError(outcome.error)).toBe(true);
    expect((outcome.error as TimeoutError).timeout).toBe(250);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(times).toHaveLength(2);
    expect(giveUp).not.toHaveBeenCalled();
  });

  it('starts no new attempt when an enclosing timeout expires during an attempt', async () => {
    const retryOn = vi.fn(() => true);
    const retry = retryWithBackoff({ maxRetries: 10, baseDelay: 100, jitter: 'none', retryOn });
    const giveUp = vi.fn();
    retry.on('giveUp', giveUp);
    const signals: AbortSignal[] = [];
    const outcome = track(
      compose(withTimeout(150), retry).execute(({ signal, attempt }) => {
        signals.push(signal);
        if (attempt === 1) return Promise.reject(new Error('first failure'));
        // The second attempt ignores its signal and fails long after the deadline.
        return new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('late')), 1_000));
      }),
    );
    await vi.advanceTimersByTimeAsync(149);
    expect(signals).toHaveLength(2);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(outcome.error)).toBe(true);
    expect(signals[1]?.aborted).toBe(true);
    expect(signals[1]?.reason).toBe(outcome.error);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(signals).toHaveLength(2);
    expect(retryOn).toHaveBeenCalledTimes(1);
    expect(giveUp).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives each attempt its own deadline inside the retry and retries the TimeoutErrors', async () => {
    const retry = retryWithBackoff({ maxRetries: 2, baseDelay: 10, jitter: 'none' });
    const retried: unknown[] = [];
    const giveUp = vi.fn();
    retry.on('retry', ({ error }) => retried.push(error));
    retry.on('giveUp', giveUp);
    const signals: AbortSignal[] = [];
    const times: number[] = [];
    const start = Date.now();
    const outcome = track(
      compose(retry, withTimeout(50)).execute(({ signal }) => {
        signals.push(signal);
        times.push(Date.now() - start);
        return new Promise<never>(() => {}); // hangs and ignores its signal
      }),
    );
    // Attempt 1 at 0 (deadline 50), sleep 10, attempt 2 at 60 (deadline 110), sleep 20, attempt 3 at 130 (deadline 180).
    await vi.advanceTimersByTimeAsync(179);
    expect(times).toEqual([0, 60, 130]);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome.rejected).toBe(true);
    expect(isTimeoutError(outcome.error)).toBe(true);
    expect(signals.map((signal) => signal.aborted)).toEqual([true, true, true]);
    expect(signals[2]?.reason).toBe(outcome.error);
    expect(retried).toEqual([signals[0]?.reason, signals[1]?.reason]);
    expect(retried[0]).not.toBe(retried[1]);
    expect(retried.every(isTimeoutError)).toBe(true);
    expect(giveUp).toHaveBeenCalledWith({ error: outcome.error, attempts: 3, reason: 'retries-spent' });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('retryWithBackoff: options', () => {
  it.each<[string, Record<string, unknown>, typeof RangeError | typeof TypeError, RegExp]>([
    ['negative maxRetries', { maxRetries: -1 }, RangeError, /maxRetries.*-1/],
    ['NaN maxRetries', { maxRetries: Number.NaN }, RangeError, /maxRetries.*NaN/],
    ['fractional maxRetries', { maxRetries: 1.5 }, RangeError, /maxRetries.*1\.5/],
    ['-Infinity maxRetries', { maxRetries: -Infinity }, RangeError, /maxRetries.*-Infinity/],
    ['a string maxRetries', { maxRetries: '3' }, TypeError, /maxRetries.*"3"/],
    ['negative baseDelay', { baseDelay: -1 }, RangeError, /baseDelay.*-1/],
    ['NaN baseDelay', { baseDelay: Number.NaN }, RangeError, /baseDelay.*NaN/],
    ['Infinity baseDelay', { baseDelay: Infinity }, RangeError, /baseDelay.*Infinity/],
    ['negative maxDelay', { maxDelay: -5 }, RangeError, /maxDelay.*-5/],
    ['maxDelay below baseDelay', { baseDelay: 1_000, maxDelay: 500 }, RangeError, /maxDelay.*500/],
    ['unknown jitter', { jitter: 'random' }, RangeError, /jitter.*"random"/],
    ['non-string jitter', { jitter: 42 }, TypeError, /jitter.*42/],
    ['exponentialBase below 1', { exponentialBase: 0.5 }, RangeError, /exponentialBase.*0\.5/],
    ['non-function retryOn', { retryOn: true }, TypeError, /retryOn.*true/],
    ['non-function random', { random: 0.5 }, TypeError, /random.*0\.5/],
  ])('rejects %s at build time with an error naming the option and the value', (_label, options, type, message) => {
    expect(() => retryWithBackoff(options as RetryOptions)).toThrow(type);
    expect(() => retryWithBackoff(options as RetryOptions)).toThrow(message);
  });

  it.each([
    ['retries', '"maxRetries"'],
    ['maxAttempts', '"maxRetries"'],
    ['maxRetryAttempts', '"maxRetries"'],
    ['minTimeout', '"baseDelay"'],
    ['initialDelay', '"baseDelay"'],
    ['delayGenerator', '"delay"'],
    ['maxTimeout', '"maxDelay"'],
    ['factor', '"exponentialBase"'],
    ['randomize', '"jitter"'],
    ['useJitter', '"jitter"'],
    ['shouldRetry', '"retryOn"'],
    ['shouldHandle', '"retryOn" or "retryOnResult"'],
    ['handleWhenResult', '"retryOnResult"'],
    ['onFailedAttempt', "on('retry', listener)"],
    ['retryBudget', '"budget"'],
  ])("refuses the peer libraries' option %s, naming bulwark's %s", (key, ours) => {
    expect(() => retryWithBackoff({ [key]: 1 } as RetryOptions)).toThrow(
      new TypeError(
        `retryWithBackoff has no option "${key}" (another library's name: bulwark's is ${ours}); known options: "maxRetries", "baseDelay", "maxDelay", "exponentialBase", "jitter", "retryOn", "retryOnResult", "delay", "random", "clock", "budget", "name"`,
      ),
    );
  });

  it('refuses a name that is not a string with the whole rule', () => {
    expect(() => retryWithBackoff({ name: 7 } as unknown as RetryOptions)).toThrow(new TypeError('retryWithBackoff name must be a string, got 7'));
  });

  it('names both values when maxDelay is below baseDelay', () => {
    expect(() => retryWithBackoff({ baseDelay: 1_000, maxDelay: 500 })).toThrow(/1000|1_000|1,000/);
  });

  it.each<[string, RetryOptions]>([
    ['maxDelay alone below the default baseDelay', { maxDelay: 500 }],
    ['baseDelay alone above the default maxDelay', { baseDelay: 60_000 }],
    ['maxDelay equal to baseDelay', { baseDelay: 500, maxDelay: 500 }],
    ['maxRetries 0', { maxRetries: 0 }],
    ['maxRetries Infinity', { maxRetries: Infinity }],
    ['baseDelay 0', { baseDelay: 0 }],
    ['every jitter mode', { jitter: 'decorrelated' }],
  ])('accepts %s', (_label, options) => {
    expect(retryWithBackoff(options)).toBeInstanceOf(RetryPolicy);
  });

  it('exposes the defaults of DESIGN: maxRetries 3, baseDelay 1 000, maxDelay 30 000, exponentialBase 2, proportional jitter', () => {
    const retry = retryWithBackoff();
    expect([retry.maxRetries, retry.baseDelay, retry.maxDelay, retry.exponentialBase, retry.jitter]).toEqual([3, 1_000, 30_000, 2, 'proportional']);
  });
});

describe('retryWithBackoff: retries without delay', () => {
  // Bounded, not Infinity: without the yield this test would starve the event loop and hang.
  it('still lets an enclosing timeout fire during a long streak of zero-delay retries', async () => {
    let calls = 0;
    const stack = compose(withTimeout(40), retryWithBackoff({ maxRetries: 100_000, baseDelay: 0, maxDelay: 0 }));
    const call = track(
      stack.execute(() => {
        calls++;
        throw new Error('down');
      }),
    );
    await vi.advanceTimersByTimeAsync(40);
    expect(call.rejected).toBe(true);
    expect(isTimeoutError(call.error)).toBe(true);
    const callsWhenAnswered = calls;
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toBe(callsWhenAnswered);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('runs a short streak of zero-delay retries without arming a timer', async () => {
    const setTimeout = vi.fn(globalThis.setTimeout);
    const clock = { now: () => Date.now(), setTimeout, clearTimeout: globalThis.clearTimeout } as const;
    const fn = vi.fn(({ attempt }: ExecutionContext) => (attempt < 4 ? Promise.reject(new Error('blip')) : 'ok'));
    await expect(retryWithBackoff({ maxRetries: 3, baseDelay: 0, maxDelay: 0, clock }).execute(fn)).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(4);
    expect(setTimeout).not.toHaveBeenCalled();
  });
});
