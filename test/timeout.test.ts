import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TimeoutError, TimeoutPolicy, isResilienceError, isTimeoutError, withTimeout, type TimeoutOptions } from '../src/index.js';
import { CountingClock } from './fixtures/clock.js';
import { collectingUnhandledRejections, deferred, flushMicrotasks, hang, letNodeReportUnhandledRejections, track } from './fixtures/promises.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('withTimeout: the deadline', () => {
  it.each([1, 100, 2_500])('rejects a call that ignores its signal with TimeoutError at %i ms, not 1 ms earlier', async (ms) => {
    const outcome = track(withTimeout(ms).execute(hang));
    await vi.advanceTimersByTimeAsync(ms - 1);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome.rejected).toBe(true);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(isTimeoutError(outcome.error)).toBe(true);
    expect(isResilienceError(outcome.error)).toBe(true);
    expect((outcome.error as TimeoutError).name).toBe('TimeoutError');
    expect((outcome.error as TimeoutError).timeout).toBe(ms);
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(['system', 'injected'] as const)('rejects with TimeoutError a call whose function answers its abort with a value (%s clock)', async (which) => {
    const clock = which === 'system' ? undefined : new CountingClock({ flush: flushMicrotasks });
    const policy = withTimeout(100, { clock });
    const outcome = track(policy.execute(({ signal }) => new Promise((resolve) => signal.addEventListener('abort', () => resolve('answered the abort')))));
    if (clock === undefined) await vi.advanceTimersByTimeAsync(100);
    else await clock.advance(100);
    await flushMicrotasks();
    expect(isTimeoutError(outcome.error)).toBe(true);
  });

  it('aborts ctx.signal with the same TimeoutError the call rejects with', async () => {
    let seen: AbortSignal | undefined;
    const outcome = track(
      withTimeout(100).execute(({ signal }) => {
        seen = signal;
        return hang();
      }),
    );
    await vi.advanceTimersByTimeAsync(99);
    expect(seen?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(outcome.error);
    expect(isTimeoutError(seen?.reason)).toBe(true);
  });

  it('rejects with its TimeoutError when fn stops on the signal and rejects with signal.reason', async () => {
    let calls = 0;
    const outcome = track(
      withTimeout(50).execute(
        ({ signal }) =>
          new Promise<never>((_resolve, reject) => {
            calls++;
            signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          }),
      ),
    );
    await vi.advanceTimersByTimeAsync(50);
    expect(isTimeoutError(outcome.error)).toBe(true);
    expect(calls).toBe(1);
  });

  it('gives every call its own deadline and its own signal', async () => {
    const policy = withTimeout(100);
    const signals: AbortSignal[] = [];
    const first = track(
      policy.execute(({ signal }) => {
        signals.push(signal);
        return hang();
      }),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(isTimeoutError(first.error)).toBe(true);
    const second = track(
      policy.execute(({ signal }) => {
        signals.push(signal);
        return new Promise((resolve) => setTimeout(() => resolve('fresh'), 50));
      }),
    );
    await vi.advanceTimersByTimeAsync(50);
    expect(second.value).toBe('fresh');
    expect(signals[1]?.aborted).toBe(false);
    expect(signals[0]).not.toBe(signals[1]);
  });

  it('resolves a call that settles 1 ms before the deadline', async () => {
    const outcome = track(withTimeout(100).execute(() => new Promise((resolve) => setTimeout(() => resolve('just in time'), 99))));
    await vi.advanceTimersByTimeAsync(99);
    expect(outcome.value).toBe('just in time');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outcome.rejected).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no unhandled rejection when fn rejects after the timeout answered', async () => {
    await collectingUnhandledRejections(async (unhandled) => {
      const late = new Error('late failure');
      const outcome = track(withTimeout(10).execute(() => new Promise((_resolve, reject) => setTimeout(() => reject(late), 50))));
      await vi.advanceTimersByTimeAsync(10);
      expect(isTimeoutError(outcome.error)).toBe(true);
      await vi.advanceTimersByTimeAsync(100);
      await letNodeReportUnhandledRejections();
      expect(unhandled).toEqual([]);
      expect(isTimeoutError(outcome.error)).toBe(true);
    });
  });
});

