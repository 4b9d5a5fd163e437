import { AsyncLocalStorage } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  BulkheadRejectedError,
  CircuitBreaker,
  MetricsRegistry,
  TimeoutError,
  compose,
  isTimeoutError,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type ExecutionContext,
  type Policy,
} from '../src/index.js';
import { deferred, flush, hang, track } from './fixtures/promises.js';

/*
 * How a call moves through a stack, seen from the outside: what the caller gets, what `fn`
 * sees in its ctx, which timers and listeners are left, and what a foreign policy (any object
 * with execute) in the stack receives. Everything goes through the public API only.
 */

/** Fakes the timers and Date; setImmediate stays real, so `flush` lets every pending reaction run. */
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A function that resolves with `value` when its signal aborts, instead of rejecting: partial results, a "cancelled" marker. */
function resolvesOnAbort<T>(value: T) {
  return vi.fn(({ signal }: ExecutionContext) => new Promise<T>((resolve) => signal.addEventListener('abort', () => resolve(value), { once: true })));
}

/** A policy not made by bulwark: an object with `execute` (and `wrap`, which the type asks for). */
function foreignPolicy(execute: (fn: (ctx?: Partial<ExecutionContext>) => unknown, signal: AbortSignal | undefined) => Promise<unknown>): Policy {
  const policy: Policy = {
    execute: (fn, options) => execute(fn as (ctx?: Partial<ExecutionContext>) => unknown, options?.signal) as Promise<never>,
    wrap:
      (fn) =>
      (...args) =>
        policy.execute(() => fn(...args)),
  };
  return policy;
}

/** Waits `ms`; ends early with the signal's reason when it aborts (as cockatiel's and p-retry's sleeps do). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A retry policy of another library that listens to its signal: it hands it on as ctx.signal and stops retrying once it aborts. */
function foreignRetry(attempts: number, delay: number) {
  const signals: (AbortSignal | undefined)[] = [];
  const policy = foreignPolicy(async (fn, signal) => {
    signals.push(signal);
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn({ signal: signal ?? new AbortController().signal, attempt });
      } catch (error) {
        if (attempt >= attempts || signal?.aborted === true) throw error;
        await sleep(delay, signal);
      }
    }
  });
  return { policy, signals };
}

/** A retry policy of another library that ignores its signal: it runs fn again after a fixed sleep, whatever happened. */
function naiveForeignRetry(attempts: number, delay: number): Policy {
  return foreignPolicy(async (fn) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn({ attempt });
      } catch (error) {
        if (attempt >= attempts) throw error;
        await sleep(delay);
      }
    }
  });
}

/** A timeout policy of another library: it gives fn a signal of its own and aborts it when its deadline passes. */
function foreignTimeout(ms: number, error: Error) {
  const own: AbortSignal[] = [];
  const policy = foreignPolicy(async (fn, signal) => {
    const controller = new AbortController();
    own.push(controller.signal);
    const onCallerAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = setTimeout(() => controller.abort(error), ms);
    try {
      return await Promise.race([
        fn({ signal: controller.signal, attempt: 1 }),
        new Promise((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })),
      ]);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
    }
  });
  return { policy, own };
}

