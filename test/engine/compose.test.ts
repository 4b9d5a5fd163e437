import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  CircuitOpenError,
  TimeoutError,
  compose,
  isCircuitOpenError,
  isTimeoutError,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type ExecuteOptions,
  type FallbackPolicy,
  type RetryPolicy,
  type TimeoutPolicy,
  type ExecutionContext,
  type Policy,
} from '../../src/index.js';
import { hang, hangUntilAborted, reasonOf, settle } from '../fixtures/promises.js';

/** A policy not made by bulwark: it logs when a call enters and leaves it. */
class RecordingPolicy implements Policy {
  readonly signals: (AbortSignal | undefined)[] = [];
  constructor(
    private readonly name: string,
    private readonly log: string[],
  ) {}

  async execute<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T> {
    this.log.push(`${this.name}:enter`);
    this.signals.push(options?.signal);
    try {
      return await fn({ signal: options?.signal ?? new AbortController().signal, attempt: 1 });
    } finally {
      this.log.push(`${this.name}:exit`);
    }
  }

  wrap<A extends unknown[], R>(fn: (...args: A) => R | PromiseLike<R>): (...args: A) => Promise<R> {
    return (...args) => this.execute(() => fn(...args));
  }
}

/** A policy not made by bulwark that runs the function a second time when the first fails. */
const tryTwice: Policy = {
  async execute(fn, options) {
    const ctx = { signal: options?.signal ?? new AbortController().signal, attempt: 1 };
    try {
      return await fn(ctx);
    } catch {
      return await fn(ctx);
    }
  },
  wrap(fn) {
    return (...args) => this.execute(() => fn(...args));
  },
};

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('order: the first policy is the outermost', () => {
  it('enters policies first to last and leaves them last to first', async () => {
    const log: string[] = [];
    const stack = compose(new RecordingPolicy('a', log), new RecordingPolicy('b', log), new RecordingPolicy('c', log));
    const result = await stack.execute(() => {
      log.push('fn');
      return 42;
    });
    expect(result).toBe(42);
    expect(log).toEqual(['a:enter', 'b:enter', 'c:enter', 'fn', 'c:exit', 'b:exit', 'a:exit']);
  });

  it('a fallback outside a breaker answers its rejections; inside it hides failures from it', async () => {
    const failure = new Error('down');
    const fn = vi.fn(() => Promise.reject(failure));

    const outerBreaker = new CircuitBreaker({ failureThreshold: 1 });
    const fallbackOutside = compose(withFallback('cached'), outerBreaker);
    expect(await fallbackOutside.execute(fn)).toBe('cached');
    expect(outerBreaker.state).toBe('open');
    expect(await fallbackOutside.execute(fn)).toBe('cached');
    expect(fn).toHaveBeenCalledTimes(1); // the second call was refused by the open breaker, then answered

    fn.mockClear();
    const innerBreaker = new CircuitBreaker({ failureThreshold: 1 });
    const fallbackInside = compose(innerBreaker, withFallback('cached'));
    for (let i = 0; i < 3; i++) expect(await fallbackInside.execute(fn)).toBe('cached');
    expect(innerBreaker.state).toBe('closed');
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('a timeout outside a retry bounds the whole call; inside it bounds each attempt', async () => {
    const outerFn = vi.fn(hangUntilAborted);
    const whole = settle(compose(withTimeout(100), retryWithBackoff({ maxRetries: 3, baseDelay: 0 })).execute(outerFn));
    await vi.advanceTimersByTimeAsync(100);
    expect(whole.outcome?.status).toBe('rejected');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(outerFn).toHaveBeenCalledTimes(1); // no new attempt once the enclosing deadline passed

    const innerFn = vi.fn(hangUntilAborted);
    const perAttempt = settle(compose(retryWithBackoff({ maxRetries: 3, baseDelay: 0 }), withTimeout(100)).execute(innerFn));
    await vi.advanceTimersByTimeAsync(399);
    expect(perAttempt.outcome).toBeUndefined();
    expect(innerFn).toHaveBeenCalledTimes(4);
    await vi.advanceTimersByTimeAsync(1);
    const outcome = await perAttempt.promise;
    expect(outcome.status === 'rejected' && isTimeoutError(outcome.reason)).toBe(true);
  });
});

describe('compose() with no policy', () => {
  it('passes the value through', async () => {
    await expect(compose().execute(() => 'value')).resolves.toBe('value');
    await expect(compose().execute(async () => 7)).resolves.toBe(7);
  });

  it('passes a rejection and a synchronous throw through as the same object', async () => {
    const error = new Error('boom');
    await expect(compose().execute(() => Promise.reject(error))).rejects.toBe(error);
    await expect(
      compose().execute(() => {
        throw error;
      }),
    ).rejects.toBe(error);
  });

  it('gives the function attempt 1 and the caller signal', async () => {
    const controller = new AbortController();
    const seen = await compose().execute((ctx) => ({ attempt: ctx.attempt, signal: ctx.signal }), { signal: controller.signal });
    expect(seen.attempt).toBe(1);
    expect(seen.signal).toBe(controller.signal);
  });

  it('calls the function once per call', async () => {
    const fn = vi.fn(() => 1);
    const stack = compose();
    await stack.execute(fn);
    await stack.execute(fn);
    expect(fn).toHaveBeenCalledTimes(2);
  });
});

describe('retry and breaker order', () => {
  it('compose(retry, breaker): the breaker counts every attempt and opens after one call', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3 });
    const failures: number[] = [];
    breaker.on('failure', ({ consecutiveFailures }) => failures.push(consecutiveFailures));
    const stack = compose(retryWithBackoff({ maxRetries: 2, baseDelay: 0 }), breaker);
    const error = new Error('always');
    const fn = vi.fn(() => Promise.reject(error));

    await expect(stack.execute(fn)).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(failures).toEqual([1, 2, 3]);
    expect(breaker.state).toBe('open');

    await expect(stack.execute(fn)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(fn).toHaveBeenCalledTimes(3); // the open breaker refuses, and a refusal is not retried
  });

  it('compose(breaker, retry): the breaker counts one failure per call and needs three calls', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3 });
    const failures: number[] = [];
    breaker.on('failure', ({ consecutiveFailures }) => failures.push(consecutiveFailures));
    const stack = compose(breaker, retryWithBackoff({ maxRetries: 2, baseDelay: 0 }));
    const error = new Error('always');
    const fn = vi.fn(() => Promise.reject(error));

    await expect(stack.execute(fn)).rejects.toBe(error);
    expect(breaker.state).toBe('closed');
    await expect(stack.execute(fn)).rejects.toBe(error);
    expect(breaker.state).toBe('closed');
    await expect(stack.execute(fn)).rejects.toBe(error);
    expect(breaker.state).toBe('open');
    expect(fn).toHaveBeenCalledTimes(9);
    expect(failures).toEqual([1, 2, 3]);
  });
});