describe('withTimeout: nothing left behind', () => {
  it.each<[string, () => unknown]>([
    ['returns a value synchronously', () => 'sync'],
    ['resolves later', () => new Promise((resolve) => setTimeout(() => resolve('async'), 10))],
    ['throws synchronously', () => {
      throw new Error('sync throw');
    }],
    ['rejects later', () => new Promise((_resolve, reject) => setTimeout(() => reject(new Error('async reject')), 10))],
  ])('clears its timer when fn %s before the deadline', async (_label, fn) => {
    const outcome = track(withTimeout(1_000).execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    expect(outcome.settled).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('passes fn’s own error through unchanged', async () => {
    const error = new Error('dependency said no');
    await expect(withTimeout(1_000).execute(() => Promise.reject(error))).rejects.toBe(error);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no timer after many calls that settle before the deadline', async () => {
    const policy = withTimeout(5_000);
    const calls = Array.from({ length: 1_000 }, (_, i) => policy.execute(() => Promise.resolve(i)));
    await expect(Promise.all(calls)).resolves.toHaveLength(1_000);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('withTimeout(Infinity)', () => {
  it('sets no deadline and arms no timer', async () => {
    const work = deferred<string>();
    let seen: AbortSignal | undefined;
    const policy = withTimeout(Infinity);
    expect(policy.timeout).toBe(Infinity);
    const outcome = track(
      policy.execute(({ signal }) => {
        seen = signal;
        return work.promise;
      }),
    );
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(30 * 24 * 3_600_000);
    expect(outcome.settled).toBe(false);
    expect(seen?.aborted).toBe(false);
    work.resolve('eventually');
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.value).toBe('eventually');
  });
});

describe('withTimeout: caller aborts', () => {
  it('rejects with the caller’s reason, not a TimeoutError, and clears the timer', async () => {
    const policy = withTimeout(1_000);
    const onTimeout = vi.fn();
    policy.on('timeout', onTimeout);
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const outcome = track(
      policy.execute(
        ({ signal }) => {
          seen = signal;
          return hang();
        },
        { signal: controller.signal },
      ),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(vi.getTimerCount()).toBe(1);
    const reason = new Error('user cancelled');
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.error).toBe(reason);
    expect(isTimeoutError(outcome.error)).toBe(false);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(onTimeout).not.toHaveBeenCalled();
  });

  it('keeps the default AbortError of a caller who aborts without a reason', async () => {
    const controller = new AbortController();
    const outcome = track(withTimeout(1_000).execute(hang, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome.error).toBe(controller.signal.reason);
    expect((outcome.error as Error).name).toBe('AbortError');
  });

  it('times out normally when the caller’s signal does not abort, and removes its listener', async () => {
    const controller = new AbortController();
    const removed = vi.spyOn(controller.signal, 'removeEventListener');
    const outcome = track(withTimeout(100).execute(hang, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(isTimeoutError(outcome.error)).toBe(true);
    expect(removed).toHaveBeenCalledWith('abort', expect.any(Function));
  });
});

describe('withTimeout: events', () => {
  it('emits timeout { error, timeout } once with the error the call rejects with', async () => {
    const policy = withTimeout(200);
    const events: { error: TimeoutError; timeout: number }[] = [];
    policy.on('timeout', (event) => events.push(event));
    const outcome = track(policy.execute(hang));
    await vi.advanceTimersByTimeAsync(200);
    expect(events).toHaveLength(1);
    expect(events[0]?.error).toBe(outcome.error);
    expect(events[0]?.timeout).toBe(200);
  });

  it('emits nothing for a call that settles in time, and nothing after unsubscribe', async () => {
    const policy = withTimeout(200);
    const onTimeout = vi.fn();
    const unsubscribe = policy.on('timeout', onTimeout);
    await expect(policy.execute(() => 'fast')).resolves.toBe('fast');
    unsubscribe();
    const outcome = track(policy.execute(hang));
    await vi.advanceTimersByTimeAsync(200);
    expect(outcome.rejected).toBe(true);
    expect(onTimeout).not.toHaveBeenCalled();
  });

  it('rejects an unknown event name with a TypeError', () => {
    expect(() => withTimeout(10).on('expired' as 'timeout', () => {})).toThrow(TypeError);
  });
});

describe('withTimeout with an injected clock', () => {
  it('arms its deadline on the clock and clears it there', async () => {
    const clock = new CountingClock({ flush: flushMicrotasks }); // fake timers fake setImmediate here
    const policy = withTimeout(300, { clock });
    const outcome = track(policy.execute(hang));
    expect(clock.armed).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    await clock.advance(299);
    expect(outcome.settled).toBe(false);
    await clock.advance(1);
    expect(isTimeoutError(outcome.error)).toBe(true);
    expect(clock.armed).toBe(0);

    const work = deferred<string>();
    const fast = track(policy.execute(() => work.promise));
    expect(clock.armed).toBe(1);
    work.resolve('done');
    await flushMicrotasks();
    expect(fast.value).toBe('done');
    expect(clock.armed).toBe(0);
  });
});

describe('withTimeout: options', () => {
  it.each<[string, unknown]>([
    ['a string', '100'],
    ['null', null],
    ['undefined', undefined],
    ['an object', {}],
  ])('throws a TypeError for %s as ms', (_label, ms) => {
    expect(() => withTimeout(ms as number)).toThrow(TypeError);
    expect(() => withTimeout(ms as number)).toThrow(/ms/);
  });

  it.each<[number, RegExp]>([
    [-1, /ms.*-1/],
    [Number.NaN, /ms.*NaN/],
    [-Infinity, /ms.*-Infinity/],
    [2 ** 31, /ms.*2147483648/],
  ])('throws a RangeError naming the option for %d', (ms, message) => {
    expect(() => withTimeout(ms)).toThrow(RangeError);
    expect(() => withTimeout(ms)).toThrow(message);
  });

  it.each<[string, unknown]>([
    ['a clock without setTimeout', { now: () => 0 }],
    ['a non-object', 'system'],
  ])('throws a TypeError for %s as clock', (_label, clock) => {
    expect(() => withTimeout(10, { clock } as TimeoutOptions)).toThrow(/clock/);
  });

  it('refuses a name that is not a string with the whole rule', () => {
    expect(() => withTimeout(10, { name: 7 } as unknown as TimeoutOptions)).toThrow(new TypeError('withTimeout name must be a string, got 7'));
  });

  it('accepts 0 and a large finite deadline', () => {
    expect(withTimeout(0)).toBeInstanceOf(TimeoutPolicy);
    expect(withTimeout(86_400_000).timeout).toBe(86_400_000);
  });
});

describe('withTimeout on the system clock: one timer for every pending call', () => {
  it('arms no timer at all for calls that settle within the turn that started them', async () => {
    const armed = vi.spyOn(globalThis, 'setTimeout');
    const policy = withTimeout(1_000);
    for (let i = 0; i < 50; i++) await expect(policy.execute(() => Promise.resolve(i))).resolves.toBe(i);
    await expect(Promise.all(Array.from({ length: 50 }, (_, i) => policy.execute(async () => i)))).resolves.toHaveLength(50);
    expect(armed).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('serves 100 pending calls with one timer, and clears it when the last one settles', async () => {
    const policy = withTimeout(1_000);
    const work = Array.from({ length: 100 }, () => deferred<string>());
    const outcomes = work.map((w) => track(policy.execute(() => w.promise)));
    await flushMicrotasks();
    expect(vi.getTimerCount()).toBe(1);
    work.forEach((w, i) => {
      if (i < 99) w.resolve(`done ${i}`);
    });
    await flushMicrotasks();
    expect(outcomes.filter((o) => o.settled)).toHaveLength(99);
    expect(vi.getTimerCount()).toBe(1);
    work[99]?.resolve('last');
    await flushMicrotasks();
    expect(outcomes[99]?.value).toBe('last');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('arms its one timer for exactly the time left to the earliest deadline, and re-arms it for the next one', async () => {
    const armed = vi.spyOn(globalThis, 'setTimeout');
    const policy = withTimeout(1_000);
    const early = deferred<string>();
    const first = track(policy.execute(() => early.promise)); // t = 0, deadline 1 000
    await vi.advanceTimersByTimeAsync(300);
    const second = track(policy.execute(hang)); // t = 300, deadline 1 300
    await vi.advanceTimersByTimeAsync(400);
    const third = track(policy.execute(hang)); // t = 700, deadline 1 700
    early.resolve('early');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(first.value).toBe('early');
    expect(isTimeoutError(second.error)).toBe(true);
    expect(isTimeoutError(third.error)).toBe(true);
    // At 0 for the first deadline; at 1 000 for the second (300 ms left); at 1 300 for the third (400 ms left).
    expect(armed.mock.calls.map(([, ms]) => ms)).toEqual([1_000, 300, 400]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('times each call out at its own deadline, also after an earlier call settled early', async () => {
    const policy = withTimeout(1_000);
    const onTimeout = vi.fn();
    policy.on('timeout', onTimeout);
    const early = deferred<string>();
    const first = track(policy.execute(() => early.promise)); // t = 0, settles at 100
    await vi.advanceTimersByTimeAsync(300);
    const second = track(policy.execute(hang)); // t = 300, deadline 1 300
    await vi.advanceTimersByTimeAsync(400);
    const third = track(policy.execute(hang)); // t = 700, deadline 1 700
    early.resolve('early');
    await flushMicrotasks();
    expect(first.value).toBe('early');
    await vi.advanceTimersByTimeAsync(1_299 - 700);
    expect(second.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(second.error)).toBe(true);
    expect(third.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(399);
    expect(third.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(third.error)).toBe(true);
    expect(onTimeout).toHaveBeenCalledTimes(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('times out calls that start at the same instant together, each with its own error', async () => {
    const policy = withTimeout(50);
    const outcomes = Array.from({ length: 3 }, () => track(policy.execute(hang)));
    await vi.advanceTimersByTimeAsync(49);
    expect(outcomes.some((o) => o.settled)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcomes.every((o) => isTimeoutError(o.error))).toBe(true);
    expect(new Set(outcomes.map((o) => o.error)).size).toBe(3);
  });

  it('keeps the deadline of a call whose function takes a few microtask turns and then hangs', async () => {
    const policy = withTimeout(200);
    const outcome = track(
      policy.execute(async () => {
        for (let i = 0; i < 20; i++) await Promise.resolve();
        return hang();
      }),
    );
    await vi.advanceTimersByTimeAsync(199);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(outcome.error)).toBe(true);
  });

  it('does not let one policy’s timer serve another’s calls', async () => {
    const short = withTimeout(100);
    const long = withTimeout(300);
    const a = track(short.execute(hang));
    const b = track(long.execute(hang));
    await vi.advanceTimersByTimeAsync(100);
    expect(isTimeoutError(a.error)).toBe(true);
    expect(b.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(isTimeoutError(b.error)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});