describe('execute, wrap and compose refuse what they cannot use, with a TypeError that says what they got', () => {
  it.each<[string, unknown, string]>([
    ['null', null, 'null'],
    ['a string', 'abort', 'string'],
    ['a plain object', {}, 'object'],
    ['an object with `aborted` but no addEventListener', { aborted: false }, 'object'],
    ['an object with addEventListener but no `aborted`', { addEventListener() {}, removeEventListener() {} }, 'object'],
    ['an object whose `aborted` is not a boolean', { aborted: 'no', addEventListener() {}, removeEventListener() {} }, 'object'],
    ['a function shaped like a signal', Object.assign(() => {}, { aborted: false, addEventListener() {}, removeEventListener() {} }), 'function'],
  ])('execute(fn, { signal: %s }) rejects without running fn', async (_, signal, got) => {
    const fn = vi.fn(() => 'ran');
    const run = withTimeout(100).execute(fn, { signal } as never);
    await expect(run).rejects.toThrow(new TypeError(`execute(fn, { signal }): signal must be an AbortSignal, got ${got}`));
    await expect(run).rejects.toBeInstanceOf(TypeError);
    expect(fn).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each<[unknown, string]>([
    [null, 'null'],
    [42, 'number'],
    ['fn', 'string'],
  ])('execute(%s) rejects: fn must be a function', async (fn, got) => {
    await expect(compose(withTimeout(100)).execute(fn as never)).rejects.toThrow(new TypeError(`execute(fn): fn must be a function, got ${got}`));
  });

  it.each<[unknown, string]>([
    [null, 'null'],
    [42, 'number'],
    [{}, 'object'],
  ])('wrap(%s) throws at once: fn must be a function', (fn, got) => {
    expect(() => compose(retryWithBackoff()).wrap(fn as never)).toThrow(new TypeError(`wrap(fn): fn must be a function, got ${got}`));
  });

  it.each<[string, unknown[], string]>([
    ['null first', [null], 'compose(): argument 1 is not a policy (an object with execute()), got null'],
    ['a number second', [withTimeout(1), 42], 'compose(): argument 2 is not a policy (an object with execute()), got number'],
    ['an object without execute third', [withTimeout(1), retryWithBackoff(), {}], 'compose(): argument 3 is not a policy (an object with execute()), got object'],
    ['a function with an execute method', [Object.assign(() => {}, { execute: () => Promise.resolve(1) })], 'compose(): argument 1 is not a policy (an object with execute()), got function'],
  ])('compose(%s) throws a TypeError naming the position and what it got', (_, args, message) => {
    expect(() => (compose as (...policies: unknown[]) => Policy)(...args)).toThrow(new TypeError(message));
  });
});

describe('one caller signal shared by many calls', () => {
  it('carries a single listener of bulwark while calls are in flight, and none once the last one settled', async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const added = vi.spyOn(signal, 'addEventListener');
    const stack = compose(withTimeout(1_000), new Bulkhead({ maxConcurrent: 10 }));
    const gates = [deferred<number>(), deferred<number>(), deferred<number>()];
    const calls = gates.map((gate) => stack.execute(() => gate.promise, { signal }));
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);

    gates[0]?.resolve(0);
    await expect(calls[0]).resolves.toBe(0);
    // One call settling takes away its own interest only.
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);

    gates[1]?.resolve(1);
    gates[2]?.resolve(2);
    await expect(Promise.all(calls)).resolves.toEqual([0, 1, 2]);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    expect(added).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a call started after all the others left subscribes afresh, and an abort still reaches it', async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const policy = withTimeout(1_000);
    await expect(policy.execute(() => 'first', { signal })).resolves.toBe('first');
    await expect(Promise.all([policy.execute(() => 'a', { signal }), policy.execute(() => 'b', { signal })])).resolves.toEqual(['a', 'b']);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);

    let seen: AbortSignal | undefined;
    const late = track(
      policy.execute(({ signal: inner }) => {
        seen = inner;
        return hang();
      }, { signal }),
    );
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    const reason = new Error('user navigated away');
    controller.abort(reason);
    await flush();
    expect(late.error).toBe(reason);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(reason);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an abort rejects every call sharing the signal with its reason, at once', async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const policy = compose(retryWithBackoff({ baseDelay: 100 }), new Bulkhead({ maxConcurrent: 1, maxQueue: 5 }));
    const fn = vi.fn(hang);
    const calls = [1, 2, 3].map(() => track(policy.execute(fn, { signal })));
    const reason = new Error('shutdown');
    controller.abort(reason);
    await flush();
    expect(calls.map((call) => call.error)).toEqual([reason, reason, reason]);
    expect(fn).toHaveBeenCalledTimes(1); // the other two were still queued
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });
});

