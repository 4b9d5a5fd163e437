/**
 * Outcomes as results: a returned value classified as a failure by the circuit breaker
 * (`isFailureResult`), the fallback (`handlesResult`) and hedging (`hedgeOnResult`), alone and
 * in a stack with the retry's `retryOnResult`; the value reaches the caller unchanged unless a
 * policy replaces it. (The retry's own tests are in retry-delay.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CircuitBreaker,
  CircuitBreakerGroup,
  CircuitOpenError,
  HedgeLostError,
  MetricsRegistry,
  compose,
  hedge,
  logPolicyEvents,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type CircuitBreakerEvents,
  type ExecutionContext,
  type FallbackEvents,
  type HedgeEvents,
  type Outcome,
  type PolicyLogger,
} from '../src/index.js';
import { renderPrometheus } from '../src/prometheus/index.js';
import { deferred, flushMicrotasks, hangUntilAborted, track, type Deferred } from './fixtures/promises.js';

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

const is503 = (value: unknown): boolean => (value as Reply).status === 503;
const reply = (status: number): Reply => ({ status });
const hasOwnOnValue = (policy: object): boolean => Object.prototype.hasOwnProperty.call(policy, 'onValue');

/** Log lines as written by logPolicyEvents. */
function logLines() {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const log = (level: string) => (fields: Record<string, unknown>, message: string) => lines.push({ level, message, fields });
  return { lines, logger: { info: log('info'), warn: log('warn'), error: log('error') } as unknown as PolicyLogger };
}

// ── Circuit breaker ─────────────────────────────────────────────────────────────────────────