describe('nested composes behave like flat ones', () => {
  type Parts = [FallbackPolicy<string>, CircuitBreaker, RetryPolicy, TimeoutPolicy];
  type Shape = (p: Parts) => Policy<string>;

  /** Runs the same script of calls through a stack and reports outcomes, call counts and events in order. */
  async function runScript(shape: Shape): Promise<{ outcomes: string[]; events: string[] }> {
    const events: string[] = [];
    const fallback = withFallback((error: unknown) => `fallback(${isCircuitOpenError(error) ? 'open' : isTimeoutError(error) ? 'timeout' : String((error as Error).message)})`);
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 1_000 });
    const retry = retryWithBackoff({ maxRetries: 1, baseDelay: 100, jitter: 'none' });
    const timeout = withTimeout(50);
    fallback.on('fallback', () => events.push('fallback'));
    breaker.on('stateChange', ({ from, to }) => events.push(`breaker:${from}->${to}`));
    breaker.on('success', () => events.push('breaker:success'));
    breaker.on('failure', ({ consecutiveFailures }) => events.push(`breaker:failure#${consecutiveFailures}`));
    breaker.on('rejected', () => events.push('breaker:rejected'));
    retry.on('retry', ({ attempt, delay }) => events.push(`retry:${attempt}+${delay}`));
    retry.on('giveUp', ({ attempts }) => events.push(`giveUp:${attempts}`));
    timeout.on('timeout', () => events.push('timeout'));
    const stack = shape([fallback, breaker, retry, timeout]);

    type Step = 'ok' | 'fail' | 'hang';
    const script: Step[][] = [['ok'], ['fail', 'ok'], ['hang', 'hang'], ['fail', 'fail'], [], ['ok']];
    const outcomes: string[] = [];
    for (const [n, steps] of script.entries()) {
      if (n === 5) await vi.advanceTimersByTimeAsync(1_000); // let the breaker go half-open
      let calls = 0;
      const run = settle(
        stack.execute((ctx) => {
          const step = steps[calls++];
          if (step === 'ok') return `ok#${n}@${ctx.attempt}`;
          if (step === 'fail') return Promise.reject(new Error(`fail#${n}`));
          return hangUntilAborted(ctx);
        }),
      );
      await vi.advanceTimersByTimeAsync(500);
      const outcome = await run.promise;
      outcomes.push(`${outcome.status === 'fulfilled' ? outcome.value : 'rejected'} after ${calls} calls`);
    }
    return { outcomes, events };
  }

  const flat: Shape = ([a, b, c, d]) => compose(a, b, c, d);

  it('the flat stack runs the script as expected', async () => {
    const { outcomes, events } = await runScript(flat);
    expect(outcomes).toEqual([
      'ok#0@1 after 1 calls',
      'ok#1@2 after 2 calls',
      'fallback(timeout) after 2 calls',
      'fallback(fail#3) after 2 calls',
      'fallback(open) after 0 calls',
      'ok#5@1 after 1 calls',
    ]);
    expect(events).toContain('breaker:closed->open');
    expect(events).toContain('breaker:half-open->closed');
    expect(events.filter((event) => event === 'timeout')).toHaveLength(2);
  });

  it.each<[string, Shape]>([
    ['compose(a, compose(b, c, d))', ([a, b, c, d]) => compose(a, compose(b, c, d))],
    ['compose(a, compose(b, compose(c, d)))', ([a, b, c, d]) => compose(a, compose(b, compose(c, d)))],
    ['compose(compose(a, b), compose(c, d))', ([a, b, c, d]) => compose(compose(a, b), compose(c, d))],
    ['compose(compose(compose(a, b, c, d)))', ([a, b, c, d]) => compose(compose(compose(a, b, c, d)))],
    ['compose(a, compose(), b, c, compose(d))', ([a, b, c, d]) => compose(a, compose(), b, c, compose(d))],
  ])('%s gives the same outcomes, counts and event order as the flat stack', async (_, shape) => {
    const expected = await runScript(flat);
    expect(await runScript(shape)).toEqual(expected);
  });
});

