import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TimeoutError, compose, retryWithBackoff, withTimeout, type ExecutionContext } from '../../src/index.js';
import { ChaosLatencyPolicy, chaosLatency } from '../../src/chaos/index.js';
import { MAX_TIMER_DELAY } from '../../src/shared/clock.js';
import { CountingClock } from '../fixtures/clock.js';
import { flush, track } from '../fixtures/promises.js';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('chaosLatency', () => {
  it.each([1, 250, 2_000])('rate 1 runs the function %i ms late, not 1 ms earlier, and passes its result on', async (latency) => {
    const clock = new CountingClock();
    const policy = chaosLatency({ rate: 1, latency, clock });
    const result = { value: 'late' };
    const fn = vi.fn(() => result);
    const outcome = track(policy.execute(fn));
    await clock.advance(latency - 1);
    expect(fn).not.toHaveBeenCalled();
    expect(policy.delayed).toBe(1);
    await clock.advance(1);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(outcome.value).toBe(result);
    expect([policy.delayed, clock.armed]).toEqual([0, 0]);
  });

  it('passes a failure of the function on unchanged after the latency', async () => {
    const clock = new CountingClock();
    const failure = new Error('real failure');
    const outcome = track(chaosLatency({ rate: 1, latency: 10, clock }).execute(() => Promise.reject(failure)));
    await clock.advance(10);
    expect(outcome.error).toBe(failure);
  });

  it('rate 0 arms no timer and runs the function at once', async () => {
    const clock = new CountingClock();
    const policy = chaosLatency({ rate: 0, latency: 1_000, clock });
    await expect(policy.execute(() => 'now')).resolves.toBe('now');
    expect(clock.created).toBe(0);
  });

  it('a latency of 0 is injected (and told) but arms no timer', async () => {
    const clock = new CountingClock();
    const policy = chaosLatency({ rate: 1, latency: 0, clock });
    const events = vi.fn();
    policy.on('injected', events);
    await expect(policy.execute(() => 'now')).resolves.toBe('now');
    expect(events).toHaveBeenCalledWith({ latency: 0 });
    expect(clock.created).toBe(0);
  });

  it('a latency function gives the latency of each injected call from its context', async () => {
    const clock = new CountingClock();
    const latencies = [30, 5];
    const contexts: ExecutionContext[] = [];
    const policy = chaosLatency({
      rate: 1,
      clock,
      latency: (ctx) => {
        contexts.push(ctx);
        return latencies.shift() as number;
      },
    });
    const events = vi.fn();
    policy.on('injected', events);
    const first = track(policy.execute(() => 'first'));
    const second = track(policy.execute(() => 'second'));
    await clock.advance(5);
    expect([first.settled, second.value]).toEqual([false, 'second']);
    await clock.advance(25);
    expect(first.value).toBe('first');
    expect(events.mock.calls).toEqual([[{ latency: 30 }], [{ latency: 5 }]]);
    expect(contexts.map((ctx) => ctx.attempt)).toEqual([1, 1]);
  });

  it.each([
    ['a negative number', -1, new RangeError('chaosLatency latency returned must be a duration in ms ≥ 0 or Infinity, got -1')],
    ['NaN', Number.NaN, new RangeError('chaosLatency latency returned must be a duration in ms ≥ 0 or Infinity, got NaN')],
    ['a string', '100', new TypeError('chaosLatency latency returned must be a number of ms, got "100"')],
  ])('a latency function that returns %s fails the call, which runs nothing', async (_name, value, error) => {
    const fn = vi.fn();
    const policy = chaosLatency({ rate: 1, latency: () => value as number });
    await expect(policy.execute(fn)).rejects.toThrow(error);
    expect(fn).not.toHaveBeenCalled();
  });

  it('a latency function that throws fails the call with what it threw; one that returns a promise is refused', async () => {
    const bug = new Error('latency bug');
    const throwing = chaosLatency({
      rate: 1,
      latency: () => {
        throw bug;
      },
    });
    await expect(throwing.execute(() => 'ran')).rejects.toBe(bug);
    const asyncLatency = chaosLatency({ rate: 1, latency: (async () => 10) as unknown as () => number });
    await expect(asyncLatency.execute(() => 'ran')).rejects.toThrow(new TypeError('chaosLatency latency must return its answer synchronously, got a promise (an async function?)'));
  });

  it("a caller's abort during the latency answers at once with its reason, clears the timer and runs nothing", async () => {
    const clock = new CountingClock();
    const policy = chaosLatency({ rate: 1, latency: 5_000, clock });
    const controller = new AbortController();
    const reason = new Error('the client went away');
    const fn = vi.fn();
    const outcome = track(policy.execute(fn, { signal: controller.signal }));
    await clock.advance(100);
    expect(clock.armed).toBe(1);
    controller.abort(reason);
    await flush();
    expect(outcome.error).toBe(reason);
    expect([clock.armed, policy.delayed]).toEqual([0, 0]);
    await clock.advance(10_000);
    expect(fn).not.toHaveBeenCalled();
  });

  it('an enclosing timeout ends the latency at its deadline with its TimeoutError and leaves no timer', async () => {
    const clock = new CountingClock();
    const latency = chaosLatency({ rate: 1, latency: 2_000, clock });
    const stack = compose(withTimeout(300, { clock }), latency);
    const fn = vi.fn();
    const outcome = track(stack.execute(fn));
    await clock.advance(299);
    expect(outcome.settled).toBe(false);
    await clock.advance(1);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect([clock.armed, latency.delayed]).toEqual([0, 0]);
    await clock.advance(5_000);
    expect(fn).not.toHaveBeenCalled();
  });

  it('a signal aborted before the call rejects at once, injecting nothing', async () => {
    const clock = new CountingClock();
    const controller = new AbortController();
    controller.abort(new Error('already gone'));
    const events = vi.fn();
    const policy = chaosLatency({ rate: 1, latency: 50, clock });
    policy.on('injected', events);
    await expect(policy.execute(() => 'ran', { signal: controller.signal })).rejects.toThrow('already gone');
    expect([clock.created, events.mock.calls.length]).toEqual([0, 0]);
  });

  it('Infinity hangs the call until its caller gives up, on one timer at a time', async () => {
    const clock = new CountingClock();
    const policy = chaosLatency({ rate: 1, latency: Infinity, clock });
    const controller = new AbortController();
    const outcome = track(policy.execute(() => 'never', { signal: controller.signal }));
    await clock.advance(MAX_TIMER_DELAY * 2 + 1);
    expect(outcome.settled).toBe(false);
    expect([clock.armed, clock.created]).toEqual([1, 3]);
    controller.abort(new Error('gave up'));
    await flush();
    expect(outcome.error).toEqual(new Error('gave up'));
    expect(clock.armed).toBe(0);
  });

  it('a latency longer than a timer can wait is waited in turns, to the millisecond', async () => {
    const clock = new CountingClock();
    const latency = MAX_TIMER_DELAY + 1_000;
    const outcome = track(chaosLatency({ rate: 1, latency, clock }).execute(() => 'at last'));
    await clock.advance(latency - 1);
    expect(outcome.settled).toBe(false);
    await clock.advance(1);
    expect(outcome.value).toBe('at last');
    expect(clock.created).toBe(2);
  });

  it('waits on the system clock by default, which fake timers drive', async () => {
    vi.useFakeTimers();
    const outcome = track(chaosLatency({ rate: 1, latency: 1_000 }).execute(() => 'late'));
    await vi.advanceTimersByTimeAsync(999);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome.value).toBe('late');
    expect(vi.getTimerCount()).toBe(0);
  });

  it("after the latency, the policies inside and the function run in the caller's async context", async () => {
    const clock = new CountingClock();
    const request = new AsyncLocalStorage<string>();
    const policy = chaosLatency({ rate: 1, latency: 10, clock });
    const calls = ['a', 'b'].map((id) => track(request.run(id, () => policy.execute(() => request.getStore()))));
    await clock.advance(10);
    expect(calls.map((call) => call.value)).toEqual(['a', 'b']);
  });

  it('inside a retry, each attempt is drawn for anew', async () => {
    const clock = new CountingClock();
    const draws = [0, 0.9];
    const latency = chaosLatency({ rate: 0.5, latency: 100, clock, random: () => draws.shift() as number });
    const stack = compose(retryWithBackoff({ maxRetries: 1, baseDelay: 0 }), withTimeout(50, { clock }), latency);
    const outcome = track(stack.execute(({ attempt }) => `attempt ${attempt}`));
    await clock.advance(50); // attempt 1 waits past its timeout; attempt 2 is not delayed
    expect(outcome.value).toBe('attempt 2');
    expect([clock.armed, latency.delayed]).toEqual([0, 0]);
  });

  it('counts the calls waiting in an injected latency', async () => {
    const clock = new CountingClock();
    const policy = chaosLatency({ rate: 1, latency: 100, clock });
    expect(policy).toBeInstanceOf(ChaosLatencyPolicy);
    const calls = [0, 1, 2].map(() => track(policy.execute(() => 'ok')));
    await flush();
    expect(policy.delayed).toBe(3);
    await clock.advance(100);
    expect(calls.every((call) => call.value === 'ok')).toBe(true);
    expect(policy.delayed).toBe(0);
  });
});