describe('CircuitBreaker isFailureResult', () => {
  it('counts a value it accepts as a failure and returns it unchanged; a run of them opens the circuit', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3, isFailureResult: is503 });
    for (let i = 0; i < 3; i++) {
      const value = reply(503);
      await expect(breaker.execute(async () => value)).resolves.toBe(value);
    }
    expect(breaker.state).toBe('open');
    await expect(breaker.execute(async () => reply(200))).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('counts a value it declines as a success, resetting the run of failures', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2, isFailureResult: is503 });
    await breaker.execute(async () => reply(503));
    expect(breaker.stats().consecutiveFailures).toBe(1);
    await breaker.execute(async () => reply(200));
    expect(breaker.stats().consecutiveFailures).toBe(0);
    await breaker.execute(async () => reply(503));
    expect(breaker.state).toBe('closed');
  });

  it('counts failing values in the failure-rate window', async () => {
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 4 } }, isFailureResult: is503 });
    for (const status of [200, 503, 200]) await breaker.execute(async () => reply(status));
    expect(breaker.stats()).toMatchObject({ calls: 3, failures: 1 });
    await breaker.execute(async () => reply(503));
    expect(breaker.state).toBe('open');
  });

  it('a failing value of a half-open trial re-opens the circuit; an accepted one closes it', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, isFailureResult: is503 });
    const reasons: string[] = [];
    breaker.on('stateChange', ({ reason }) => reasons.push(reason));
    await breaker.execute(async () => reply(503));
    vi.advanceTimersByTime(1_000);
    await breaker.execute(async () => reply(503));
    vi.advanceTimersByTime(2_000);
    await breaker.execute(async () => reply(200));
    expect(reasons).toEqual(['failure-threshold', 'recovery-timeout', 'trial-failure', 'recovery-timeout', 'trial-success']);
  });

  it('times slow calls as before: a slow value it declines is a slow success', async () => {
    const breaker = new CircuitBreaker({ slowCall: { duration: 100, rateThreshold: 1 }, failureRate: { threshold: 1, minimumCalls: 1, window: { calls: 10 } }, isFailureResult: is503 });
    const call = track(breaker.execute(() => new Promise<Reply>((resolve) => setTimeout(() => resolve(reply(200)), 150))));
    await vi.advanceTimersByTimeAsync(150);
    expect(call.value).toEqual({ status: 200 });
    expect(breaker.stats()).toMatchObject({ calls: 1, failures: 0, slowCalls: 1 });
    expect(breaker.state).toBe('open');
  });

  it('emits failure with the value and an undefined error; an error keeps its payload', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 10, isFailureResult: is503 });
    const failures: CircuitBreakerEvents['failure'][] = [];
    breaker.on('failure', (e) => failures.push(e));
    const value = reply(503);
    await breaker.execute(async () => value);
    const boom = new Error('boom');
    await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(failures).toEqual([
      { error: undefined, state: 'closed', consecutiveFailures: 1, value },
      { error: boom, state: 'closed', consecutiveFailures: 2 },
    ]);
    expect(failures[0]?.value).toBe(value);
    expect('value' in (failures[1] as object)).toBe(false);
  });

  it('a predicate that throws fails the call with what it threw, counted as a failure', async () => {
    const broken = new Error('predicate broke');
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      isFailureResult: () => {
        throw broken;
      },
    });
    await expect(breaker.execute(async () => reply(200))).rejects.toBe(broken);
    expect(breaker.state).toBe('open');
  });

  it('a predicate that returns a promise is refused with a TypeError (counted as a failure), its rejection reported', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    const breaker = new CircuitBreaker({ failureThreshold: 1, isFailureResult: (() => Promise.reject(new Error('async'))) as never });
    const error = await breaker.execute(async () => reply(200)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('CircuitBreaker isFailureResult must return its answer synchronously, got a promise (an async function?)');
    expect(breaker.state).toBe('open');
    await flushMicrotasks();
    expect(reported).toHaveBeenCalled();
  });

  it('neither asks about nor counts a value that arrives after the caller aborted', async () => {
    const isFailureResult = vi.fn(is503);
    const breaker = new CircuitBreaker({ failureThreshold: 1, isFailureResult });
    const answer = deferred<Reply>();
    const controller = new AbortController();
    const call = track(breaker.execute(() => answer.promise, { signal: controller.signal }));
    controller.abort('gone');
    answer.resolve(reply(503));
    await flushMicrotasks();
    expect(call.error).toBe('gone');
    expect(isFailureResult).not.toHaveBeenCalled();
    expect(breaker.state).toBe('closed');
  });

  it('frees the place of a half-open trial whose caller aborted before its failing value came', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 10, isFailureResult: is503 });
    await breaker.execute(async () => reply(503));
    vi.advanceTimersByTime(10);
    const answer = deferred<Reply>();
    const controller = new AbortController();
    track(breaker.execute(() => answer.promise, { signal: controller.signal }));
    controller.abort('gone');
    answer.resolve(reply(503));
    await flushMicrotasks();
    expect(breaker.state).toBe('half-open');
    await expect(breaker.execute(async () => reply(200))).resolves.toEqual({ status: 200 });
    expect(breaker.state).toBe('closed');
  });

  it('works through a CircuitBreakerGroup, whose breakers share the option', async () => {
    const group = new CircuitBreakerGroup({ failureThreshold: 1, isFailureResult: is503 });
    await group.execute('a', async () => reply(503));
    await group.execute('b', async () => reply(200));
    expect(group.get('a').state).toBe('open');
    expect(group.get('b').state).toBe('closed');
  });

  it('without the option, values take the breaker’s usual onValue (no own hook)', () => {
    expect(hasOwnOnValue(new CircuitBreaker())).toBe(false);
    expect(hasOwnOnValue(new CircuitBreaker({ isFailureResult: is503 }))).toBe(true);
  });

  it('refuses a predicate that is not a function, and names cockatiel’s handleWhenResult', () => {
    expect(() => new CircuitBreaker({ isFailureResult: true as never })).toThrow(TypeError);
    expect(() => new CircuitBreaker({ handleWhenResult: is503 } as never)).toThrow('"isFailureResult"');
    expect(() => new CircuitBreakerGroup({ isFailureResult: 1 as never })).toThrow('CircuitBreakerGroup isFailureResult');
  });

  it('100 racing callers: each gets its own value, and every failing one is counted', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: Infinity, failureRate: { threshold: 1, minimumCalls: 200, window: { calls: 200 } }, isFailureResult: is503 });
    const answers = Array.from({ length: 100 }, () => deferred<Reply>());
    const calls = answers.map((answer) => track(breaker.execute(() => answer.promise)));
    const values = answers.map((answer, i) => {
      const value = reply(i % 2 === 0 ? 503 : 200);
      answer.resolve(value);
      return value;
    });
    await flushMicrotasks();
    calls.forEach((call, i) => expect(call.value).toBe(values[i]));
    expect(breaker.stats()).toMatchObject({ calls: 100, failures: 50 });
  });
});