describe('wrap', () => {
  it('passes the arguments and returns the result', async () => {
    const breaker = new CircuitBreaker();
    const successes = vi.fn();
    breaker.on('success', successes);
    const add = compose(breaker, retryWithBackoff()).wrap((a: number, b: string) => `${a}:${b}`);
    await expect(add(1, 'x')).resolves.toBe('1:x');
    await expect(add(2, 'y')).resolves.toBe('2:y');
    expect(successes).toHaveBeenCalledTimes(2); // every call of the wrapped function runs the stack
  });

  it('passes errors through unchanged', async () => {
    const error = new TypeError('bad input');
    const wrapped = compose(new CircuitBreaker(), retryWithBackoff({ maxRetries: 0 })).wrap(async (_id: string): Promise<number> => {
      throw error;
    });
    await expect(wrapped('id')).rejects.toBe(error);
  });

  it('retries with the same arguments and answers with the fallback', async () => {
    const seen: string[] = [];
    const fetchUser = compose(withFallback('guest'), retryWithBackoff({ maxRetries: 2, baseDelay: 0 })).wrap((id: string) => {
      seen.push(id);
      return Promise.reject(new Error('down'));
    });
    await expect(fetchUser('u1')).resolves.toBe('guest');
    expect(seen).toEqual(['u1', 'u1', 'u1']);
  });
});

