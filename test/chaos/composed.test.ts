/**
 * The chaos policies in stacks with the five built-in ones: the errors they inject are the
 * dependency's for every policy around them, and 100 racing callers leave nothing behind.
 */
import { describe, expect, it, vi } from 'vitest';
import { Bulkhead, CircuitBreaker, TimeoutError, compose, isTimeoutError, retryWithBackoff, withFallback, withTimeout } from '../../src/index.js';
import { chaosFault, chaosLatency, chaosOutcome, seededRandom } from '../../src/chaos/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { flush, track, type Tracked } from '../fixtures/promises.js';

describe('chaos composed with the five', () => {
  it('an injected latency past the per-attempt timeout is ended by it and retried; the fallback answers for faults left after the retries', async () => {
    const clock = new CountingClock();
    // Attempt 1: a latency of 500 ms (the timeout ends it at 100); attempt 2: a fault; attempt 3: runs.
    const latencyDraws = [0, 0.9, 0.9];
    const faultDraws = [0, 0.9];
    const breaker = new CircuitBreaker({ failureThreshold: 5, clock });
    const retry = retryWithBackoff({ maxRetries: 2, baseDelay: 10, jitter: 'none', clock });
    const retried = vi.fn();
    retry.on('retry', ({ error }) => retried(error));
    const stack = compose(
      withFallback(() => 'fallback'),
      breaker,
      retry,
      withTimeout(100, { clock }),
      new Bulkhead({ maxConcurrent: 1, clock }),
      chaosLatency({ rate: 0.5, latency: 500, clock, random: () => latencyDraws.shift() as number }),
      chaosFault({ rate: 0.5, fault: new Error('injected'), random: () => faultDraws.shift() as number }),
    );
    const attempts: number[] = [];
    const outcome = track(stack.execute(({ attempt }) => (attempts.push(attempt), `ok at attempt ${attempt}`)));
    await clock.advance(100);
    expect(retried).toHaveBeenCalledTimes(1);
    expect(retried.mock.calls[0]?.[0]).toBeInstanceOf(TimeoutError);
    await clock.advance(10); // backoff, then attempt 2 gets the fault
    await clock.advance(20); // backoff, then attempt 3 runs
    expect(outcome.value).toBe('ok at attempt 3');
    expect(attempts).toEqual([3]);
    expect(retried.mock.calls.map(([error]) => (isTimeoutError(error) ? 'timeout' : (error as Error).message))).toEqual(['timeout', 'injected']);
    expect(breaker.state).toBe('closed');
    expect(clock.armed).toBe(0);
  });

  it('outermost, a fault reaches the caller past every policy: nothing inside ran', async () => {
    const fn = vi.fn();
    const injected = new Error('injected');
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const stack = compose(chaosFault({ rate: 1, fault: injected }), withFallback('fallback'), new CircuitBreaker(), retryWithBackoff({ baseDelay: 0 }), withTimeout(1_000), bulkhead);
    await expect(stack.execute(fn)).rejects.toBe(injected);
    expect(fn).not.toHaveBeenCalled();
    expect(bulkhead.active).toBe(0);
  });

  it('nested composes behave as the flat one', async () => {
    const injected = new Error('injected');
    const breaker = new CircuitBreaker({ failureThreshold: 2 });
    const chaos = compose(chaosLatency({ rate: 1, latency: 0 }), chaosFault({ rate: 1, fault: injected }));
    const stack = compose(breaker, compose(retryWithBackoff({ maxRetries: 1, baseDelay: 0 }), chaos));
    await expect(stack.execute(() => 'ran')).rejects.toBe(injected);
    await expect(stack.execute(() => 'ran')).rejects.toBe(injected);
    expect(breaker.state).toBe('open');
  });

  it('100 racing callers under every kind of chaos: each settles once, the bulkhead holds, aborts win, nothing is left behind', async () => {
    const clock = new CountingClock();
    const random = seededRandom(2024);
    const fault = chaosFault({ rate: 0.3, fault: ({ attempt }) => new Error(`injected at attempt ${attempt}`), random: seededRandom(1) });
    const latency = chaosLatency({ rate: 0.2, latency: () => 30 + Math.floor(random() * 60), clock, random: seededRandom(2) });
    const outcome = chaosOutcome({ rate: 0.1, outcome: 'chaos outcome', random: seededRandom(3) });
    const bulkhead = new Bulkhead({ maxConcurrent: 5, maxQueue: 200, clock });
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.9, minimumCalls: 20 }, recoveryTimeout: 50, clock });
    const stack = compose(
      withFallback((error: unknown) => ({ fallback: error })),
      breaker,
      retryWithBackoff({ maxRetries: 2, baseDelay: 5, maxDelay: 20, clock, random: seededRandom(4) }),
      withTimeout(40, { clock }),
      bulkhead,
      latency,
      fault,
      outcome,
    );
    const counts = { faults: 0, latencies: 0, outcomes: 0 };
    fault.on('injected', () => counts.faults++);
    latency.on('injected', () => counts.latencies++);
    outcome.on('injected', () => counts.outcomes++);

    let running = 0;
    let most = 0;
    let functionRuns = 0;
    const calls: { outcome: Tracked<unknown>; reason: Error; abortedAt: number | undefined }[] = [];
    for (let i = 0; i < 100; i++) {
      const startIn = Math.floor(random() * 100);
      const duration = Math.floor(random() * 20);
      const abortIn = random() < 0.2 ? Math.floor(random() * 80) : undefined;
      const controller = new AbortController();
      const reason = new Error(`caller ${i} left`);
      const call = { outcome: undefined as unknown as Tracked<unknown>, reason, abortedAt: undefined as number | undefined };
      calls.push(call);
      clock.setTimeout(() => {
        call.outcome = track(
          stack.execute(
            () => {
              functionRuns++;
              running++;
              most = Math.max(most, running);
              return new Promise((resolve) =>
                clock.setTimeout(() => {
                  running--;
                  resolve(`value ${i}`);
                }, duration),
              );
            },
            { signal: controller.signal },
          ),
        );
        if (abortIn !== undefined) {
          clock.setTimeout(() => {
            if (!call.outcome.settled) call.abortedAt = clock.now();
            controller.abort(reason);
          }, abortIn);
        }
      }, startIn);
    }
    await clock.advance(10_000);
    await flush();

    expect(most).toBeLessThanOrEqual(5);
    expect(most).toBe(5); // the race did fill the bulkhead
    for (const [i, call] of calls.entries()) {
      expect(call.outcome.settled, `call ${i} settled`).toBe(true);
      if (call.abortedAt !== undefined) {
        expect(call.outcome.error, `call ${i} was aborted by its caller`).toBe(call.reason);
        continue;
      }
      const value = call.outcome.value;
      const known = value === `value ${i}` || value === 'chaos outcome' || (typeof value === 'object' && value !== null && 'fallback' in value);
      expect(known, `call ${i} answered ${String(value)}`).toBe(true);
    }
    expect(counts.faults).toBeGreaterThan(10);
    expect(counts.latencies).toBeGreaterThan(5);
    expect(counts.outcomes).toBeGreaterThan(3);
    expect(functionRuns).toBeGreaterThan(0);
    expect([clock.armed, bulkhead.active, bulkhead.queued, latency.delayed]).toEqual([0, 0, 0, 0]);
  });
});
