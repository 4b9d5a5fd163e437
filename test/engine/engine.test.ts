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
} from '../../src/index.js';
import { deferred, flush, hang, track } from '../fixtures/promises.js';

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
    let onDeadline = (): void => {};
    try {
      return await Promise.race([
        fn({ signal: controller.signal, attempt: 1 }),
        new Promise((_, reject) => {
          onDeadline = () => reject(controller.signal.reason);
          controller.signal.addEventListener('abort', onDeadline, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      controller.signal.removeEventListener('abort', onDeadline);
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
    [5, 'number'],
    ['fast', 'string'],
    [true, 'boolean'],
  ])('execute(fn, %s) rejects without running fn: options must be an object', async (options, got) => {
    const fn = vi.fn(() => 'ran');
    const run = withTimeout(100).execute(fn, options as never);
    await expect(run).rejects.toThrow(new TypeError(`execute(fn, options): options must be an object, got ${got}`));
    await expect(run).rejects.toBeInstanceOf(TypeError);
    expect(fn).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('execute(fn, signal), the shape cockatiel uses, rejects without running fn and says to pass { signal }', async () => {
    const fn = vi.fn(() => 'ran');
    const run = compose(retryWithBackoff()).execute(fn, new AbortController().signal as never);
    await expect(run).rejects.toThrow(new TypeError('execute(fn, options): got an AbortSignal; pass it as execute(fn, { signal })'));
    await expect(run).rejects.toBeInstanceOf(TypeError);
    expect(fn).not.toHaveBeenCalled();
  });

  it('execute(fn, options) with a key other than signal rejects without running fn, even beside a signal', async () => {
    const fn = vi.fn(() => 'ran');
    const run = withTimeout(100).execute(fn, { signal: new AbortController().signal, timeout: 5 } as never);
    await expect(run).rejects.toThrow(new TypeError('execute(fn, options) has no option "timeout"; known options: "signal"'));
    await expect(run).rejects.toBeInstanceOf(TypeError);
    expect(fn).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('execute(fn, {}) and execute(fn, { signal: undefined }) run fn as execute(fn) does', async () => {
    const policy = withTimeout(100);
    await expect(policy.execute(() => 'plain', {})).resolves.toBe('plain');
    await expect(policy.execute(() => 'no signal', { signal: undefined })).resolves.toBe('no signal');
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
    const fallback = vi.fn((_error: unknown) => 'fallback');
    const outcome = track(compose(withFallback(fallback), retryWithBackoff({ maxRetries: 2, baseDelay: 0 }), withTimeout(50)).execute(fn));
    await vi.advanceTimersByTimeAsync(150);
    expect(outcome.value).toBe('fallback');
    expect(fn).toHaveBeenCalledTimes(3);
    expect(fallback).toHaveBeenCalledTimes(1);
    expect(isTimeoutError(fallback.mock.calls[0]?.[0])).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(fallback).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  // A breaker inside the timeout must count the TimeoutError the caller gets (docs/choosing-a-stack.md: "A timeout
  // is a failure"), whatever fn does once its signal aborts.
  it('directly under the timeout, compose(withTimeout(50), breaker), the breaker counts the TimeoutError when fn resolves on abort, and a half-open trial that times out re-opens the circuit', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000 });
    const failures: unknown[] = [];
    breaker.on('failure', ({ error }) => void failures.push(error));
    const stack = compose(withTimeout(50), breaker);
    const first = stack.execute(resolvesOnAbort('partial'));
    const rejected = expect(first).rejects.toBeInstanceOf(TimeoutError);
    await vi.advanceTimersByTimeAsync(50);
    await rejected;
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(TimeoutError);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(breaker.state).toBe('half-open');
    const trial = stack.execute(resolvesOnAbort('partial'));
    const trialRejected = expect(trial).rejects.toBeInstanceOf(TimeoutError);
    await vi.advanceTimersByTimeAsync(50);
    await trialRejected;
    expect(breaker.state).toBe('open');
  });

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
    [
      'an execute nested by hand with the timeout’s ctx.signal',
      (breaker) => ({
        policy: foreignPolicy((fn) => withTimeout(50).execute((ctx) => breaker.execute(fn as (ctx: ExecutionContext) => unknown, { signal: ctx.signal }))),
        fn: resolvesOnAbort('partial'),
      }),
    ],
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

describe('ctx.signal', () => {
  it('read only after the timeout fired, it is already aborted, with the TimeoutError the call failed with', async () => {
    let late: AbortSignal | undefined;
    const outcome = track(
      withTimeout(50).execute(async (ctx) => {
        await sleep(100);
        late = ctx.signal;
      }),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(late?.aborted).toBe(true);
    expect(late?.reason).toBe(outcome.error);
  });

  it('read only after the caller aborted, inside a timeout, it is already aborted with the caller’s reason', async () => {
    const controller = new AbortController();
    let late: AbortSignal | undefined;
    const outcome = track(
      compose(retryWithBackoff(), withTimeout(1_000)).execute(
        async (ctx) => {
          await sleep(100);
          late = ctx.signal;
        },
        { signal: controller.signal },
      ),
    );
    const reason = new Error('stop');
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(90);
    expect(outcome.error).toBe(reason);
    expect(late?.aborted).toBe(true);
    expect(late?.reason).toBe(reason);
  });

  it('inside a timeout, it is the timeout’s own signal: the deadline aborts it, and the caller’s signal is left alone', async () => {
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const outcome = track(
      withTimeout(50).execute(
        (ctx) => {
          seen = ctx.signal;
          return hang();
        },
        { signal: controller.signal },
      ),
    );
    expect(seen).not.toBe(controller.signal);
    expect(seen?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(50);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(outcome.error);
    expect(controller.signal.aborted).toBe(false);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('a retry and a bulkhead add no signal of their own: every attempt gets the caller’s signal itself', async () => {
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    const result = compose(retryWithBackoff({ maxRetries: 2, baseDelay: 0 }), new Bulkhead({ maxConcurrent: 1 })).execute(
      ({ signal, attempt }) => {
        signals.push(signal);
        if (attempt < 3) throw new Error(`attempt ${attempt}`);
        return 'ok';
      },
      { signal: controller.signal },
    );
    await expect(result).resolves.toBe('ok');
    expect(signals).toHaveLength(3);
    for (const signal of signals) expect(signal).toBe(controller.signal);
  });

  it('under an enclosing timeout, every attempt of a retry gets the one signal the deadline aborts', async () => {
    const signals: AbortSignal[] = [];
    const outcome = track(
      compose(withTimeout(100), retryWithBackoff({ maxRetries: 5, baseDelay: 20, jitter: 'none', exponentialBase: 1 }), new Bulkhead({ maxConcurrent: 1 })).execute(({ signal }) => {
        signals.push(signal);
        return Promise.reject(new Error('down'));
      }),
    );
    await vi.advanceTimersByTimeAsync(100);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(signals).toHaveLength(5); // at 0, 20, 40, 60, 80
    expect(new Set(signals).size).toBe(1);
    expect(signals[0]?.reason).toBe(outcome.error);
  });
});

describe('listeners that abort the call they are told about', () => {
  it.each([0, 100])('a retry listener that aborts the caller’s signal (baseDelay %i): fn is not run again and no timer is left', async (baseDelay) => {
    const controller = new AbortController();
    const reason = new Error('the user cancelled on the first failure');
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay, jitter: 'none' });
    retry.on('retry', () => controller.abort(reason));
    const fn = vi.fn(() => Promise.reject(new Error('down')));
    await expect(retry.execute(fn, { signal: controller.signal })).rejects.toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('a fallback listener that aborts the caller’s signal: the fallback function does not run', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    const fallbackFn = vi.fn(() => 'fallback');
    const fallback = withFallback(fallbackFn);
    fallback.on('fallback', () => controller.abort(reason));
    await expect(compose(fallback, withTimeout(1_000)).execute(() => Promise.reject(new Error('down')), { signal: controller.signal })).rejects.toBe(reason);
    await flush();
    expect(fallbackFn).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('a bulkhead slot is held until the work really ends', () => {
  it.each<[string, (outer: Bulkhead, inner: Bulkhead) => Policy]>([
    ['nested bulkheads', (outer, inner) => compose(outer, inner)],
    ['nested bulkheads around a timeout', (outer, inner) => compose(outer, withTimeout(1_000), inner)],
    ['nested bulkheads inside a retry', (outer, inner) => compose(retryWithBackoff(), outer, inner)],
  ])('%s: after the caller aborted, both slots stay taken until fn settles', async (_, build) => {
    const outer = new Bulkhead({ maxConcurrent: 1 });
    const inner = new Bulkhead({ maxConcurrent: 1 });
    const stack = build(outer, inner);
    const work = deferred<string>();
    const controller = new AbortController();
    const reason = new Error('caller gone');
    const outcome = track(stack.execute(() => work.promise, { signal: controller.signal }));
    controller.abort(reason);
    await flush();
    expect(outcome.error).toBe(reason);
    expect([outer.active, inner.active]).toEqual([1, 1]);
    await expect(outer.execute(() => 'no room')).rejects.toBeInstanceOf(BulkheadRejectedError);
    await expect(inner.execute(() => 'no room')).rejects.toBeInstanceOf(BulkheadRejectedError);
    work.resolve('done at last');
    await flush();
    expect([outer.active, inner.active]).toEqual([0, 0]);
    await expect(stack.execute(() => 'room again')).resolves.toBe('room again');
  });

  it('when a timeout answered first, the slot goes to the next queued call only once the timed-out work settles', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const stack = compose(withTimeout(50), bulkhead);
    const work = deferred();
    const first = track(stack.execute(() => work.promise));
    const second = vi.fn(() => 'second');
    const queued = track(bulkhead.execute(second));
    await vi.advanceTimersByTimeAsync(50);
    expect(first.error).toBeInstanceOf(TimeoutError);
    expect(second).not.toHaveBeenCalled();
    expect([bulkhead.active, bulkhead.queued]).toEqual([1, 1]);
    work.resolve();
    await flush();
    expect(queued.value).toBe('second');
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
  });

  it('a queued call keeps its caller’s AsyncLocalStorage context through a stack with a caller signal', async () => {
    const storage = new AsyncLocalStorage<string>();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const stack = compose(withTimeout(1_000), bulkhead);
    const gate = deferred();
    const controller = new AbortController();
    const first = storage.run('request-1', () => stack.execute(() => gate.promise.then(() => storage.getStore()), { signal: controller.signal }));
    const second = storage.run('request-2', () => stack.execute(async () => storage.getStore(), { signal: controller.signal }));
    storage.run('releaser', () => gate.resolve());
    await expect(Promise.all([first, second])).resolves.toEqual(['request-1', 'request-2']);
  });

  it('work a foreign policy starts after it answered (a background refresh) never frees the slot twice', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    let cached: unknown;
    const refreshes: Promise<unknown>[] = [];
    // Stale-while-revalidate: answers from its cache, then refreshes it in the background.
    const staleWhileRevalidate = foreignPolicy(async (fn) => {
      if (cached === undefined) {
        cached = await fn({ attempt: 1 });
        return cached;
      }
      setTimeout(() => {
        refreshes.push(Promise.resolve(fn({ attempt: 1 })).then((value) => (cached = value)));
      }, 10);
      return cached;
    });
    const stack = compose(bulkhead, staleWhileRevalidate);
    let version = 0;
    const fetchVersion = vi.fn(() => Promise.resolve(++version));
    await expect(stack.execute(fetchVersion)).resolves.toBe(1);
    await expect(stack.execute(fetchVersion)).resolves.toBe(1);
    expect(bulkhead.active).toBe(0);
    await vi.advanceTimersByTimeAsync(10);
    await Promise.all(refreshes);
    await flush();
    expect(fetchVersion).toHaveBeenCalledTimes(2);
    expect(bulkhead.active).toBe(0);
    // The limit still holds: one call at a time.
    const holder = deferred();
    const running = stack.execute(() => holder.promise);
    expect(bulkhead.active).toBe(1);
    await expect(bulkhead.execute(() => 'second')).rejects.toBeInstanceOf(BulkheadRejectedError);
    holder.resolve();
    await running;
    expect(bulkhead.active).toBe(0);
  });
});

describe('a policy not made by bulwark in a stack', () => {
  it('an inner bulwark timeout does not abort the signal the foreign policy got, so it can retry', async () => {
    const { policy, signals } = foreignRetry(2, 0);
    const fn = vi.fn((ctx: ExecutionContext) => (ctx.attempt === 1 ? hang() : Promise.resolve('second attempt')));
    const outcome = track(compose(policy, withTimeout(10)).execute(fn));
    await vi.advanceTimersByTimeAsync(11);
    expect(outcome.value).toBe('second attempt');
    expect(fn).toHaveBeenCalledTimes(2);
    expect(signals[0]?.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an enclosing bulwark timeout aborts the signal the foreign policy got, even after attempts of its own settled', async () => {
    const { policy, signals } = foreignRetry(10, 30);
    const fn = vi.fn(() => Promise.reject(new Error('down'))); // never reads ctx.signal
    const outcome = track(compose(withTimeout(100), policy).execute(fn));
    await vi.advanceTimersByTimeAsync(100);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(fn).toHaveBeenCalledTimes(4); // at 0, 30, 60 and 90
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[0]?.reason).toBe(outcome.error);
    // The foreign policy heard it and stopped: nothing of the call is left.
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fn).toHaveBeenCalledTimes(4);
  });

  it('one that ignores its signal and calls again after the timeout answered does not get the user’s function run again', async () => {
    const fn = vi.fn(() => new Promise((_, reject) => setTimeout(() => reject(new Error('slow failure')), 30)));
    const outcome = track(compose(withTimeout(50), naiveForeignRetry(3, 40)).execute(fn));
    await vi.advanceTimersByTimeAsync(50);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    await vi.advanceTimersByTimeAsync(200); // the foreign policy tries at 70 and 110
    expect(fn).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the attempt it passes reaches fn; a missing or non-numeric one leaves ctx.attempt at 1', async () => {
    const seen: unknown[] = [];
    const record = (ctx: ExecutionContext): number => {
      seen.push(ctx.attempt);
      expect(ctx.signal).toBeInstanceOf(AbortSignal);
      return ctx.attempt;
    };
    const passing = (given: unknown) => foreignPolicy(async (fn) => fn(given as Partial<ExecutionContext>));
    await expect(compose(passing(undefined)).execute(record)).resolves.toBe(1);
    await expect(compose(passing({})).execute(record)).resolves.toBe(1);
    await expect(compose(passing({ attempt: '2' })).execute(record)).resolves.toBe(1);
    await expect(compose(passing({ attempt: 3 }), withTimeout(100)).execute(record)).resolves.toBe(3);
    await expect(compose(withTimeout(100), passing({ attempt: 4 }), new Bulkhead({ maxConcurrent: 1 })).execute(record)).resolves.toBe(4);
    expect(seen).toEqual([1, 1, 1, 3, 4]);
  });

  it('a foreign timeout giving up aborts the layers inside it: its call leaves a bulkhead queue and never runs', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const holder = deferred();
    void bulkhead.execute(() => holder.promise);
    const gaveUp = new Error('foreign deadline');
    const { policy, own } = foreignTimeout(50, gaveUp);
    const fn = vi.fn(() => 'ran');
    const outcome = track(compose(policy, bulkhead).execute(fn));
    await flush();
    expect(bulkhead.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(outcome.error).toBe(gaveUp);
    expect(bulkhead.queued).toBe(0);
    holder.resolve();
    await flush();
    expect(fn).not.toHaveBeenCalled();
    expect(bulkhead.active).toBe(0);
    expect(getEventListeners(own[0] as AbortSignal, 'abort')).toHaveLength(0);
  });

  it('the signal of its own it hands to fn keeps no listener of bulwark once the call settled', async () => {
    const { policy, own } = foreignTimeout(1_000, new Error('foreign deadline'));
    const stack = compose(policy, retryWithBackoff({ maxRetries: 1, baseDelay: 0 }), withTimeout(500));
    const fn = vi.fn((ctx: ExecutionContext) => (ctx.attempt === 1 ? Promise.reject(new Error('first')) : Promise.resolve('second')));
    await expect(stack.execute(fn)).resolves.toBe('second');
    expect(own).toHaveLength(1);
    expect(getEventListeners(own[0] as AbortSignal, 'abort')).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('MetricsRegistry through a stack', () => {
  it('counts a call that queued in a tracked bulkhead and then succeeded as a success, with its wait in its latency', async () => {
    let now = 0;
    const registry = new MetricsRegistry({ now: () => now });
    const bulkhead = new Bulkhead({ name: 'h', maxConcurrent: 1, maxQueue: 1 });
    registry.track(bulkhead);
    const holder = deferred<string>();
    const first = bulkhead.execute(() => holder.promise);
    const second = bulkhead.execute(() => 'second');
    now = 30;
    holder.resolve('first');
    await expect(Promise.all([first, second])).resolves.toEqual(['first', 'second']);
    const [counters] = registry.snapshot().policies;
    expect(counters).toMatchObject({ calls: 2, successes: 2, failures: 0, rejections: 0 });
    expect(counters?.latency.sum).toBe(60);
  });

  it('counts a queued call that then failed as a failure', async () => {
    const registry = new MetricsRegistry({ now: () => 0 });
    const bulkhead = new Bulkhead({ name: 'h', maxConcurrent: 1, maxQueue: 1 });
    registry.track(bulkhead);
    const holder = deferred<string>();
    const first = bulkhead.execute(() => holder.promise);
    const error = new Error('down');
    const second = bulkhead.execute(() => Promise.reject(error));
    holder.resolve('first');
    await first;
    await expect(second).rejects.toBe(error);
    expect(registry.snapshot().policies[0]).toMatchObject({ calls: 2, successes: 1, failures: 1 });
  });

  it.each<[string, () => never | Promise<number>]>([
    [
      'throws',
      () => {
        throw new Error('clock broke');
      },
    ],
    ['returns a promise that rejects', () => Promise.reject(new Error('clock broke'))],
  ])('a registry clock that %s is reported, naming it, and the calls still go through and count', async (_, now) => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    const registry = new MetricsRegistry({ now: now as unknown as () => number });
    const stack = compose(withFallback('fallback', { name: 'f' }), withTimeout(1_000, { name: 't' }));
    registry.track(stack);
    await expect(stack.execute(() => 'value')).resolves.toBe('value');
    await expect(stack.execute(() => Promise.reject(new Error('down')))).resolves.toBe('fallback');
    await flush();
    expect(reported).toHaveBeenCalled();
    for (const [message, error] of reported.mock.calls) {
      expect(String(message)).toMatch(/MetricsRegistry/);
      expect(String(message)).toMatch(/now/);
      expect(error).toEqual(new Error('clock broke'));
    }
    const byName = Object.fromEntries(registry.snapshot().policies.map((policy) => [policy.name, policy]));
    expect(byName.f).toMatchObject({ calls: 2, successes: 2, failures: 0, fallbacks: 1 });
    expect(byName.t).toMatchObject({ calls: 2, successes: 1, failures: 1 });
    expect(byName.t?.latency.sum).toBe(0);
  });
});