describe('a policy not made by bulwark', () => {
  it('composes like any other and runs the layers inside it', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2 });
    const failures = vi.fn();
    breaker.on('failure', failures);
    const stack = compose(breaker, tryTwice);
    const fn = vi.fn().mockRejectedValueOnce(new Error('first')).mockResolvedValueOnce('second');
    await expect(stack.execute(fn)).resolves.toBe('second');
    expect(fn).toHaveBeenCalledTimes(2);
    expect(failures).not.toHaveBeenCalled();

    const error = new Error('always');
    await expect(stack.execute(() => Promise.reject(error))).rejects.toBe(error);
    expect(failures).toHaveBeenCalledTimes(1);
  });

  it('receives a signal that an enclosing timeout aborts with its TimeoutError', async () => {
    const log: string[] = [];
    const foreign = new RecordingPolicy('foreign', log);
    const run = settle(compose(withTimeout(50), foreign).execute(hang));
    await vi.advanceTimersByTimeAsync(50);
    const outcome = await run.promise;
    expect(outcome.status).toBe('rejected');
    const reason = reasonOf(outcome);
    expect(reason).toBeInstanceOf(TimeoutError);
    const signal = foreign.signals[0];
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(reason);
  });
});

describe('compose with something that is not a policy', () => {
  const breaker = new CircuitBreaker();
  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['a string', 'retry'],
    ['a plain function', () => 1],
    ['an object without execute', {}],
    ['an object whose execute is not a function', { execute: 'no' }],
  ])('%s is a TypeError naming its position', (_, value) => {
    expect(() => compose(value as Policy)).toThrow(TypeError);
    expect(() => compose(value as Policy)).toThrow(/argument 1\b/);
    expect(() => compose(breaker, retryWithBackoff(), value as Policy)).toThrow(/argument 3\b/);
  });
});

