import { afterEach, describe, expect, it, vi } from 'vitest';
import { Bulkhead, CircuitBreaker, TimeoutError, compose, retryWithBackoff, withTimeout } from '../../src/index.js';
import { ChaosOutcomePolicy, chaosOutcome } from '../../src/chaos/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { flush, hang, track } from '../fixtures/promises.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('chaosOutcome', () => {
  it('rate 1 answers every call with the value, without running the function', async () => {
    const degraded = { items: [] as string[], stale: true };
    const policy = chaosOutcome({ rate: 1, outcome: degraded });
    expect(policy).toBeInstanceOf(ChaosOutcomePolicy);
    const fn = vi.fn(() => ({ items: ['fresh'], stale: false }));
    await expect(policy.execute(fn)).resolves.toBe(degraded);
    expect(fn).not.toHaveBeenCalled();
  });

  it('rate 0 passes results and failures through untouched', async () => {
    const policy = chaosOutcome({ rate: 0, outcome: 'injected' });
    await expect(policy.execute(() => 'real')).resolves.toBe('real');
    const failure = new Error('real failure');
    await expect(policy.execute(() => Promise.reject(failure))).rejects.toBe(failure);
  });

  it('undefined is an outcome like any other', async () => {
    const policy = chaosOutcome({ rate: 1, outcome: undefined });
    await expect(policy.execute(() => 'real')).resolves.toBeUndefined();
  });

  it('a function is called for each injected call, with its context, and may answer later', async () => {
    let made = 0;
    const policy = chaosOutcome({ rate: 1, outcome: async ({ attempt }) => `outcome ${++made} at attempt ${attempt}` });
    await expect(policy.execute(() => 'real')).resolves.toBe('outcome 1 at attempt 1');
    await expect(policy.execute(() => 'real')).resolves.toBe('outcome 2 at attempt 1');
  });

  it('a function that throws or rejects fails the call with its error, and emits no injected event', async () => {
    const bug = new Error('outcome bug');
    const events = vi.fn();
    const throwing = chaosOutcome({
      rate: 1,
      outcome: (): string => {
        throw bug;
      },
    });
    throwing.on('injected', events);
    await expect(throwing.execute(() => 'real')).rejects.toBe(bug);
    const rejecting = chaosOutcome({ rate: 1, outcome: () => Promise.reject<string>(bug) });
    rejecting.on('injected', events);
    await expect(rejecting.execute(() => 'real')).rejects.toBe(bug);
    expect(events).not.toHaveBeenCalled();
  });

  it('emits injected with the outcome once it is known', async () => {
    const policy = chaosOutcome({ rate: 1, outcome: async () => 42 });
    const events = vi.fn();
    policy.on('injected', events);
    await policy.execute(() => 0);
    expect(events).toHaveBeenCalledWith({ outcome: 42 });
  });

  it("a caller's abort, or an enclosing timeout, answers at once while an outcome function is pending", async () => {
    const clock = new CountingClock();
    const controller = new AbortController();
    const reason = new Error('caller left');
    const aborted = track(chaosOutcome({ rate: 1, outcome: hang }).execute(() => 'real', { signal: controller.signal }));
    controller.abort(reason);
    await flush();
    expect(aborted.error).toBe(reason);
    const timedOut = track(compose(withTimeout(50, { clock }), chaosOutcome({ rate: 1, outcome: hang })).execute(() => 'real'));
    await clock.advance(50);
    expect(timedOut.error).toBeInstanceOf(TimeoutError);
    expect(clock.armed).toBe(0);
  });

  it('an injected outcome is a success for the policies around it: no retry, a breaker counts a success', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const successes = vi.fn();
    breaker.on('success', successes);
    const retry = retryWithBackoff({ baseDelay: 0 });
    const retries = vi.fn();
    retry.on('retry', retries);
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const stack = compose(breaker, retry, chaosOutcome({ rate: 1, outcome: 'cached' }), bulkhead);
    const fn = vi.fn(() => 'real');
    await expect(stack.execute(fn)).resolves.toBe('cached');
    expect(fn).not.toHaveBeenCalled();
    expect(retries).not.toHaveBeenCalled();
    expect(successes).toHaveBeenCalledTimes(1);
    expect(breaker.state).toBe('closed');
    expect(bulkhead.active).toBe(0);
  });
});
