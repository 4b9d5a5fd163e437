import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, LayerPolicy, compose, isRefusal, retryWithBackoff, withFallback, type ExecutionContext } from '../../src/index.js';
import { ChaosFaultPolicy, chaosFault, seededRandom } from '../../src/chaos/index.js';
import { flush, hang } from '../fixtures/promises.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const injected = new Error('injected');

describe('chaosFault', () => {
  it('is a policy of the one engine: a LayerPolicy that compose() takes as its own', () => {
    const policy = chaosFault({ rate: 1, fault: injected });
    expect(policy).toBeInstanceOf(ChaosFaultPolicy);
    expect(policy).toBeInstanceOf(LayerPolicy);
  });

  it('rate 1 fails every call with the fault itself, without running the function', async () => {
    const policy = chaosFault({ rate: 1, fault: injected });
    const fn = vi.fn(() => 'ran');
    for (let i = 0; i < 3; i++) await expect(policy.execute(fn)).rejects.toBe(injected);
    expect(fn).not.toHaveBeenCalled();
  });

  it('rate 0 runs every call untouched and draws no random number', async () => {
    const random = vi.fn(() => 0);
    const policy = chaosFault({ rate: 0, fault: injected, random });
    const result = { value: 42 };
    await expect(policy.execute(() => result)).resolves.toBe(result);
    const failure = new Error('real');
    await expect(policy.execute(() => Promise.reject(failure))).rejects.toBe(failure);
    expect(random).not.toHaveBeenCalled();
  });

  it('rate 1 draws no random number either', async () => {
    const random = vi.fn(() => 0.99);
    await expect(chaosFault({ rate: 1, fault: injected, random }).execute(() => 'ran')).rejects.toBe(injected);
    expect(random).not.toHaveBeenCalled();
  });

  it('injects when random() draws below the rate, and only then', async () => {
    const draws = [0.29, 0.3, 0.31, 0, 0.999];
    const random = vi.fn(() => draws.shift() as number);
    const policy = chaosFault({ rate: 0.3, fault: injected, random });
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await policy.execute(() => 'ran').catch((error: unknown) => error));
    expect(outcomes).toEqual([injected, 'ran', 'ran', injected, 'ran']);
    expect(random).toHaveBeenCalledTimes(5);
  });

  it('a random source out of range never breaks a call: NaN and 1 inject nothing, a negative number injects', async () => {
    for (const [drawn, expected] of [[Number.NaN, 'ran'], [1, 'ran'], [-1, injected]] as const) {
      const policy = chaosFault({ rate: 0.5, fault: injected, random: () => drawn });
      expect(await policy.execute(() => 'ran').catch((error: unknown) => error)).toBe(expected);
    }
  });

  it('a random source that returns a rejecting promise injects nothing, and its rejection is reported, never unhandled', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const bug = new Error('async random');
    const policy = chaosFault({ rate: 0.5, fault: injected, random: (async () => Promise.reject(bug)) as unknown as () => number });
    await expect(policy.execute(() => 'ran')).resolves.toBe('ran');
    await flush();
    expect(reported).toHaveBeenCalledWith('bulwark: chaosFault random failed', bug);
  });

  it('a fault function makes the error of each injected call from its context', async () => {
    const contexts: ExecutionContext[] = [];
    const policy = chaosFault({
      rate: 1,
      fault: (ctx) => {
        contexts.push(ctx);
        return new Error(`injected at attempt ${ctx.attempt}`);
      },
    });
    const first = await policy.execute(() => 'ran').catch((error: unknown) => error);
    const second = await policy.execute(() => 'ran').catch((error: unknown) => error);
    expect(first).toEqual(new Error('injected at attempt 1'));
    expect(second).not.toBe(first);
    expect(contexts).toHaveLength(2);
    expect(contexts[0]?.signal).toBeInstanceOf(AbortSignal);
  });

  it('a fault function that throws fails the call with what it threw, and emits no injected event', async () => {
    const bug = new Error('fault function bug');
    const policy = chaosFault({
      rate: 1,
      fault: () => {
        throw bug;
      },
    });
    const events = vi.fn();
    policy.on('injected', events);
    const fn = vi.fn(() => 'ran');
    await expect(policy.execute(fn)).rejects.toBe(bug);
    expect(fn).not.toHaveBeenCalled();
    expect(events).not.toHaveBeenCalled();
  });

  it('a fault function that returns a promise, nothing or null fails the call with a TypeError saying so', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const asyncFault = chaosFault({ rate: 1, fault: (async () => new Error('late')) as unknown as () => Error });
    await expect(asyncFault.execute(() => 'ran')).rejects.toThrow(new TypeError('chaosFault fault must return its answer synchronously, got a promise (an async function?)'));
    const nothing = chaosFault({ rate: 1, fault: (() => undefined) as unknown as () => Error });
    await expect(nothing.execute(() => 'ran')).rejects.toThrow(new TypeError('chaosFault fault must return the error to inject, got undefined'));
    const none = chaosFault({ rate: 1, fault: (() => null) as unknown as () => Error });
    await expect(none.execute(() => 'ran')).rejects.toThrow(new TypeError('chaosFault fault must return the error to inject, got null'));
    const rejecting = chaosFault({ rate: 1, fault: (async () => Promise.reject(new Error('worse'))) as unknown as () => Error });
    await expect(rejecting.execute(() => 'ran')).rejects.toThrow(TypeError);
    await flush();
    expect(reported).toHaveBeenCalledTimes(1); // the rejected promise was watched, not left unhandled
  });

  it('a fault is not a refusal: a breaker around it counts it and opens', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3 });
    const failures = vi.fn();
    breaker.on('failure', failures);
    const stack = compose(breaker, chaosFault({ rate: 1, fault: injected }));
    for (let i = 0; i < 3; i++) {
      const error = await stack.execute(() => 'ran').catch((e: unknown) => e);
      expect(error).toBe(injected);
      expect(isRefusal(error)).toBe(false);
    }
    expect(breaker.state).toBe('open');
    expect(failures).toHaveBeenCalledTimes(3);
  });

  it('a fault is retried by a retry around it, and a later attempt that is not injected succeeds', async () => {
    const draws = [0.1, 0.1, 0.9];
    const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 0 });
    const retries = vi.fn();
    retry.on('retry', retries);
    const attempts: number[] = [];
    const stack = compose(retry, chaosFault({ rate: 0.5, fault: injected, random: () => draws.shift() as number }));
    await expect(stack.execute(({ attempt }) => (attempts.push(attempt), `ok at ${attempt}`))).resolves.toBe('ok at 3');
    expect(attempts).toEqual([3]); // attempts 1 and 2 were injected, the function ran once
    expect(retries.mock.calls.map(([payload]) => (payload as { error: unknown }).error)).toEqual([injected, injected]);
  });

  it('a fallback around it answers for an injected fault', async () => {
    const stack = compose(withFallback(() => 'degraded'), chaosFault({ rate: 1, fault: injected }));
    await expect(stack.execute(() => 'ran')).resolves.toBe('degraded');
  });

  it("a caller's abort answers at once while a call it did not inject into runs, and leaves no listener", async () => {
    const controller = new AbortController();
    const reason = new Error('caller left');
    const policy = chaosFault({ rate: 0.5, fault: injected, random: () => 0.9 });
    const call = policy.execute(hang, { signal: controller.signal });
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('the same seed injects into the same calls', async () => {
    const run = async (seed: number): Promise<boolean[]> => {
      const policy = chaosFault({ rate: 0.3, fault: injected, random: seededRandom(seed) });
      const hits: boolean[] = [];
      for (let i = 0; i < 200; i++) hits.push(await policy.execute(() => false).catch(() => true));
      return hits;
    };
    const first = await run(42);
    expect(await run(42)).toEqual(first);
    expect(await run(43)).not.toEqual(first);
    const share = first.filter(Boolean).length / first.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.4);
  });

  it('emits injected with the error, building nothing when nobody listens; on() returns the unsubscribe', async () => {
    const policy = chaosFault({ rate: 1, fault: injected });
    const listener = vi.fn();
    const stop = policy.on('injected', listener);
    await policy.execute(() => 'ran').catch(() => undefined);
    expect(listener).toHaveBeenCalledWith({ error: injected });
    stop();
    stop();
    await policy.execute(() => 'ran').catch(() => undefined);
    expect(listener).toHaveBeenCalledTimes(1);
    expect(() => policy.on('fault' as never, listener)).toThrow(new TypeError('Unknown event "fault": expected one of "injected"'));
    expect(() => policy.on('injected', 42 as never)).toThrow(new TypeError('The listener for "injected" must be a function, got 42'));
  });

  it('a listener that throws or rejects is reported and never breaks the call', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const policy = chaosFault({ rate: 1, fault: injected });
    const bug = new Error('listener bug');
    const asyncBug = new Error('async listener bug');
    policy.on('injected', () => {
      throw bug;
    });
    policy.on('injected', async () => {
      throw asyncBug;
    });
    await expect(policy.execute(() => 'ran')).rejects.toBe(injected);
    await flush();
    expect(reported.mock.calls).toEqual([
      ['bulwark: an "injected" listener failed', bug],
      ['bulwark: an "injected" listener failed', asyncBug],
    ]);
  });
});