describe('several timeouts in one stack', () => {
  it.each<[number[], number]>([
    [[50, 100], 50],
    [[100, 50], 50],
    [[300, 200, 100], 100],
    [[100, 200, 300], 100],
    [[300, 100, 200], 100],
  ])('timeouts of %j: the call fails with the shortest one’s TimeoutError, on time', async (durations, shortest) => {
    const stack = compose(...durations.map((ms) => withTimeout(ms)));
    let signal: AbortSignal | undefined;
    const outcome = track(
      stack.execute((ctx) => {
        signal = ctx.signal;
        return hang();
      }),
    );
    await vi.advanceTimersByTimeAsync(shortest - 1);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect((outcome.error as TimeoutError).timeout).toBe(shortest);
    expect(signal?.reason).toBe(outcome.error);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the outer timeout of compose(outer, retry, perAttempt) ends the retries, on time', async () => {
    const fn = vi.fn(hang);
    const outcome = track(compose(withTimeout(250), retryWithBackoff({ maxRetries: 10, baseDelay: 0 }), withTimeout(100)).execute(fn));
    await vi.advanceTimersByTimeAsync(249);
    expect(fn).toHaveBeenCalledTimes(3); // at 0, 100 and 200
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((outcome.error as TimeoutError).timeout).toBe(250);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('a stack of more than five policies', () => {
  function longStack() {
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 60_000 });
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const stack = compose(
      withFallback('queue full', { handles: (error) => error instanceof BulkheadRejectedError }),
      retryWithBackoff({ maxRetries: 0 }),
      withTimeout(Infinity), // a deadline read from configuration that says "none"
      withTimeout(10_000),
      withTimeout(Infinity),
      withTimeout(Infinity),
      breaker, // seventh
      withTimeout(50),
      bulkhead, // ninth
    );
    return { stack, breaker, bulkhead };
  }

  it('answers with the value and leaves every policy as it found it', async () => {
    const { stack, breaker, bulkhead } = longStack();
    await expect(stack.execute(() => Promise.resolve('value'))).resolves.toBe('value');
    expect(breaker.state).toBe('closed');
    expect(bulkhead.active).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the eighth policy’s timeout fails the call, the seventh (a breaker) counts it, the ninth (a bulkhead) holds its slot until the work ends', async () => {
    const { stack, breaker, bulkhead } = longStack();
    const work = deferred<string>();
    const outcome = track(stack.execute(() => work.promise));
    await vi.advanceTimersByTimeAsync(50);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect((outcome.error as TimeoutError).timeout).toBe(50);
    expect(breaker.state).toBe('open');
    expect(bulkhead.active).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    work.resolve('late');
    await flush();
    expect(bulkhead.active).toBe(0);
  });

  it('a retry seventh in a stack retries with its own attempts', async () => {
    const attempts: number[] = [];
    const stack = compose(withTimeout(Infinity), withTimeout(1_000), withTimeout(Infinity), withTimeout(2_000), withTimeout(Infinity), withTimeout(Infinity), retryWithBackoff({ maxRetries: 3, baseDelay: 0 }));
    const result = stack.execute(({ attempt }) => {
      attempts.push(attempt);
      if (attempt < 3) throw new Error(`attempt ${attempt}`);
      return 'third time';
    });
    await expect(result).resolves.toBe('third time');
    expect(attempts).toEqual([1, 2, 3]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('a function that resolves when its signal aborts (instead of rejecting)', () => {
  it('a timeout still fails the call with its TimeoutError, not with what fn resolved', async () => {
    const outcome = track(withTimeout(50).execute(resolvesOnAbort('partial')));
    await vi.advanceTimersByTimeAsync(50);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a tracked timeout counts it as a failure and a timeout, not a success', async () => {
    let now = 0;
    const registry = new MetricsRegistry({ now: () => now });
    const timeout = withTimeout(50, { name: 't' });
    registry.track(timeout);
    const outcome = track(timeout.execute(resolvesOnAbort('partial')));
    now = 50;
    await vi.advanceTimersByTimeAsync(50);
    expect(isTimeoutError(outcome.error)).toBe(true);
    const [counters] = registry.snapshot().policies;
    expect(counters).toMatchObject({ calls: 1, successes: 0, failures: 1, timeouts: 1 });
    expect(counters?.latency.sum).toBe(50);
  });

  it('a retry around a per-attempt timeout makes exactly maxRetries + 1 attempts, and the fallback outside runs once', async () => {
    const fn = resolvesOnAbort('partial');
    const fallback = vi.fn(() => 'fallback');
    const outcome = track(compose(withFallback(fallback), retryWithBackoff({ maxRetries: 2, baseDelay: 0 }), withTimeout(50)).execute(fn));
    await vi.advanceTimersByTimeAsync(150);
    expect(outcome.value).toBe('fallback');
    expect(fn).toHaveBeenCalledTimes(3);
    expect(fallback).toHaveBeenCalledTimes(1);
    expect(isTimeoutError(fallback.mock.calls[0]?.[0 as never])).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(fallback).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  // A breaker inside the timeout must count the TimeoutError the caller gets (README: "A timeout
  // is a failure"), whatever fn does once its signal aborts. Directly under the breaker,
  // compose(withTimeout(50), breaker), it does not: reported as a bug, not asserted here.
  it.each<[string, (breaker: CircuitBreaker) => { policy: Policy; fn: (ctx: ExecutionContext) => Promise<unknown>; release?: () => void }]>([
    [
      'a queued call of a bulkhead',
      (breaker) => {
        const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
        const holder = deferred();
        void bulkhead.execute(() => holder.promise);
        return { policy: compose(withTimeout(50), breaker, bulkhead), fn: resolvesOnAbort('partial'), release: () => holder.resolve() };
      },
    ],
    [
      'the second attempt of a retry',
      (breaker) => ({
        policy: compose(withTimeout(50), breaker, retryWithBackoff({ maxRetries: 1, baseDelay: 10, jitter: 'none' })),
        fn: (ctx) => (ctx.attempt === 1 ? Promise.reject(new Error('first attempt')) : resolvesOnAbort('partial')(ctx)),
      }),
    ],
    ['a foreign policy', (breaker) => ({ policy: compose(withTimeout(50), breaker, foreignRetry(1, 0).policy), fn: resolvesOnAbort('partial') })],
  ])('through %s, a breaker inside the timeout counts the TimeoutError as a failure', async (_, build) => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 60_000 });
    const failures: unknown[] = [];
    breaker.on('failure', ({ error }) => failures.push(error));
    const { policy, fn, release } = build(breaker);
    const outcome = track(policy.execute(fn));
    await vi.advanceTimersByTimeAsync(10);
    release?.();
    await vi.advanceTimersByTimeAsync(40);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(failures).toEqual([outcome.error]);
    expect(breaker.state).toBe('open');
  });
});