// ── Fallback ───────────────────────────────────────────────────────────────────────────────

describe('withFallback handlesResult', () => {
  it('replaces a value it accepts with the fallback value, and passes the others unchanged', async () => {
    const policy = withFallback({ status: 0, cached: true }, { handlesResult: is503 });
    await expect(policy.execute(async () => reply(503))).resolves.toEqual({ status: 0, cached: true });
    const ok = reply(200);
    await expect(policy.execute(async () => ok)).resolves.toBe(ok);
  });

  it('calls a fallback function with error undefined and the outcome { ok: true, value }', async () => {
    const fallback = vi.fn((_error: unknown, _ctx: ExecutionContext, outcome: Outcome) => (outcome.ok ? { from: outcome.value } : 'error'));
    const policy = withFallback(fallback, { handlesResult: is503 });
    const value = reply(503);
    const answer = await policy.execute(async () => value);
    expect(answer).toEqual({ from: value });
    expect(fallback.mock.calls[0]?.[0]).toBeUndefined();
    expect(fallback.mock.calls[0]?.[2]).toEqual({ ok: true, value });
    expect(fallback.mock.calls[0]?.[1]).toHaveProperty('signal');
  });

  it('tells a fallback function of an error as before, with the outcome { ok: false, error }', async () => {
    const fallback = vi.fn((error: unknown) => (error as Error).message);
    const boom = new Error('boom');
    await expect(withFallback(fallback, { handlesResult: is503 }).execute(() => Promise.reject(boom))).resolves.toBe('boom');
    expect(fallback.mock.calls[0]?.[0]).toBe(boom);
    expect((fallback.mock.calls[0] as unknown[])[2]).toEqual({ ok: false, error: boom });
  });

  it('handles and handlesResult are independent: handles never sees a value', async () => {
    const handles = vi.fn(() => false);
    const policy = withFallback('fallback', { handles, handlesResult: is503 });
    await expect(policy.execute(async () => reply(503))).resolves.toBe('fallback');
    expect(handles).not.toHaveBeenCalled();
  });

  it('emits fallback with the value and an undefined error, and logs its status', async () => {
    const policy = withFallback('fallback', { handlesResult: is503, name: 'cache' });
    const events: FallbackEvents['fallback'][] = [];
    policy.on('fallback', (e) => events.push(e));
    const { lines, logger } = logLines();
    const stop = logPolicyEvents(policy, logger);
    const value = reply(503);
    await policy.execute(async () => value);
    stop();
    expect(events).toEqual([{ error: undefined, value }]);
    expect(lines[0]?.message).toBe('fallback "cache" answered in place of a failed call: returned a failing result (status 503)');
    expect(lines[0]?.fields).toMatchObject({ result: { type: 'object', status: 503 } });
  });

  it('logs a value without a status by its type alone, and counts the fallback in metrics', async () => {
    const policy = withFallback('fallback', { handlesResult: (value) => value === 'busy', name: 'plain' });
    const registry = new MetricsRegistry();
    registry.track(policy, { name: 'plain' });
    const { lines, logger } = logLines();
    const stop = logPolicyEvents(policy, logger);
    await expect(policy.execute(async () => 'busy')).resolves.toBe('fallback');
    await expect(policy.execute(async () => 'fine')).resolves.toBe('fine');
    stop();
    // Strictly: no `status` key at all, not one set to undefined, reaches the logger.
    expect(lines.map((l) => [l.message, l.fields['result']])).toStrictEqual([['fallback "plain" answered in place of a failed call: returned a failing result', { type: 'string' }]]);
    const entry = registry.snapshot().policies[0] as unknown as { fallbacks: number; calls: number; successes: number };
    expect(entry).toMatchObject({ fallbacks: 1, calls: 2, successes: 2 });
  });

  it('a predicate that throws fails the call with what it threw; a promise is refused with a TypeError', async () => {
    const broken = new Error('predicate broke');
    const throwing = withFallback('x', {
      handlesResult: () => {
        throw broken;
      },
    });
    await expect(throwing.execute(async () => reply(503))).rejects.toBe(broken);
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const asynchronous = withFallback('x', { handlesResult: (() => Promise.resolve(true)) as never });
    await expect(asynchronous.execute(async () => reply(503))).rejects.toThrow('withFallback handlesResult must return its answer synchronously');
  });

  it('replaces nothing once the caller aborted', async () => {
    const handlesResult = vi.fn(is503);
    const answer = deferred<Reply>();
    const controller = new AbortController();
    const call = track(withFallback('x', { handlesResult }).execute(() => answer.promise, { signal: controller.signal }));
    controller.abort('gone');
    answer.resolve(reply(503));
    await flushMicrotasks();
    expect(call.error).toBe('gone');
    expect(handlesResult).not.toHaveBeenCalled();
  });

  it('without the option has no onValue hook', () => {
    expect(hasOwnOnValue(withFallback('x'))).toBe(false);
    expect(hasOwnOnValue(withFallback('x', { handlesResult: is503 }))).toBe(true);
    expect(() => withFallback('x', { handlesResult: 'yes' as never })).toThrow(TypeError);
    expect(() => withFallback('x', { handleResult: is503 } as never)).toThrow('"handlesResult"');
  });
});