describe('the full stack: fallback, breaker, retry, timeout, bulkhead', () => {
  function fullStack() {
    const fallbackFn = vi.fn((error: unknown) => ({ fallback: true, error }));
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 10_000 });
    const retry = retryWithBackoff({ maxRetries: 2, baseDelay: 10, jitter: 'none' });
    const retries: number[] = [];
    retry.on('retry', ({ attempt }) => retries.push(attempt));
    const bulkhead = new Bulkhead({ maxConcurrent: 2, maxQueue: 2 });
    const stack = compose(withFallback(fallbackFn), breaker, retry, withTimeout(100), bulkhead);
    return { stack, fallbackFn, breaker, retries, bulkhead };
  }

  it('a flaky function recovers through retry', async () => {
    const { stack, fallbackFn, breaker, retries, bulkhead } = fullStack();
    const fn = vi.fn().mockRejectedValueOnce(new Error('1')).mockRejectedValueOnce(new Error('2')).mockResolvedValueOnce('ok');
    const run = settle(stack.execute(fn));
    await vi.advanceTimersByTimeAsync(30);
    expect(await run.promise).toEqual({ status: 'fulfilled', value: 'ok' });
    expect(fn).toHaveBeenCalledTimes(3);
    expect(retries).toEqual([1, 2]);
    expect(fallbackFn).not.toHaveBeenCalled();
    expect(breaker.state).toBe('closed');
    expect(bulkhead.active).toBe(0);
  });

  it('a hanging function is timed out per attempt, retried, then answered by the fallback', async () => {
    const { stack, fallbackFn, breaker, retries, bulkhead } = fullStack();
    const start = Date.now();
    const starts: number[] = [];
    const run = settle(
      stack.execute((ctx) => {
        starts.push(Date.now() - start);
        return hangUntilAborted(ctx);
      }),
    );
    await vi.advanceTimersByTimeAsync(329);
    expect(run.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    const outcome = await run.promise;
    expect(starts).toEqual([0, 110, 230]); // 100 ms per attempt, then 10 and 20 ms of backoff
    expect(retries).toEqual([1, 2]);
    expect(fallbackFn).toHaveBeenCalledTimes(1);
    const error = fallbackFn.mock.calls[0]?.[0];
    expect(isTimeoutError(error) && error.timeout).toBe(100);
    expect(outcome).toEqual({ status: 'fulfilled', value: { fallback: true, error } });
    expect(breaker.state).toBe('closed'); // one failed call, threshold 2
    expect(bulkhead.active).toBe(0);
  });

  it('the breaker opens after enough failing calls and the fallback answers its rejections', async () => {
    const { stack, fallbackFn, breaker } = fullStack();
    const error = new Error('down');
    const fn = vi.fn(() => Promise.reject(error));
    for (let i = 0; i < 2; i++) {
      const run = settle(stack.execute(fn));
      await vi.advanceTimersByTimeAsync(30);
      expect(await run.promise).toEqual({ status: 'fulfilled', value: { fallback: true, error } });
    }
    expect(fn).toHaveBeenCalledTimes(6);
    expect(breaker.state).toBe('open');

    const refused = (await stack.execute(fn)) as { error: unknown };
    expect(fn).toHaveBeenCalledTimes(6);
    expect(isCircuitOpenError(refused.error)).toBe(true);
    expect(fallbackFn).toHaveBeenCalledTimes(3);
  });

  it('the bulkhead limits calls running at once inside the stack', async () => {
    const { stack, bulkhead } = fullStack();
    let running = 0;
    let most = 0;
    const runs = Array.from({ length: 4 }, () =>
      settle(
        stack.execute(async () => {
          most = Math.max(most, ++running);
          await new Promise((resolve) => setTimeout(resolve, 20));
          running--;
          return 'done';
        }),
      ),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(bulkhead.active).toBe(2);
    expect(bulkhead.queued).toBe(2);
    await vi.advanceTimersByTimeAsync(40);
    for (const run of runs) expect(await run.promise).toEqual({ status: 'fulfilled', value: 'done' });
    expect(most).toBe(2);
  });
});

describe('an enclosing timeout and an inner breaker', () => {
  it('the breaker counts the timeout of a function that never settles', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const failures: unknown[] = [];
    breaker.on('failure', ({ error }) => failures.push(error));
    const stack = compose(withTimeout(10), breaker);
    const run = settle(stack.execute(hang));
    await vi.advanceTimersByTimeAsync(10);
    const outcome = await run.promise;
    expect(outcome.status).toBe('rejected');
    const reason = reasonOf(outcome);
    expect(isTimeoutError(reason)).toBe(true);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBe(reason);
    expect(breaker.state).toBe('open');

    const fn = vi.fn(() => 'never called');
    await expect(stack.execute(fn)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(fn).not.toHaveBeenCalled();
  });
});