// ── Hedging ────────────────────────────────────────────────────────────────────────────────

/** A function whose attempts the test settles by hand. */
function controlled() {
  const answers: Deferred<unknown>[] = [];
  const signals: AbortSignal[] = [];
  const fn = (ctx: ExecutionContext): Promise<unknown> => {
    const answer = deferred<unknown>();
    answers.push(answer);
    signals.push(ctx.signal);
    return answer.promise;
  };
  const attempt = (n: number): Deferred<unknown> => {
    const found = answers[n - 1];
    if (found === undefined) throw new Error(`attempt ${n} never started`);
    return found;
  };
  return { fn, answers, signals, attempt };
}

describe('hedge hedgeOnResult', () => {
  it('starts the next attempt at once after a value it accepts, and answers with the first acceptable value', async () => {
    const policy = hedge({ delay: 1_000, maxHedgedAttempts: 2, hedgeOnResult: is503 });
    const hedges: HedgeEvents['hedge'][] = [];
    policy.on('hedge', (e) => hedges.push(e));
    const { fn, answers, attempt } = controlled();
    const call = track(policy.execute(fn));
    await flushMicrotasks();
    attempt(1).resolve(reply(503));
    await flushMicrotasks();
    expect(answers).toHaveLength(2);
    expect(hedges).toEqual([{ attempt: 2, trigger: 'failure' }]);
    const ok = reply(200);
    attempt(2).resolve(ok);
    await flushMicrotasks();
    expect(call.value).toBe(ok);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('returns the last value when every attempt answered unacceptably', async () => {
    const policy = hedge({ delay: 0, maxHedgedAttempts: 2, hedgeOnResult: is503 });
    const { fn, answers, attempt } = controlled();
    const call = track(policy.execute(fn));
    await flushMicrotasks();
    expect(answers).toHaveLength(3);
    const last = reply(503);
    attempt(2).resolve(reply(503));
    attempt(1).resolve(reply(503));
    await flushMicrotasks();
    expect(call.settled).toBe(false);
    attempt(3).resolve(last);
    await flushMicrotasks();
    expect(call.value).toBe(last);
  });

  it('ends with the outcome of the attempt that ended last: an error is thrown', async () => {
    const policy = hedge({ delay: 0, maxHedgedAttempts: 1, hedgeOnResult: is503 });
    const { fn, attempt } = controlled();
    const call = track(policy.execute(fn));
    await flushMicrotasks();
    attempt(1).resolve(reply(503));
    const boom = new Error('boom');
    attempt(2).reject(boom);
    await flushMicrotasks();
    expect(call.error).toBe(boom);
  });

  it('a value it declines answers at once and the others lose', async () => {
    const policy = hedge({ delay: 0, maxHedgedAttempts: 2, hedgeOnResult: is503 });
    const { fn, signals, attempt } = controlled();
    const call = track(policy.execute(fn));
    await flushMicrotasks();
    const ok = reply(200);
    attempt(2).resolve(ok);
    await flushMicrotasks();
    expect(call.value).toBe(ok);
    expect(signals[0]?.reason).toBeInstanceOf(HedgeLostError);
    expect(signals[2]?.reason).toBeInstanceOf(HedgeLostError);
  });

  it('asks with the attempt number', async () => {
    const hedgeOnResult = vi.fn((value: unknown, _attempt: number) => is503(value));
    const { fn, attempt } = controlled();
    track(hedge({ delay: 0, maxHedgedAttempts: 1, hedgeOnResult }).execute(fn));
    await flushMicrotasks();
    attempt(2).resolve(reply(503));
    attempt(1).resolve(reply(200));
    await flushMicrotasks();
    expect(hedgeOnResult.mock.calls.map((c) => c[1])).toEqual([2, 1]);
  });

  it('a predicate that throws fails the call with what it threw and aborts the others', async () => {
    const broken = new Error('predicate broke');
    const { fn, signals, attempt } = controlled();
    const call = track(
      hedge({
        delay: 0,
        maxHedgedAttempts: 1,
        hedgeOnResult: () => {
          throw broken;
        },
      }).execute(fn),
    );
    await flushMicrotasks();
    attempt(1).resolve(reply(200));
    await flushMicrotasks();
    expect(call.error).toBe(broken);
    expect(signals[1]?.reason).toBeInstanceOf(HedgeLostError);
  });

  it('a predicate that returns a promise is refused with a TypeError', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const call = track(hedge({ hedgeOnResult: (() => Promise.resolve(false)) as never }).execute(async () => reply(200)));
    await flushMicrotasks();
    expect((call.error as Error).message).toBe('hedge hedgeOnResult must return its answer synchronously, got a promise (an async function?)');
  });

  it('after its hedges are spent, with a delay still pending, waits for the attempts running', async () => {
    const policy = hedge({ delay: 500, maxHedgedAttempts: 1, hedgeOnResult: is503 });
    const { fn, answers, attempt } = controlled();
    const call = track(policy.execute(fn));
    await vi.advanceTimersByTimeAsync(500);
    expect(answers).toHaveLength(2);
    attempt(2).resolve(reply(503));
    await flushMicrotasks();
    expect(call.settled).toBe(false);
    const ok = reply(200);
    attempt(1).resolve(ok);
    await flushMicrotasks();
    expect(call.value).toBe(ok);
  });

  it('100 racing callers: each gets its own first acceptable value, and no timer is left', async () => {
    const policy = hedge({ delay: 50, maxHedgedAttempts: 2, hedgeOnResult: (value) => (value as { attempt: number }).attempt === 1 });
    const calls = Array.from({ length: 100 }, (_, i) =>
      track(policy.execute(async ({ attempt }) => {
        await new Promise((resolve) => setTimeout(resolve, i % 7));
        return { n: i, attempt };
      })),
    );
    await vi.runAllTimersAsync();
    calls.forEach((call, i) => expect(call.value).toEqual({ n: i, attempt: 2 }));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without the option, values answer as before', async () => {
    const value = reply(503);
    await expect(hedge({ delay: 10 }).execute(async () => value)).resolves.toBe(value);
    expect(() => hedge({ hedgeOnResult: 1 as never })).toThrow(TypeError);
    expect(() => hedge({ handleWhenResult: is503 } as never)).toThrow('"hedgeOnResult"');
  });
});

// ── A stack ────────────────────────────────────────────────────────────────────────────────

describe('outcomes as results in a stack: fallback → breaker → retry → timeout', () => {
  function stack() {
    const fallbackValue = { status: 200, stale: true };
    const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeout: 60_000, isFailureResult: is503, name: 'api' });
    const retry = retryWithBackoff({ maxRetries: 2, baseDelay: 10, jitter: 'none', retryOnResult: is503, name: 'api' });
    const fallback = withFallback(fallbackValue, { handlesResult: is503, name: 'api' });
    return { fallbackValue, breaker, retry, fallback, policy: compose(fallback, breaker, retry, withTimeout(1_000)) };
  }

  it('retries the 503s, counts one failure per call, opens the breaker, and the fallback answers', async () => {
    const { fallbackValue, breaker, retry, policy } = stack();
    let attempts = 0;
    const retries: number[] = [];
    retry.on('retry', ({ attempt }) => retries.push(attempt));
    for (let i = 0; i < 3; i++) {
      const call = track(
        policy.execute(async () => {
          attempts++;
          return reply(503);
        }),
      );
      await vi.runAllTimersAsync();
      expect(call.value).toBe(fallbackValue);
    }
    expect(attempts).toBe(9);
    expect(retries).toEqual([1, 2, 1, 2, 1, 2]);
    expect(breaker.state).toBe('open');
    // Open: refused at once (the fallback answers the refusal too), the dependency left alone.
    const refused = track(policy.execute(async () => reply(503)));
    await vi.runAllTimersAsync();
    expect(refused.value).toBe(fallbackValue);
    expect(attempts).toBe(9);
  });

  it('a 503 followed by a 200 reaches the caller as the same object, a success for the breaker', async () => {
    const { breaker, policy } = stack();
    const ok = reply(200);
    let n = 0;
    const call = track(policy.execute(async () => (++n === 1 ? reply(503) : ok)));
    await vi.runAllTimersAsync();
    expect(call.value).toBe(ok);
    expect(breaker.stats().consecutiveFailures).toBe(0);
  });

  it('without a fallback for results, the last 503 reaches the caller unchanged', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 5, isFailureResult: is503 });
    const last = reply(503);
    let n = 0;
    const policy = compose(withFallback('x'), breaker, retryWithBackoff({ maxRetries: 1, baseDelay: 1, retryOnResult: is503 }), withTimeout(1_000));
    const call = track(policy.execute(async () => (++n === 2 ? last : reply(503))));
    await vi.runAllTimersAsync();
    expect(call.value).toBe(last);
    expect(breaker.stats().consecutiveFailures).toBe(1);
  });

  it('a hung attempt times out and is retried like a 503; metrics and Prometheus see the retries', async () => {
    const { retry, fallback, breaker } = stack();
    const registry = new MetricsRegistry();
    const policy = compose(fallback, breaker, retry, withTimeout(100));
    registry.track(policy, { name: 'api' });
    let n = 0;
    const ok = reply(200);
    const call = track(policy.execute((ctx) => (++n === 1 ? hangUntilAborted(ctx) : n === 2 ? Promise.resolve(reply(503)) : Promise.resolve(ok))));
    await vi.runAllTimersAsync();
    expect(call.value).toBe(ok);
    const retryEntry = registry.snapshot().policies.find((p) => p.kind === 'retry') as unknown as { retries: number };
    expect(retryEntry.retries).toBe(2);
    expect(renderPrometheus(registry)).toMatch(/bulwark_retries_total\{[^}]*\} 2/);
  });

  it('logs the breaker opening on 503s', async () => {
    const { breaker, policy } = stack();
    const { lines, logger } = logLines();
    const stop = logPolicyEvents(breaker, logger);
    for (let i = 0; i < 3; i++) {
      track(policy.execute(async () => reply(503)));
      await vi.runAllTimersAsync();
    }
    stop();
    expect(lines.map((l) => l.message)).toContain('circuit breaker "api" opened (was closed, failure-threshold)');
  });
});