describe('compose: a policy not made by bulwark in the middle of a stack', () => {
  /** Calls the function at once, with a context of its own, as a thin wrapper from another library would. */
  const passThrough: Policy = {
    execute: <T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>): Promise<T> =>
      Promise.resolve(fn({ signal: new AbortController().signal, attempt: 1 })),
    wrap: <A extends unknown[], R>(fn: (...args: A) => R | PromiseLike<R>) => async (...args: A): Promise<R> => fn(...args),
  };

  it('does not make a retried call wait for a bulkhead slot it holds itself', async () => {
    for (const maxQueue of [0, 1]) {
      const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue });
      const stack = compose(passThrough, retryWithBackoff({ maxRetries: 1, baseDelay: 1, jitter: 'none' }), bulkhead);
      const call = stack.execute(({ attempt }) => (attempt === 1 ? Promise.reject(new Error('once')) : 'ok'));
      await vi.advanceTimersByTimeAsync(5);
      await expect(call).resolves.toBe('ok');
      expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
    }
  });

  it('lets an enclosing timeout reach the breaker and the bulkhead queue inside it', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const hanging = compose(passThrough, withTimeout(30), breaker).execute(hang);
    const hangingOutcome = settle(hanging);
    await vi.advanceTimersByTimeAsync(30);
    expect(isTimeoutError(reasonOf(await hangingOutcome.promise))).toBe(true);
    expect(breaker.state).toBe('open');

    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const queued = compose(passThrough, withTimeout(50), bulkhead);
    const holder = settle(queued.execute(() => new Promise((resolve) => setTimeout(resolve, 300))));
    const waiter = settle(queued.execute(() => 'never runs'));
    await vi.advanceTimersByTimeAsync(50);
    expect(isTimeoutError(reasonOf(await waiter.promise))).toBe(true);
    expect(bulkhead.queued).toBe(0);
    await vi.advanceTimersByTimeAsync(250);
    await holder.promise;
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
  });

  it("stops the layers inside it when it gives up by its own timeout, and passes its attempt on", async () => {
    const giveUpAfter50ms: Policy = {
      execute<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>): Promise<T> {
        const controller = new AbortController();
        return new Promise<T>((resolve, reject) => {
          const timer = setTimeout(() => {
            const error = new Error('gave up');
            controller.abort(error);
            reject(error);
          }, 50);
          Promise.resolve(fn({ signal: controller.signal, attempt: 7 })).then(
            (value) => (clearTimeout(timer), resolve(value)),
            (error: unknown) => (clearTimeout(timer), reject(error)),
          );
        });
      },
      wrap: passThrough.wrap,
    };
    const attempts: number[] = [];
    const signals: AbortSignal[] = [];
    const stack = compose(giveUpAfter50ms, retryWithBackoff({ maxRetries: 5, baseDelay: 20, jitter: 'none' }));
    const call = settle(
      stack.execute(({ attempt, signal }) => {
        attempts.push(attempt);
        signals.push(signal);
        return Promise.reject(new Error('down'));
      }),
    );
    await vi.advanceTimersByTimeAsync(50);
    expect((reasonOf(await call.promise) as Error).message).toBe('gave up');
    const callsWhenAnswered = attempts.length;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(attempts).toHaveLength(callsWhenAnswered);
    expect(signals.at(-1)?.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    // With no retry inside it, the function sees the attempt the outer policy passed in.
    await expect(compose(giveUpAfter50ms, withTimeout(1_000)).execute(({ attempt }) => attempt)).resolves.toBe(7);
  });
});

describe('compose: policies nested by hand', () => {
  it('a breaker run inside a timeout’s function with its ctx.signal counts the timeout, as inside compose', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const call = settle(withTimeout(30).execute(({ signal }) => breaker.execute(hang, { signal })));
    await vi.advanceTimersByTimeAsync(30);
    expect(isTimeoutError(reasonOf(await call.promise))).toBe(true);
    expect(breaker.state).toBe('open');
  });

  it('a caller’s abort passed down the same way is still not counted', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const caller = new AbortController();
    const call = settle(withTimeout(1_000).execute(({ signal }) => breaker.execute(hang, { signal }), { signal: caller.signal }));
    const reason = new Error('user left');
    caller.abort(reason);
    expect(reasonOf(await call.promise)).toBe(reason);
    expect(breaker.state).toBe('closed');
  });
});
