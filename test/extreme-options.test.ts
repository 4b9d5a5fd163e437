/**
 * "Accepted means it works": every option of every public constructor and factory, at extreme
 * values that look valid. For each value the option is either refused when the policy is built
 * (a RangeError or TypeError whose message names the option and the value or its limit), or
 * the policy built with it answers real calls as documented: a success with the function's
 * value, a failure with the function's own error object or the policy's documented answer
 * (CircuitOpenError, TimeoutError, BulkheadRejectedError, RateLimitedError, a fallback, cached,
 * hedged or injected answer) — never an
 * error from inside the library — and leaves no timer behind once every call settled (except
 * the ones documented to exist). Windows and histograms must also stay within sane memory.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { DataPointType, MeterProvider, MetricReader, type Histogram as HistogramValue } from '@opentelemetry/sdk-metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  BulkheadRejectedError,
  CircuitBreaker,
  CircuitBreakerGroup,
  CircuitOpenError,
  HedgeLostError,
  MemoryCache,
  MetricsRegistry,
  RateLimitedError,
  RateLimiter,
  RateLimiterGroup,
  RetryBudget,
  TimeoutError,
  hedge,
  logPolicyEvents,
  retryWithBackoff,
  withCacheFallback,
  withFallback,
  withTimeout,
  type BulkheadOptions,
  type CircuitBreakerGroupOptions,
  type CircuitBreakerOptions,
  type ExecutionContext,
  type HedgeOptions,
  type JitterMode,
  type LogPolicyEventsOptions,
  type MemoryCacheOptions,
  type MetricsRegistryOptions,
  type RateLimitAlgorithm,
  type RateLimiterGroupOptions,
  type RateLimiterOptions,
  type RetryBudgetOptions,
  type RetryOptions,
} from '../src/index.js';
import { chaosFault, chaosLatency, chaosOutcome, type ChaosFaultOptions, type ChaosLatencyOptions, type ChaosOutcomeOptions } from '../src/chaos/index.js';
import { HealthMonitor, type CheckOptions, type HealthMonitorOptions } from '../src/health/index.js';
import { registerOpenTelemetryMetrics, type OpenTelemetryMetricsOptions, type OtelMeter } from '../src/otel/index.js';
import { renderPrometheus } from '../src/prometheus/index.js';
import { deferred, track } from './fixtures/promises.js';

// ---------------------------------------------------------------------------------------------
// Values and helpers
// ---------------------------------------------------------------------------------------------

const MAX_TIMER = 2 ** 31 - 1;
const THIRTY_DAYS = 30 * 24 * 60 * 60 * 1_000;
/** A breaker, a window or a histogram may not take more than this to hold what it was given. */
const MEMORY_LIMIT = 64 * 2 ** 20;

/** The table every numeric option goes through. */
const EDGE: readonly number[] = [0, -0, 1, 0.5, 1e-9, 2 ** 31 - 1, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, Infinity];
/** The table of rate thresholds, documented in (0, 1]. */
const RATES: readonly number[] = [0, -0, 1e-300, 1e-9, 0.5, 1 - 1e-16, 1, 1 + 2 ** -52, 50, Infinity];

function label(value: unknown): string {
  if (typeof value !== 'number') return typeof value === 'string' ? JSON.stringify(value) : String(value);
  if (Object.is(value, -0)) return '-0';
  const names: [number, string][] = [
    [2 ** 31 - 1, '2**31-1'],
    [2 ** 31, '2**31'],
    [2 ** 32, '2**32'],
    [Number.MAX_SAFE_INTEGER, 'MAX_SAFE_INTEGER'],
    [Number.MAX_VALUE, 'MAX_VALUE'],
    [1 - 1e-16, '1-1e-16'],
    [1 + 2 ** -52, '1+2**-52'],
    [THIRTY_DAYS, '30 days'],
  ];
  return names.find(([known]) => known === value)?.[1] ?? String(value);
}

/** How bulwark's messages print a value. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** -0 and 0 alike, as a delay in ms. */
const plain = (values: readonly number[]): number[] => values.map((value) => value + 0);

const rows = (values: readonly number[]) => values.map((value) => ({ label: label(value), value }));

/** Lets a test pass what TypeScript would refuse, as a JavaScript caller could. */
const loose = <T>(value: unknown): T => value as T;

const REFUSED: unique symbol = Symbol('refused');

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : `non-error ${String(error)}`;
}

/**
 * Builds with `make`. A refusal must be a RangeError or TypeError whose message names
 * `option` and the value (or one of `limits`); then REFUSED is returned.
 */
function build<T>(option: string, value: unknown, make: () => T, limits: readonly string[] = []): T | typeof REFUSED {
  try {
    return make();
  } catch (error) {
    if (!(error instanceof RangeError || error instanceof TypeError)) {
      expect.fail(`${option} = ${label(value)} was refused with ${describeError(error)}, not a RangeError or TypeError`);
    }
    if (!error.message.includes(option)) expect.fail(`the refusal of ${option} = ${label(value)} does not name the option: ${error.message}`);
    if (![shown(value), ...limits].some((mention) => error.message.includes(mention))) {
      expect.fail(`the refusal of ${option} = ${label(value)} names neither the value nor a limit: ${error.message}`);
    }
    return REFUSED;
  }
}

type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

const outcomeOf = (promise: Promise<unknown>): Promise<Outcome> =>
  promise.then(
    (value): Outcome => ({ ok: true, value }),
    (error: unknown): Outcome => ({ ok: false, error }),
  );

function expectValue(outcome: Outcome, value: unknown): void {
  if (!outcome.ok) expect.fail(`expected the function's value ${JSON.stringify(value)}, the call rejected with ${describeError(outcome.error)}`);
  expect(outcome.value).toBe(value);
}

function expectOwnError(outcome: Outcome, error: unknown): void {
  if (outcome.ok) expect.fail(`expected the function's own error, the call answered ${JSON.stringify(outcome.value)}`);
  if (outcome.error !== error) expect.fail(`expected the function's own error object, the call rejected with ${describeError(outcome.error)}`);
}

function expectRefusal<E>(outcome: Outcome, kind: new (...args: never[]) => E): E {
  if (outcome.ok) expect.fail(`expected a ${kind.name}, the call answered ${JSON.stringify(outcome.value)}`);
  if (!(outcome.error instanceof kind)) expect.fail(`expected a ${kind.name}, the call rejected with ${describeError(outcome.error)}`);
  return outcome.error;
}

/** Runs timers until `promise` settles (a retry's sleeps, a zero-delay yield). */
async function settleWithTimers(promise: Promise<unknown>, maxSteps = 1_000): Promise<Outcome> {
  const watched = track(promise);
  for (let step = 0; !watched.settled && step < maxSteps; step++) await vi.advanceTimersToNextTimerAsync();
  if (!watched.settled) expect.fail('the call never settled');
  return watched.rejected ? { ok: false, error: watched.error } : { ok: true, value: watched.value };
}

/** A call through `execute` that takes `ms` ms of (fake) time, then answers `value` or throws `error`. */
async function callTaking(
  execute: (fn: (ctx: ExecutionContext) => Promise<unknown>) => Promise<unknown>,
  ms: number,
  answer: { value: unknown } | { error: unknown },
): Promise<Outcome> {
  const gate = deferred();
  const result = outcomeOf(
    execute(async () => {
      await gate.promise;
      if ('error' in answer) throw answer.error;
      return answer.value;
    }),
  );
  await vi.advanceTimersByTimeAsync(ms);
  gate.resolve();
  return result;
}

/** The ms to advance so that a duration of `value` ms has surely passed. */
const past = (value: number): number => Math.max(1, Math.ceil(value));

/** `--expose-gc` set at run time, so a memory measure does not count garbage of an earlier row. */
const collectGarbage: () => void = (() => {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // Array buffers are swept concurrently: the second collection finishes the first one's sweep,
    // so a buffer an earlier row dropped cannot be freed in the middle of this row's measure.
    return () => {
      gc();
      gc();
    };
  } catch {
    return () => {};
  }
})();

function arrayBuffersNow(): number {
  return process.memoryUsage().arrayBuffers;
}

function expectMemoryWithinLimit(before: number, what: string): void {
  const grown = arrayBuffersNow() - before;
  if (grown > MEMORY_LIMIT) expect.fail(`${what} allocated ${Math.round(grown / 2 ** 20)} MB of array buffers (limit ${MEMORY_LIMIT / 2 ** 20} MB)`);
}

const breakerWith = (options: Record<string, unknown>) => new CircuitBreaker(loose<CircuitBreakerOptions>(options));

async function openWithOneFailure(breaker: CircuitBreaker): Promise<void> {
  const error = new Error('down');
  expectOwnError(await outcomeOf(breaker.execute(() => Promise.reject(error))), error);
}

const silentLogger = () => ({ info: vi.fn(), warn: vi.fn(), error: vi.fn() });

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

// ---------------------------------------------------------------------------------------------
// CircuitBreaker
// ---------------------------------------------------------------------------------------------

describe('CircuitBreaker', () => {
  it.each(rows(EDGE))('failureThreshold = $label: opens after that many failures in a row', async ({ value }) => {
    const breaker = build('failureThreshold', value, () => breakerWith({ failureThreshold: value, recoveryTimeout: 1_000 }));
    if (breaker === REFUSED) return;
    expectValue(await outcomeOf(breaker.execute(() => 'ok')), 'ok');
    for (let i = 0; i < Math.min(value, 3); i++) {
      const error = new Error(`down ${i}`);
      expectOwnError(await outcomeOf(breaker.execute(() => Promise.reject(error))), error);
    }
    const next = await outcomeOf(breaker.execute(() => 'after'));
    if (value <= 3) expectRefusal(next, CircuitOpenError);
    else expectValue(next, 'after');
    expect(breaker.state).toBe(value <= 3 ? 'open' : 'closed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('recoveryTimeout = $label: open that long, then a healthy trial of 5 ms closes the circuit', async ({ value }) => {
    const breaker = build('recoveryTimeout', value, () => breakerWith({ failureThreshold: 1, recoveryTimeout: value }), [String(MAX_TIMER)]);
    if (breaker === REFUSED) return;
    await openWithOneFailure(breaker);
    if (value >= 1) {
      const refusal = expectRefusal(await outcomeOf(breaker.execute(() => 'too early')), CircuitOpenError);
      expect(refusal.retryAfter).toBe(value);
    }
    await vi.advanceTimersByTimeAsync(Math.ceil(value));
    expect(breaker.state).toBe('half-open');
    expectValue(await callTaking((fn) => breaker.execute(fn), 5, { value: 'recovered' }), 'recovered');
    expect(breaker.state, 'the healthy trial closed the circuit').toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
  });

  const trialError = new Error('trial failed');
  // An answer past 2³¹−1 ms is capped there (probing as rarely as allowed); one that is not a
  // number ≥ 0 is documented to keep the circuit open 30 000 ms, reported once.
  const RECOVERY_ANSWERS: { label: string; answer: () => unknown; breakMs: number }[] = [
    ...[0, -0, 1e-9, 0.5, 1, 1_000, MAX_TIMER].map((ms) => ({ label: label(ms), answer: () => ms, breakMs: ms })),
    ...[2 ** 31, Number.MAX_SAFE_INTEGER, Infinity].map((ms) => ({ label: label(ms), answer: () => ms, breakMs: MAX_TIMER })),
    ...[NaN, -1, '5', undefined].map((junk) => ({ label: label(junk), answer: () => junk, breakMs: 30_000 })),
    {
      label: 'a throw',
      answer: () => {
        throw new Error('backoff broke');
      },
      breakMs: 30_000,
    },
  ];

  it.each(RECOVERY_ANSWERS)('recoveryTimeout function answering $label: breaks for the answer or the documented 30 000 ms, reported once', async ({ answer, breakMs }) => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    const breaker = breakerWith({ failureThreshold: 1, recoveryTimeout: answer });
    for (let opening = 1; opening <= 2; opening++) {
      if (opening === 1) await openWithOneFailure(breaker);
      else expectOwnError(await outcomeOf(breaker.execute(() => Promise.reject(trialError))), trialError);
      expect(breaker.stats().retryAfter).toBeCloseTo(breakMs, 2);
      await vi.advanceTimersByTimeAsync(past(breakMs));
      expect(breaker.state).toBe('half-open');
    }
    expect(reportError).toHaveBeenCalledTimes(breakMs === 30_000 ? 1 : 0);
    expect(vi.getTimerCount()).toBe(0);
  });
  it('recoveryTimeout function: an uncapped exponential backoff never shortens the break', async () => {
    vi.stubGlobal('reportError', vi.fn());
    const breaker = breakerWith({ failureThreshold: 1, recoveryTimeout: (opens: number) => 1_000 * 2 ** (opens - 1) });
    await openWithOneFailure(breaker);
    let previous = 0;
    for (let opens = 1; opens <= 25; opens++) {
      const { retryAfter } = breaker.stats();
      if (retryAfter < previous) expect.fail(`opening ${opens} breaks for ${retryAfter} ms, shorter than the ${previous} ms of opening ${opens - 1}`);
      previous = retryAfter;
      await vi.advanceTimersByTimeAsync(retryAfter);
      const error = new Error(`still down ${opens}`);
      expectOwnError(await outcomeOf(breaker.execute(() => Promise.reject(error))), error);
    }
  });

  it.each(rows(EDGE))('halfOpenMaxCalls = $label: that many trials at once, the others refused', async ({ value }) => {
    const breaker = build('halfOpenMaxCalls', value, () => breakerWith({ failureThreshold: 1, recoveryTimeout: 10, halfOpenMaxCalls: value, halfOpenSuccessThreshold: 1 }));
    if (breaker === REFUSED) return;
    await openWithOneFailure(breaker);
    await vi.advanceTimersByTimeAsync(10);
    const gates = [deferred(), deferred(), deferred()];
    const calls = gates.map((gate, at) =>
      outcomeOf(
        breaker.execute(async () => {
          await gate.promise;
          return at;
        }),
      ),
    );
    await vi.advanceTimersByTimeAsync(0);
    const admitted = Math.min(value, 3);
    expect(breaker.stats().trialsInFlight).toBe(admitted);
    for (const gate of gates) gate.resolve();
    const outcomes = await Promise.all(calls);
    outcomes.forEach((outcome, at) => (at < admitted ? expectValue(outcome, at) : expectRefusal(outcome, CircuitOpenError)));
    expect(breaker.state).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('halfOpenSuccessThreshold = $label: that many successful trials close the circuit', async ({ value }) => {
    const breaker = build('halfOpenSuccessThreshold', value, () => breakerWith({ failureThreshold: 1, recoveryTimeout: 10, halfOpenSuccessThreshold: value, halfOpenMaxWait: Infinity }));
    if (breaker === REFUSED) return;
    await openWithOneFailure(breaker);
    await vi.advanceTimersByTimeAsync(10);
    for (let trial = 0; trial < Math.min(value, 3); trial++) expectValue(await outcomeOf(breaker.execute(() => `trial ${trial}`)), `trial ${trial}`);
    if (value <= 3) {
      expect(breaker.state).toBe('closed');
    } else {
      expect(breaker.state).toBe('half-open');
      expectValue(await outcomeOf(breaker.execute(() => 'next trial')), 'next trial');
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('halfOpenMaxWait = $label: a trial that answers at once closes the circuit, one that hangs past it re-opens it', async ({ value }) => {
    const breaker = build('halfOpenMaxWait', value, () => breakerWith({ failureThreshold: 1, recoveryTimeout: 10, halfOpenMaxWait: value }), [String(MAX_TIMER), 'more than 0']);
    if (breaker === REFUSED) return;
    await openWithOneFailure(breaker);
    await vi.advanceTimersByTimeAsync(10);
    expectValue(await outcomeOf(breaker.execute(() => 'prompt trial')), 'prompt trial');
    expect(breaker.state, 'a trial that answered at once closed the circuit').toBe('closed');

    await openWithOneFailure(breaker);
    await vi.advanceTimersByTimeAsync(10);
    const gate = deferred();
    const hung = outcomeOf(
      breaker.execute(async () => {
        await gate.promise;
        return 'late trial';
      }),
    );
    await vi.advanceTimersByTimeAsync(value === Infinity ? 2 ** 32 : past(value));
    expect(breaker.state).toBe(value === Infinity ? 'half-open' : 'open');
    gate.resolve();
    expectValue(await hung, 'late trial');
    expect(breaker.state).toBe(value === Infinity ? 'closed' : 'open');
    expect(vi.getTimerCount()).toBe(0);
  });

  // A rate opens the circuit at or above its threshold: 1 bad call of 10 opens it iff 0.1 ≥ threshold, 10 of 10 always.
  describe.each([
    { option: 'failureRate.threshold', bad: 'failed' },
    { option: 'slowCall.rateThreshold', bad: 'slow' },
  ])('$option', ({ option, bad }) => {
    it.each(rows(RATES))(`${option} = $label: opens when the rate reaches it`, async ({ value }) => {
      const make = (): CircuitBreaker =>
        breakerWith(
          option === 'failureRate.threshold'
            ? { failureRate: { threshold: value, minimumCalls: 10, window: { calls: 10 } } }
            : { failureRate: { threshold: 1, minimumCalls: 10, window: { calls: 10 } }, slowCall: { duration: 100, rateThreshold: value } },
        );
      const breaker = build(option, value, make, ['(0, 1]']);
      if (breaker === REFUSED) return;
      const badCall = async (at: number): Promise<void> => {
        if (bad === 'failed') {
          const error = new Error(`down ${at}`);
          expectOwnError(await outcomeOf(breaker.execute(() => Promise.reject(error))), error);
        } else {
          expectValue(await callTaking((fn) => breaker.execute(fn), 101, { value: `slow ${at}` }), `slow ${at}`);
        }
      };
      for (let at = 0; at < 9; at++) expectValue(await outcomeOf(breaker.execute(() => at)), at);
      await badCall(9);
      expect(breaker.state).toBe(0.1 >= value ? 'open' : 'closed');
      breaker.reset();
      for (let at = 0; at < 10; at++) await badCall(at);
      expect(breaker.state).toBe('open');
      expectRefusal(await outcomeOf(breaker.execute(() => 'refused')), CircuitOpenError);
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  describe.each([
    { window: 'count window { calls: 100 }', shape: { calls: 100 } },
    { window: 'time window { duration: 60 000 }', shape: { duration: 60_000 } },
  ])('failureRate.minimumCalls with a $window', ({ shape }) => {
    it.each(rows(EDGE))('failureRate.minimumCalls = $label: no rate opens the circuit before the window holds that many', async ({ value }) => {
      const breaker = build('failureRate.minimumCalls', value, () => breakerWith({ failureRate: { threshold: 0.5, minimumCalls: value, window: shape } }), ['window.calls']);
      if (breaker === REFUSED) return;
      for (let at = 0; at < Math.min(value, 3); at++) {
        expect(breaker.state).toBe('closed');
        const error = new Error(`down ${at}`);
        expectOwnError(await outcomeOf(breaker.execute(() => Promise.reject(error))), error);
      }
      expect(breaker.state).toBe(value <= 3 ? 'open' : 'closed');
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  // The window is allocated on the first outcome: what it takes shows on the first call.
  describe.each([
    { owner: 'CircuitBreaker', make: (options: CircuitBreakerOptions) => breakerWith(options as Record<string, unknown>) },
    { owner: 'CircuitBreakerGroup', make: (options: CircuitBreakerOptions) => new CircuitBreakerGroup(options).get('key') },
  ])('$owner window', ({ make }) => {
    it.each(rows(EDGE))('failureRate.window.calls = $label: answers every call, opens on the rate, within 64 MB', async ({ value }) => {
      const breaker = build('failureRate.window.calls', value, () => make(loose({ failureRate: { threshold: 0.5, minimumCalls: 1, window: { calls: value } } })));
      if (breaker === REFUSED) return;
      collectGarbage();
      const before = arrayBuffersNow();
      expectValue(await outcomeOf(breaker.execute(() => 'ok')), 'ok');
      const error = new Error('down');
      expectOwnError(await outcomeOf(breaker.execute(() => Promise.reject(error))), error);
      expectMemoryWithinLimit(before, `a window of ${label(value)} calls`);
      expect(breaker.state).toBe('open');
      expectRefusal(await outcomeOf(breaker.execute(() => 'refused')), CircuitOpenError);
      expect(vi.getTimerCount()).toBe(0);
    });

    it.each(rows([...EDGE, 1e6, 1e7]))('failureRate.window.buckets = $label (duration 2**31-1): answers every call, forgets old outcomes, within 64 MB', async ({ value }) => {
      const breaker = build('failureRate.window.buckets', value, () => make(loose({ failureRate: { threshold: 0.5, minimumCalls: 2, window: { duration: MAX_TIMER, buckets: value } } })), [
        String(MAX_TIMER),
      ]);
      if (breaker === REFUSED) return;
      await timeWindowScenario(breaker, MAX_TIMER, `a time window of ${label(value)} buckets`);
    });
  });

  it.each(rows(EDGE))('failureRate.window.duration = $label: answers every call, forgets outcomes older than the window', async ({ value }) => {
    const breaker = build('failureRate.window.duration', value, () => breakerWith({ failureRate: { threshold: 0.5, minimumCalls: 2, window: { duration: value } } }), [
      String(MAX_TIMER),
      'at least 1 ms',
    ]);
    if (breaker === REFUSED) return;
    await timeWindowScenario(breaker, value, `a time window of ${label(value)} ms`);
  });

  async function timeWindowScenario(breaker: CircuitBreaker, duration: number, what: string): Promise<void> {
    collectGarbage();
    const before = arrayBuffersNow();
    const first = new Error('down 1');
    expectOwnError(await outcomeOf(breaker.execute(() => Promise.reject(first))), first);
    expectMemoryWithinLimit(before, what);
    expect(breaker.stats().calls).toBe(1);
    await vi.advanceTimersByTimeAsync(past(duration));
    expect(breaker.stats().calls, 'the outcome left the window').toBe(0);
    for (const at of [2, 3]) {
      const error = new Error(`down ${at}`);
      expectOwnError(await outcomeOf(breaker.execute(() => Promise.reject(error))), error);
    }
    expect(breaker.state).toBe('open');
    expectRefusal(await outcomeOf(breaker.execute(() => 'refused')), CircuitOpenError);
    expect(vi.getTimerCount()).toBe(0);
  }

  it.each(rows(EDGE))('slowCall.duration = $label: a call that long is not slow, a call 1 ms longer is', async ({ value }) => {
    const breaker = build('slowCall.duration', value, () => breakerWith({ failureRate: { threshold: 1, minimumCalls: 2, window: { calls: 2 } }, slowCall: { duration: value, rateThreshold: 1 } }), [
      String(MAX_TIMER),
    ]);
    if (breaker === REFUSED) return;
    const fast = Math.floor(value);
    for (const at of [1, 2]) expectValue(await callTaking((fn) => breaker.execute(fn), fast, { value: `on time ${at}` }), `on time ${at}`);
    expect(breaker.stats().slowCalls).toBe(0);
    expect(breaker.state).toBe('closed');
    for (const at of [1, 2]) expectValue(await callTaking((fn) => breaker.execute(fn), fast + 1, { value: `slow ${at}` }), `slow ${at}`);
    expect(breaker.state).toBe('open');
    expectRefusal(await outcomeOf(breaker.execute(() => 'refused')), CircuitOpenError);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('CircuitBreakerGroup', () => {
  it.each(rows(EDGE))('maxKeys = $label: keeps at most that many closed breakers, every call answered', async ({ value }) => {
    const group = build('maxKeys', value, () => new CircuitBreakerGroup({}, loose<CircuitBreakerGroupOptions>({ maxKeys: value })));
    if (group === REFUSED) return;
    const evicted: string[] = [];
    group.on('evicted', ({ key }) => evicted.push(key));
    for (const key of ['a', 'b', 'c']) expectValue(await outcomeOf(group.execute(key, () => `value of ${key}`)), `value of ${key}`);
    expect(group.size).toBe(Math.min(value, 3));
    expect(evicted).toHaveLength(3 - Math.min(value, 3));
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// retryWithBackoff
// ---------------------------------------------------------------------------------------------

describe('retryWithBackoff', () => {
  const retry = (options: Record<string, unknown>) => retryWithBackoff(loose<RetryOptions>(options));

  /** A function that fails `failures` times (each with its own error), then answers 'ok'. */
  function flaky(failures: number) {
    const errors: Error[] = [];
    let attempts = 0;
    const fn = async (): Promise<string> => {
      attempts++;
      if (attempts > failures) return 'ok';
      const error = new Error(`attempt ${attempts}`);
      errors.push(error);
      throw error;
    };
    return { fn, errors, attempts: () => attempts };
  }

  it.each(rows(EDGE))('maxRetries = $label: up to that many retries, then the last error itself', async ({ value }) => {
    const policy = build('maxRetries', value, () => retry({ maxRetries: value, baseDelay: 0 }));
    if (policy === REFUSED) return;
    const failures = 130; // past two zero-delay yields to the event loop
    const { fn, errors, attempts } = flaky(failures);
    const outcome = await settleWithTimers(policy.execute(fn));
    if (value >= failures) {
      expectValue(outcome, 'ok');
      expect(attempts()).toBe(failures + 1);
    } else {
      expectOwnError(outcome, errors[errors.length - 1]);
      expect(attempts()).toBe(value + 1);
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows([...EDGE, 60_000]))("baseDelay = $label: the first retry waits exactly that long (jitter 'none')", async ({ value }) => {
    const policy = build('baseDelay', value, () => retry({ baseDelay: value, maxRetries: 1, jitter: 'none' }), [String(MAX_TIMER)]);
    if (policy === REFUSED) return;
    const delays: number[] = [];
    policy.on('retry', ({ delay }) => delays.push(delay));
    const { fn, attempts } = flaky(1);
    const result = outcomeOf(policy.execute(fn));
    await vi.advanceTimersByTimeAsync(0);
    expect(plain(delays), 'the delay before the first retry').toEqual(plain([value]));
    if (value >= 2) {
      await vi.advanceTimersByTimeAsync(value - 1);
      expect(attempts(), 'no retry before baseDelay').toBe(1);
    }
    await vi.advanceTimersByTimeAsync(past(value));
    expectValue(await result, 'ok');
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))("maxDelay = $label: no delay is longer (jitter 'none', baseDelay 1 000)", async ({ value }) => {
    const policy = build('maxDelay', value, () => retry({ maxDelay: value, maxRetries: 3, jitter: 'none' }), [String(MAX_TIMER)]);
    if (policy === REFUSED) return;
    const delays: number[] = [];
    policy.on('retry', ({ delay }) => delays.push(delay));
    expectValue(await settleWithTimers(policy.execute(flaky(3).fn)), 'ok');
    expect(plain(delays)).toEqual(plain([1_000, 2_000, 4_000].map((delay) => Math.min(value, delay))));
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows([...EDGE, 1.5]))("exponentialBase = $label: delays grow by it, capped by maxDelay (jitter 'none')", async ({ value }) => {
    const policy = build('exponentialBase', value, () => retry({ exponentialBase: value, baseDelay: 10, maxDelay: 1_000, maxRetries: 3, jitter: 'none' }), ['≥ 1']);
    if (policy === REFUSED) return;
    const delays: number[] = [];
    policy.on('retry', ({ delay }) => delays.push(delay));
    expectValue(await settleWithTimers(policy.execute(flaky(3).fn)), 'ok');
    expect(plain(delays)).toEqual(plain([0, 1, 2].map((n) => Math.min(1_000, 10 * value ** n))));
    expect(vi.getTimerCount()).toBe(0);
  });

  const JITTERS: JitterMode[] = ['proportional', 'full', 'equal', 'decorrelated', 'none'];
  // In [0, 1) as documented, and out of it (a broken source): every delay must stay finite and within range.
  const RANDOMS = [0, 1e-300, 0.5, 1 - 1e-16, 1, -1e-9, NaN, Infinity];
  const SHAPES: [baseDelay: number, maxDelay: number][] = [
    [0, 0],
    [1e-9, 1e-9],
    [0, MAX_TIMER],
    [1, MAX_TIMER],
    [MAX_TIMER, MAX_TIMER],
  ];
  const JITTER_ROWS = JITTERS.flatMap((jitter) => RANDOMS.map((random) => ({ jitter, random, label: label(random) })));

  it.each(JITTER_ROWS)("jitter '$jitter' with random() = $label: every delay finite and within range, the call answered", async ({ jitter, random }) => {
    for (const [baseDelay, maxDelay] of SHAPES) {
      for (const exponentialBase of [1, 2, Number.MAX_VALUE]) {
        const policy = retryWithBackoff({ jitter, random: () => random, baseDelay, maxDelay, exponentialBase });
        let previous = baseDelay;
        for (const n of [1, 2, 3, 64, 1_025, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
          const delay = policy.delay(n, previous);
          const low = jitter === 'decorrelated' ? baseDelay : 0;
          if (!(Number.isFinite(delay) && delay >= low && delay <= maxDelay)) {
            expect.fail(`delay(${n}) = ${delay} with baseDelay ${baseDelay}, maxDelay ${maxDelay}, exponentialBase ${label(exponentialBase)}: outside [${low}, ${maxDelay}]`);
          }
          previous = delay;
        }
      }
    }
    const policy = retryWithBackoff({ jitter, random: () => random, baseDelay: MAX_TIMER, maxDelay: MAX_TIMER, exponentialBase: Number.MAX_VALUE, maxRetries: 2 });
    expectValue(await settleWithTimers(policy.execute(flaky(2).fn)), 'ok');
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Bulkhead
// ---------------------------------------------------------------------------------------------

describe('Bulkhead', () => {
  const bulkheadWith = (options: Record<string, unknown>) => new Bulkhead(loose<BulkheadOptions>(options));

  /** Starts a call that holds its slot until `release()`, answering `value`. */
  function holding(bulkhead: Bulkhead, value: unknown) {
    const gate = deferred();
    const result = outcomeOf(
      bulkhead.execute(async () => {
        await gate.promise;
        return value;
      }),
    );
    return { result, release: () => gate.resolve() };
  }

  it.each(rows(EDGE))('maxConcurrent = $label: that many run at once, the others refused as full', async ({ value }) => {
    const bulkhead = build('maxConcurrent', value, () => bulkheadWith({ maxConcurrent: value }));
    if (bulkhead === REFUSED) return;
    const calls = [0, 1, 2].map((at) => holding(bulkhead, at));
    await vi.advanceTimersByTimeAsync(0);
    const running = Math.min(value, 3);
    expect(bulkhead.active).toBe(running);
    for (const call of calls) call.release();
    const outcomes = await Promise.all(calls.map((call) => call.result));
    outcomes.forEach((outcome, at) => (at < running ? expectValue(outcome, at) : expect(expectRefusal(outcome, BulkheadRejectedError).reason).toBe('full')));
    expect(bulkhead.active).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('maxQueue = $label: that many wait (first in, first out), the others refused as full', async ({ value }) => {
    const bulkhead = build('maxQueue', value, () => bulkheadWith({ maxConcurrent: 1, maxQueue: value }));
    if (bulkhead === REFUSED) return;
    const first = holding(bulkhead, 'first');
    const waiting = [0, 1, 2].map((at) => holding(bulkhead, at));
    await vi.advanceTimersByTimeAsync(0);
    const queued = Math.min(value, 3) + 0; // -0 queues none, like 0
    expect(bulkhead.queued).toBe(queued);
    first.release();
    expectValue(await first.result, 'first');
    for (const call of waiting) call.release();
    const outcomes = await Promise.all(waiting.map((call) => call.result));
    outcomes.forEach((outcome, at) => (at < queued ? expectValue(outcome, at) : expect(expectRefusal(outcome, BulkheadRejectedError).reason).toBe('full')));
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('queueTimeout = $label: a wait that long is refused, a slot granted earlier clears its timer', async ({ value }) => {
    const bulkhead = build('queueTimeout', value, () => bulkheadWith({ maxConcurrent: 1, maxQueue: 1, queueTimeout: value }), [String(MAX_TIMER)]);
    if (bulkhead === REFUSED) return;
    const holder = holding(bulkhead, 'holder');
    const waiter = holding(bulkhead, 'waiter');
    waiter.release();
    if (value >= 2) {
      await vi.advanceTimersByTimeAsync(value - 1);
      expect(bulkhead.queued, 'still waiting before queueTimeout').toBe(1);
    }
    if (value === Infinity) {
      await vi.advanceTimersByTimeAsync(2 ** 32);
      expect(bulkhead.queued).toBe(1);
      holder.release();
      expectValue(await waiter.result, 'waiter');
    } else {
      await vi.advanceTimersByTimeAsync(past(value));
      expect(expectRefusal(await waiter.result, BulkheadRejectedError).reason).toBe('queue-timeout');
      const late = holding(bulkhead, 'granted');
      late.release();
      holder.release();
      expectValue(await late.result, 'granted');
    }
    expectValue(await holder.result, 'holder');
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// withTimeout
// ---------------------------------------------------------------------------------------------

describe('withTimeout', () => {
  it.each(rows(EDGE))('ms = $label: an answer ready at once wins, a call past it is a TimeoutError that aborts its signal', async ({ value }) => {
    const policy = build('ms', value, () => withTimeout(value), [String(MAX_TIMER)]);
    if (policy === REFUSED) return;
    expectValue(await outcomeOf(policy.execute(() => 'cached')), 'cached');
    if (value >= 2) expectValue(await callTaking((fn) => policy.execute(fn), value - 1, { value: 'in time' }), 'in time');
    if (value === Infinity) {
      expectValue(await callTaking((fn) => policy.execute(fn), 2 ** 32, { value: 'no deadline' }), 'no deadline');
    } else {
      const gate = deferred();
      let signal: AbortSignal | undefined;
      const late = outcomeOf(
        policy.execute(async (ctx) => {
          signal = ctx.signal;
          await gate.promise;
          return 'too late';
        }),
      );
      await vi.advanceTimersByTimeAsync(past(value));
      const error = expectRefusal(await late, TimeoutError);
      expect(error.timeout === value, `error.timeout ${error.timeout} is the deadline ${label(value)}`).toBe(true);
      expect(signal?.aborted).toBe(true);
      expect(signal?.reason).toBe(error);
      gate.resolve();
    }
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// RateLimiter and RateLimiterGroup
// ---------------------------------------------------------------------------------------------

const limiterWith = (options: Record<string, unknown>) => new RateLimiter(loose<RateLimiterOptions>(options));

describe.each<RateLimitAlgorithm>(['token-bucket', 'sliding-window'])('RateLimiter (%s)', (algorithm) => {
  /** A call through `limiter` that starts now, watched. */
  const start = (limiter: RateLimiter, value: unknown) => track(limiter.execute(() => value));

  it.each(rows([...EDGE, 100_000, 100_001]))('rate = $label: that many calls at once, the next refused until its permit is due', async ({ value }) => {
    const limiter = build('rate', value, () => limiterWith({ rate: value, algorithm }), ['100000']);
    if (limiter === REFUSED) return;
    const atOnce = Math.min(value, 3);
    for (let at = 0; at < atOnce; at++) expectValue(await outcomeOf(limiter.execute(() => at)), at);
    if (value <= 3) {
      const refusal = expectRefusal(await outcomeOf(limiter.execute(() => 'too soon')), RateLimitedError);
      expect(refusal.reason).toBe('limit');
      // A full token bucket (burst = rate) refills a permit every interval / rate; a window frees one when its first permit is an interval old.
      expect(refusal.retryAfter).toBeCloseTo(algorithm === 'token-bucket' ? 1_000 / value : 1_000, 6);
      await vi.advanceTimersByTimeAsync(past(refusal.retryAfter));
      expectValue(await outcomeOf(limiter.execute(() => 'due')), 'due');
    } else {
      expect(limiter.available, 'permits left after 3 of them').toBe(value - 3);
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('interval = $label: one permit per interval (rate 1), the next refused with retryAfter the interval, granted once it passed', async ({ value }) => {
    const limiter = build('interval', value, () => limiterWith({ rate: 1, interval: value, algorithm }));
    if (limiter === REFUSED) return;
    expectValue(await outcomeOf(limiter.execute(() => 'first')), 'first');
    const second = await outcomeOf(limiter.execute(() => 'second'));
    if (value <= 1e-6) {
      // Documented: a permit due within 1e-6 ms counts as due now (float error, not a wait).
      expectValue(second, 'second');
    } else {
      const refusal = expectRefusal(second, RateLimitedError);
      expect(refusal.retryAfter).toBe(value);
      if (value <= 2 ** 32) {
        await vi.advanceTimersByTimeAsync(past(value));
        expectValue(await outcomeOf(limiter.execute(() => 'next interval')), 'next interval');
      }
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it('interval = 2**32 with maxWait Infinity: the waiting call gets its permit after 2**32 ms, waited in timers a timer can hold', async () => {
    const limiter = new RateLimiter({ rate: 1, interval: 2 ** 32, algorithm, maxWait: Infinity });
    expectValue(await outcomeOf(limiter.execute(() => 'first')), 'first');
    const waiting = start(limiter, 'waited');
    await vi.advanceTimersByTimeAsync(2 ** 32 - 1);
    expect(waiting.settled, 'no permit before the interval passed').toBe(false);
    expect(vi.getTimerCount(), 'one timer while a call waits').toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.value).toBe('waited');
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('burst = $label: that many calls at once, then one per interval / rate (rate 1)', async ({ value }) => {
    const limiter = build('burst', value, () => limiterWith({ rate: 1, burst: value, algorithm }), ['token-bucket']);
    if (limiter === REFUSED) return;
    expect(algorithm, 'a sliding window refuses any burst').toBe('token-bucket');
    const atOnce = Math.min(value, 3);
    for (let at = 0; at < atOnce; at++) expectValue(await outcomeOf(limiter.execute(() => at)), at);
    if (value <= 3) {
      expect(expectRefusal(await outcomeOf(limiter.execute(() => 'too soon')), RateLimitedError).retryAfter).toBe(1_000);
      await vi.advanceTimersByTimeAsync(1_000);
      expectValue(await outcomeOf(limiter.execute(() => 'refilled')), 'refilled');
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('maxWait = $label: a permit 1 000 ms away is waited for within it (one timer), refused at once beyond', async ({ value }) => {
    const limiter = build('maxWait', value, () => limiterWith({ rate: 1, algorithm, maxWait: value }));
    if (limiter === REFUSED) return;
    expectValue(await outcomeOf(limiter.execute(() => 'first')), 'first');
    const second = start(limiter, 'second');
    await vi.advanceTimersByTimeAsync(0);
    if (value < 1_000) {
      expect(second.rejected, 'refused at once').toBe(true);
      const refusal = expectRefusal({ ok: false, error: second.error }, RateLimitedError);
      expect([refusal.reason, refusal.retryAfter]).toEqual(['limit', 1_000]);
      expect(vi.getTimerCount()).toBe(0);
    } else {
      expect(limiter.queued).toBe(1);
      expect(vi.getTimerCount(), 'one timer while a call waits').toBe(1);
      await vi.advanceTimersByTimeAsync(999);
      expect(second.settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(second.value).toBe('second');
    }
    expect(limiter.queued).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('maxQueue = $label (maxWait 10 000): that many wait, first in first out, the others refused as queue-full', async ({ value }) => {
    const limiter = build('maxQueue', value, () => limiterWith({ rate: 1, algorithm, maxWait: 10_000, maxQueue: value }));
    if (limiter === REFUSED) return;
    expectValue(await outcomeOf(limiter.execute(() => 'first')), 'first');
    const waiting = [0, 1, 2].map((at) => start(limiter, at));
    await vi.advanceTimersByTimeAsync(0);
    const queued = Math.min(value, 3) + 0;
    expect(limiter.queued).toBe(queued);
    waiting.slice(queued).forEach((call) => expect(expectRefusal({ ok: false, error: call.error }, RateLimitedError).reason).toBe('queue-full'));
    const granted: number[] = [];
    for (let second = 1; second <= 3; second++) {
      await vi.advanceTimersByTimeAsync(1_000);
      waiting.slice(0, queued).forEach((call, at) => call.settled && !granted.includes(at) && granted.push(at));
    }
    expect(granted, 'one permit a second, in order').toEqual([0, 1, 2].slice(0, queued));
    waiting.slice(0, queued).forEach((call, at) => expect(call.value).toBe(at));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('maxQueue = 1 with maxWait 0 is refused: no call ever waits then', () => {
    const made = build('maxQueue', 1, () => limiterWith({ rate: 1, algorithm, maxQueue: 1 }), ['maxWait']);
    expect(made).toBe(REFUSED);
  });
});

describe('RateLimiterGroup', () => {
  it.each(rows(EDGE))('maxKeys = $label: limiters not at rest are kept (no limit loosened), those at rest forgotten beyond it', async ({ value }) => {
    const group = build('maxKeys', value, () => new RateLimiterGroup({ rate: 1 }, loose<RateLimiterGroupOptions>({ maxKeys: value })));
    if (group === REFUSED) return;
    const evicted: string[] = [];
    group.on('evicted', ({ key }) => evicted.push(key));
    for (const key of ['a', 'b', 'c']) expectValue(await outcomeOf(group.execute(key, () => `value of ${key}`)), `value of ${key}`);
    expect(group.size, 'every limiter holds a permit given: none at rest').toBe(3);
    expectRefusal(await outcomeOf(group.execute('a', () => 'too soon')), RateLimitedError);
    await vi.advanceTimersByTimeAsync(1_000);
    expectValue(await outcomeOf(group.execute('d', () => 'value of d')), 'value of d');
    expect(group.size).toBe(Math.min(value, 4));
    expect(evicted).toHaveLength(4 - Math.min(value, 4));
    expectValue(await outcomeOf(group.execute('a', () => 'a again')), 'a again');
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// hedge
// ---------------------------------------------------------------------------------------------

describe('hedge', () => {
  const hedgeWith = (options: Record<string, unknown>) => hedge(loose<HedgeOptions>(options));

  it.each(rows(EDGE))('delay = $label: a hedge starts that long after a first attempt that hangs, answers, and the first is aborted as lost', async ({ value }) => {
    const policy = build('delay', value, () => hedgeWith({ delay: value, maxHedgedAttempts: 1 }), [String(MAX_TIMER)]);
    if (policy === REFUSED) return;
    const first = deferred<string>();
    const signals: AbortSignal[] = [];
    const call = track(
      policy.execute(({ signal }) => {
        signals.push(signal);
        return signals.length === 1 ? first.promise : 'hedge answered';
      }),
    );
    await vi.advanceTimersByTimeAsync(0);
    if (value >= 2) {
      await vi.advanceTimersByTimeAsync(value - 1);
      expect(signals, 'no hedge before the delay').toHaveLength(1);
    }
    if (value === Infinity) {
      await vi.advanceTimersByTimeAsync(2 ** 32);
      expect(signals, 'no hedge but on a failure').toHaveLength(1);
      first.resolve('first answered');
      await vi.advanceTimersByTimeAsync(0);
      expect(call.value).toBe('first answered');
    } else {
      await vi.advanceTimersByTimeAsync(past(value));
      expect(signals).toHaveLength(2);
      expect(call.value).toBe('hedge answered');
      expect(signals[0]?.aborted).toBe(true);
      expect(signals[0]?.reason).toBeInstanceOf(HedgeLostError);
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows([...EDGE, 10, 11]))('maxHedgedAttempts = $label: that many hedges start (delay 10), the last answers, the others are aborted as lost', async ({ value }) => {
    const policy = build('maxHedgedAttempts', value, () => hedgeWith({ delay: 10, maxHedgedAttempts: value }), ['10']);
    if (policy === REFUSED) return;
    const gates = Array.from({ length: 12 }, () => deferred<string>());
    const signals: AbortSignal[] = [];
    const call = track(
      policy.execute(({ signal }) => {
        signals.push(signal);
        return (gates[signals.length - 1] as (typeof gates)[number]).promise;
      }),
    );
    for (let step = 0; step < 12; step++) await vi.advanceTimersByTimeAsync(10);
    const attempts = value + 1;
    expect(signals).toHaveLength(attempts);
    expect(call.settled).toBe(false);
    gates[attempts - 1]?.resolve('last answered');
    await vi.advanceTimersByTimeAsync(0);
    expect(call.value).toBe('last answered');
    signals.slice(0, -1).forEach((signal) => expect(signal.reason).toBeInstanceOf(HedgeLostError));
    expect(signals[attempts - 1]?.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// RetryBudget
// ---------------------------------------------------------------------------------------------

describe('RetryBudget', () => {
  const budgetWith = (options: Record<string, unknown>) => new RetryBudget(loose<RetryBudgetOptions>(options));

  /** Calls that fail once with their own error, through a retry of one retry with `budget`: true for each call that was retried (and answered). */
  async function callsFailingOnce(budget: RetryBudget, count: number): Promise<boolean[]> {
    const policy = retryWithBackoff({ maxRetries: 1, baseDelay: 0, budget });
    const retried: boolean[] = [];
    for (let call = 0; call < count; call++) {
      const error = new Error(`call ${call} failed`);
      let attempts = 0;
      const outcome = await settleWithTimers(policy.execute(() => (++attempts === 1 ? Promise.reject(error) : `call ${call}`)));
      if (attempts === 2) expectValue(outcome, `call ${call}`);
      else expectOwnError(outcome, error);
      retried.push(attempts === 2);
    }
    return retried;
  }

  it.each(rows([...EDGE, 1_000, 1_000.5]))('ratio = $label (minPerSecond 0): of 10 calls failing once, ratio × 10 are retried', async ({ value }) => {
    const budget = build('ratio', value, () => budgetWith({ ratio: value, minPerSecond: 0 }), ['1000']);
    if (budget === REFUSED) return;
    const retried = await callsFailingOnce(budget, 10);
    expect(retried.filter(Boolean)).toHaveLength(Math.floor(Math.min(value, 1) * 10 + 1e-9));
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('minPerSecond = $label (ratio 0, window 1 000): that many retries a second whatever the traffic', async ({ value }) => {
    const budget = build('minPerSecond', value, () => budgetWith({ ratio: 0, minPerSecond: value, window: 1_000 }));
    if (budget === REFUSED) return;
    const allowed = Math.min(Math.floor(value + 1e-9), Number.MAX_SAFE_INTEGER);
    expect(budget.available).toBe(allowed);
    expect((await callsFailingOnce(budget, 5)).filter(Boolean)).toHaveLength(Math.min(allowed, 5));
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await callsFailingOnce(budget, 1))[0], 'the next window allows its own').toBe(allowed >= 1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('window = $label (a reserve of 1 retry, ratio 0): the retry taken counts for that long, then another is allowed', async ({ value }) => {
    // minPerSecond × window / 1000 = 1; a window refused is given a valid minPerSecond, so the refusal names the window.
    const minPerSecond = value > 0 && Number.isFinite(value) ? 1_000 / value : 10;
    const budget = build('window', value, () => budgetWith({ ratio: 0, minPerSecond, window: value }), [String(MAX_TIMER)]);
    if (budget === REFUSED) return;
    expect(await callsFailingOnce(budget, 2), 'the reserve allows one retry').toEqual([true, false]);
    await vi.advanceTimersByTimeAsync(past(value));
    expect(await callsFailingOnce(budget, 1), 'the window moved on').toEqual([true]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// bulwark/chaos
// ---------------------------------------------------------------------------------------------

describe('bulwark/chaos', () => {
  /** What `random()` draws, call after call. */
  const DRAWS = [0, 1e-300, 0.3, 0.5, 0.9999];
  const injectedError = new Error('injected');

  const CHAOS = [
    { kind: 'chaosFault', make: (options: Record<string, unknown>) => chaosFault(loose<ChaosFaultOptions>({ ...options, fault: injectedError })) },
    { kind: 'chaosLatency', make: (options: Record<string, unknown>) => chaosLatency(loose<ChaosLatencyOptions>({ ...options, latency: 50 })) },
    { kind: 'chaosOutcome', make: (options: Record<string, unknown>) => chaosOutcome(loose<ChaosOutcomeOptions<string>>({ ...options, outcome: 'injected outcome' })) },
  ] as const;

  describe.each(CHAOS)('$kind', ({ kind, make }) => {
    it.each(rows(RATES))('rate = $label: a call is injected into when random() draws below it (0 and 1 draw nothing)', async ({ value }) => {
      let draws = 0;
      const random = () => DRAWS[draws++ % DRAWS.length] as number;
      const policy = build('rate', value, () => make({ rate: value, random }), ['0 to 1']);
      if (policy === REFUSED) return;
      for (const [call, drawn] of DRAWS.entries()) {
        const injected = value === 1 || (value !== 0 && drawn < value);
        const answer = track(policy.execute(() => `call ${call}`));
        await vi.advanceTimersByTimeAsync(0);
        if (kind === 'chaosLatency' && injected) {
          await vi.advanceTimersByTimeAsync(49);
          expect(answer.settled, 'still waiting its latency').toBe(false);
          await vi.advanceTimersByTimeAsync(1);
        }
        const outcome: Outcome = answer.rejected ? { ok: false, error: answer.error } : { ok: true, value: answer.value };
        if (!injected || kind === 'chaosLatency') expectValue(outcome, `call ${call}`);
        else if (kind === 'chaosFault') expectOwnError(outcome, injectedError);
        else expectValue(outcome, 'injected outcome');
      }
      expect(draws, 'one draw per call, none for a rate of 0 or 1').toBe(value === 0 || value === 1 ? 0 : DRAWS.length);
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  it.each(rows(EDGE))('chaosLatency latency = $label: an injected call waits that long, then runs; a wait past reach ends on its caller abort', async ({ value }) => {
    const policy = build('latency', value, () => chaosLatency(loose<ChaosLatencyOptions>({ rate: 1, latency: value })));
    if (policy === REFUSED) return;
    let ran = 0;
    const controller = new AbortController();
    const call = track(
      policy.execute(
        () => {
          ran++;
          return 'ran';
        },
        { signal: controller.signal },
      ),
    );
    await vi.advanceTimersByTimeAsync(0);
    if (value === 0) {
      expect(call.value, 'no wait at all').toBe('ran');
    } else if (value <= 2 ** 32) {
      if (value >= 2) {
        await vi.advanceTimersByTimeAsync(value - 1);
        expect([call.settled, ran, policy.delayed], 'waiting before its latency passed').toEqual([false, 0, 1]);
      }
      await vi.advanceTimersByTimeAsync(past(value));
      expect(call.value).toBe('ran');
    } else {
      await vi.advanceTimersByTimeAsync(2 ** 32);
      expect([call.settled, ran, policy.delayed], 'still waiting, in timers a timer can hold').toEqual([false, 0, 1]);
      expect(vi.getTimerCount()).toBe(1);
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await vi.advanceTimersByTimeAsync(0);
      expect(call.error).toBe(reason);
      expect(ran).toBe(0);
    }
    expect(policy.delayed).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// MemoryCache and withCacheFallback
// ---------------------------------------------------------------------------------------------

describe('MemoryCache', () => {
  it.each(rows(EDGE))('maxEntries = $label: keeps that many, least recently used out first', ({ value }) => {
    const cache = build('maxEntries', value, () => new MemoryCache<string>(loose<MemoryCacheOptions>({ maxEntries: value })));
    if (cache === REFUSED) return;
    for (const key of ['a', 'b', 'c']) cache.set(key, `value of ${key}`);
    expect(cache.size).toBe(Math.min(value, 3));
    expect(cache.get('c')).toBe('value of c');
    expect(cache.get('a')).toBe(value >= 3 ? 'value of a' : undefined);
    expect(vi.getTimerCount()).toBe(0);
  });

  /**
   * With an entry for '7' stored at t0 (`storeThroughCall`: by a successful call through
   * withCacheFallback, else already stored), a failing call answers with the stored value until
   * `ttl` passed and with the function's own error after.
   */
  async function expectServedFor(cache: MemoryCache<string>, ttl: number, storeThroughCall: boolean): Promise<void> {
    const error = new Error('service down');
    let down = !storeThroughCall;
    const fetchProfile = withCacheFallback(async (id: string) => (down ? Promise.reject(error) : `profile ${id}`), { cache, key: (id: string) => id });
    if (storeThroughCall) {
      expectValue(await outcomeOf(fetchProfile('7')), 'profile 7');
      down = true;
    }
    // Past 2³² ms (136 years) only "still served" is checked: the fake clock's epoch-ms readings
    // lose the millisecond there, so the last 1 ms before expiry cannot be told apart.
    const reachable = ttl <= 2 ** 32;
    if (ttl >= 1) {
      await vi.advanceTimersByTimeAsync(reachable ? ttl - 1 : 2 ** 32);
      expectValue(await outcomeOf(fetchProfile('7')), 'profile 7');
    }
    if (reachable) {
      await vi.advanceTimersByTimeAsync(ttl >= 1 ? 1 : past(ttl));
      expectOwnError(await outcomeOf(fetchProfile('7')), error);
    }
    expect(vi.getTimerCount()).toBe(0);
  }

  it.each(rows(EDGE))('ttl = $label: a value stored by a success serves failures for that long', async ({ value }) => {
    const cache = build('ttl', value, () => new MemoryCache<string>(loose<MemoryCacheOptions>({ ttl: value })), [String(MAX_TIMER)]);
    if (cache === REFUSED) return;
    await expectServedFor(cache, value, true);
  });

  it.each(rows(EDGE))('set(key, value, ttl = $label): the entry serves failures for that long', async ({ value }) => {
    const cache = new MemoryCache<string>();
    const stored = build('ttl', value, () => cache.set('7', 'profile 7', value), [String(MAX_TIMER)]);
    if (stored === REFUSED) return;
    await expectServedFor(cache, value, false);
  });

  // The cache arms no timer ("with no timers", docs/fallback.md): the 2³¹−1 ms limit of a timer is not its limit.
  describe('ttl past the timer limit, which a cache that arms no timer does not have', () => {
    const LONG = rows([2 ** 31, THIRTY_DAYS, Number.MAX_SAFE_INTEGER]);

    it.each(LONG)('new MemoryCache({ ttl: $label }) is accepted and keeps an entry that long', async ({ value }) => {
      const cache = new MemoryCache<string>({ ttl: value });
      cache.set('k', 'v');
      if (value <= 2 ** 32) {
        await vi.advanceTimersByTimeAsync(value - 1);
        expect(cache.get('k')).toBe('v');
        await vi.advanceTimersByTimeAsync(1);
        expect(cache.get('k')).toBeUndefined();
      } else {
        await vi.advanceTimersByTimeAsync(2 ** 32);
        expect(cache.get('k')).toBe('v');
      }
      expect(vi.getTimerCount()).toBe(0);
    });

    it.each(LONG)('cache.set(key, value, $label) is accepted and keeps the entry that long', async ({ value }) => {
      const cache = new MemoryCache<string>();
      cache.set('k', 'v', value);
      await vi.advanceTimersByTimeAsync(Math.min(value - 1, 2 ** 32));
      expect(cache.get('k')).toBe('v');
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Results as failures: the `…Result` predicates and retryWithBackoff's `delay` hook
// ---------------------------------------------------------------------------------------------

describe('results as failures', () => {
  /** A failing value, as an HTTP client returns a 503: a new object each time. */
  const failingReply = () => ({ status: 503 });
  const isFailingReply = (value: unknown): boolean => (value as { status?: unknown } | null)?.status === 503;

  const PREDICATES: { owner: string; option: string; make: (value: unknown) => unknown }[] = [
    { owner: 'CircuitBreaker', option: 'isFailureResult', make: (v) => breakerWith({ isFailureResult: v }) },
    { owner: 'CircuitBreakerGroup', option: 'isFailureResult', make: (v) => new CircuitBreakerGroup(loose<CircuitBreakerOptions>({ isFailureResult: v })) },
    { owner: 'retryWithBackoff', option: 'retryOnResult', make: (v) => retryWithBackoff(loose<RetryOptions>({ retryOnResult: v })) },
    { owner: 'retryWithBackoff', option: 'delay', make: (v) => retryWithBackoff(loose<RetryOptions>({ delay: v })) },
    { owner: 'withFallback', option: 'handlesResult', make: (v) => withFallback(0, loose({ handlesResult: v })) },
    { owner: 'hedge', option: 'hedgeOnResult', make: (v) => hedge(loose<HedgeOptions>({ hedgeOnResult: v })) },
  ];
  /** Values that are not functions, with how bulwark's messages name them. */
  const NOT_FUNCTIONS: { label: string; value: unknown; named: string }[] = [
    { label: 'true', value: true, named: 'true' },
    { label: '0', value: 0, named: '0' },
    { label: '-1', value: -1, named: '-1' },
    { label: 'NaN', value: NaN, named: 'NaN' },
    { label: '"isFailure"', value: 'isFailure', named: '"isFailure"' },
    { label: 'null', value: null, named: 'null' },
    { label: 'an object', value: { test: () => true }, named: 'an object' },
    { label: 'an array', value: [() => true], named: 'an array' },
    { label: 'a RegExp', value: /503/, named: 'an object' },
    { label: 'a promise of a function', value: Promise.resolve(() => true), named: 'an object' },
    { label: '5n', value: 5n, named: '5n' },
  ];
  const NOT_FUNCTION_ROWS = PREDICATES.flatMap((entry) => NOT_FUNCTIONS.map((junk) => ({ ...entry, ...junk })));

  it.each(NOT_FUNCTION_ROWS)('$owner $option = $label is refused with a TypeError naming the option and the value', ({ owner, option, value, named, make }) => {
    let thrown: unknown;
    try {
      make(value);
    } catch (error) {
      thrown = error;
    }
    if (thrown === undefined) expect.fail(`${owner} ${option} = ${named} was accepted`);
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as TypeError).message).toBe(`${owner} ${option} must be a function, got ${named}`);
  });

  it.each(PREDICATES)('$owner $option = undefined is the default: a failing value is the answer, the same object', async ({ make }) => {
    const made = make(undefined);
    const policy = (made instanceof CircuitBreakerGroup ? made.get('key') : made) as { execute: (fn: () => unknown) => Promise<unknown> };
    const reply = failingReply();
    let runs = 0;
    const outcome = await settleWithTimers(
      policy.execute(() => {
        runs++;
        return reply;
      }),
    );
    expectValue(outcome, reply);
    expect(runs).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  const thrown = new Error('predicate broke');
  const ANSWERS: { label: string; predicate: () => unknown; expected: (error: unknown) => void; reported: boolean }[] = [
    {
      label: 'throws',
      predicate: () => {
        throw thrown;
      },
      expected: (error) => expect(error).toBe(thrown),
      reported: false,
    },
    {
      label: 'returns a promise of true',
      predicate: () => Promise.resolve(true),
      expected: (error) => expect((error as TypeError).message).toMatch(/ must return its answer synchronously, got a promise/),
      reported: false,
    },
    {
      label: 'returns a rejected promise',
      predicate: () => Promise.reject(new Error('async predicate broke')),
      expected: (error) => expect(error).toBeInstanceOf(TypeError),
      reported: true,
    },
  ];
  const RESULT_PREDICATES: { option: string; make: (predicate: () => unknown) => { execute: (fn: () => unknown) => Promise<unknown> } }[] = [
    { option: 'CircuitBreaker isFailureResult', make: (p) => breakerWith({ isFailureResult: p }) },
    { option: 'retryWithBackoff retryOnResult', make: (p) => retryWithBackoff({ retryOnResult: loose(p), baseDelay: 0 }) },
    { option: 'withFallback handlesResult', make: (p) => withFallback('fallback', { handlesResult: loose(p) }) },
    { option: 'hedge hedgeOnResult', make: (p) => hedge({ hedgeOnResult: loose(p), delay: 10 }) },
  ];
  const BROKEN_ROWS = RESULT_PREDICATES.flatMap((entry) => ANSWERS.map((answer) => ({ ...entry, ...answer })));

  it.each(BROKEN_ROWS)('$option that $label: the call rejects with that (a promise: a TypeError naming the option), the function runs once', async ({ option, make, predicate, expected, reported: reports }) => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      let runs = 0;
      const outcome = await settleWithTimers(
        make(predicate).execute(() => {
          runs++;
          return failingReply();
        }),
      );
      if (outcome.ok) expect.fail(`the call answered ${JSON.stringify(outcome.value)}`);
      expected(outcome.error);
      if (outcome.error instanceof TypeError) expect(outcome.error.message).toContain(option);
      expect(runs).toBe(1);
      await vi.advanceTimersByTimeAsync(0);
      expect(reported).toHaveBeenCalledTimes(reports ? 1 : 0);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      reported.mockRestore();
    }
  });

  describe('retryWithBackoff delay hook answers', () => {
    /** A retry of one retry (jitter 'none', baseDelay = maxDelay = 1 000) whose `delay` hook answers `answer`. */
    function retryAnswering(answer: unknown, budget?: RetryBudget) {
      const asked: unknown[][] = [];
      const retries: number[] = [];
      const policy = retryWithBackoff({
        maxRetries: 1,
        baseDelay: 1_000,
        maxDelay: 1_000,
        jitter: 'none',
        retryOnResult: isFailingReply,
        budget,
        delay: (...args) => {
          asked.push(args);
          return answer as number | undefined;
        },
      });
      policy.on('retry', ({ delay }) => retries.push(delay));
      return { policy, asked, retries };
    }

    /** A function that fails its first run (a failing value, or its own error), then answers 'ok'. */
    function failingOnce(kind: 'a failing value' | 'an error') {
      const error = new Error('first run failed');
      const first = failingReply();
      let runs = 0;
      const fn = (): unknown => {
        runs++;
        if (runs > 1) return 'ok';
        if (kind === 'an error') throw error;
        return first;
      };
      const outcome = kind === 'an error' ? { ok: false, error } : { ok: true, value: first };
      return { fn, outcome, runs: () => runs };
    }

    const KINDS = ['a failing value', 'an error'] as const;
    const WAITED: (number | undefined)[] = [0, -0, 1e-9, 0.5, 1, 2, MAX_TIMER, 2 ** 31, 2 ** 32, 2 ** 32 + 5, undefined];
    const WAITED_ROWS = KINDS.flatMap((kind) => WAITED.map((answer) => ({ kind, answer, label: answer === undefined ? 'undefined' : answer === 2 ** 32 + 5 ? '2**32+5' : label(answer) })));

    it.each(WAITED_ROWS)('$label after $kind: the retry runs exactly that long after (undefined: the backoff, 1 000), uncapped by maxDelay, one timer at a time', async ({ kind, answer }) => {
      const { policy, asked, retries } = retryAnswering(answer);
      const { fn, outcome, runs } = failingOnce(kind);
      const call = track(policy.execute(fn));
      const wait = answer === undefined ? 1_000 : answer + 0;
      if (wait === 0) {
        await vi.advanceTimersByTimeAsync(0);
        expect(vi.getTimerCount(), 'a delay of 0 arms no timer').toBe(0);
      } else {
        await vi.advanceTimersByTimeAsync(0);
        expect(asked).toEqual([[1, outcome, 1_000]]);
        expect(plain(retries), 'the retry event carries the wait').toEqual([wait]);
        if (wait >= 2) {
          await vi.advanceTimersByTimeAsync(wait - 1);
          expect([runs(), call.settled], 'no retry before the wait is over').toEqual([1, false]);
          expect(vi.getTimerCount(), 'one timer at a time').toBe(1);
          await vi.advanceTimersByTimeAsync(1);
        } else {
          await vi.advanceTimersByTimeAsync(past(wait));
        }
      }
      expect(asked).toEqual([[1, outcome, 1_000]]);
      expect(plain(retries)).toEqual([wait]);
      expect(runs()).toBe(2);
      expect(call.value).toBe('ok');
      expect(vi.getTimerCount()).toBe(0);
    });

    const HUGE = [2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE];
    const HUGE_ROWS = KINDS.flatMap((kind) => HUGE.map((answer) => ({ kind, answer, label: answer === 2 ** 32 + 5 ? '2**32+5' : label(answer) })));

    it.each(HUGE_ROWS)('$label after $kind: waited in timers a timer can hold, until the caller aborts, which answers at once with its reason', async ({ kind, answer }) => {
      const { policy, retries } = retryAnswering(answer);
      const { fn, runs } = failingOnce(kind);
      const controller = new AbortController();
      const call = track(policy.execute(fn, { signal: controller.signal }));
      // Past the first timer (2**31 - 1 ms), within the wait.
      await vi.advanceTimersByTimeAsync(Math.min(answer - 1, 2 ** 32));
      expect(retries).toEqual([answer]);
      expect([runs(), call.settled], 'still waiting').toEqual([1, false]);
      expect(vi.getTimerCount(), 'one timer at a time').toBe(1);
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await vi.advanceTimersByTimeAsync(0);
      expect(call.error).toBe(reason);
      expect(runs()).toBe(1);
      expect(vi.getTimerCount()).toBe(0);
    });

    const thenable = { then: (onFulfilled?: (value: number) => void) => onFulfilled?.(5) };
    /** `reported`: a rejection of the answer is reported (never unhandled). */
    const BAD: { label: string; answer: () => unknown; named: string; reported?: boolean }[] = [
      { label: 'NaN', answer: () => NaN, named: 'NaN' },
      { label: '-1', answer: () => -1, named: '-1' },
      { label: '-1e-300', answer: () => -1e-300, named: '-1e-300' },
      { label: '-Infinity', answer: () => -Infinity, named: '-Infinity' },
      { label: 'Infinity', answer: () => Infinity, named: 'Infinity' },
      { label: '"5"', answer: () => '5', named: '"5"' },
      { label: 'null', answer: () => null, named: 'null' },
      { label: 'true', answer: () => true, named: 'true' },
      { label: '5n', answer: () => 5n, named: '5n' },
      { label: 'new Number(5)', answer: () => Object(5) as unknown, named: 'an object' },
      { label: 'a promise of 5', answer: () => Promise.resolve(5), named: 'a promise' },
      { label: 'a rejected promise', answer: () => Promise.reject(new Error('async hook broke')), named: 'a promise', reported: true },
      { label: 'a thenable', answer: () => thenable, named: 'a promise' },
    ];
    const BAD_ROWS = KINDS.flatMap((kind) => BAD.map((bad) => ({ kind, ...bad })));

    it.each(BAD_ROWS)('$label after $kind: the call fails with a TypeError, no retry runs, the budget gets its retry back', async ({ kind, answer, named, reported: reports }) => {
      const reported = vi.spyOn(console, 'error').mockImplementation(() => {});
      try {
        const budget = new RetryBudget({ ratio: 1, minPerSecond: 0 });
        const { policy, asked, retries } = retryAnswering(undefined, budget);
        const hooked = retryWithBackoff({ maxRetries: 1, baseDelay: 0, retryOnResult: isFailingReply, budget, delay: loose<RetryOptions['delay']>(answer) });
        const { fn, runs } = failingOnce(kind);
        const outcome = await settleWithTimers(hooked.execute(fn));
        if (outcome.ok) expect.fail(`the call answered ${JSON.stringify(outcome.value)}`);
        expect(outcome.error).toBeInstanceOf(TypeError);
        const message = (outcome.error as TypeError).message;
        if (named === 'a promise') expect(message).toBe('retryWithBackoff delay must return its answer synchronously, got a promise (an async function?)');
        else expect(message).toBe(`retryWithBackoff delay must return a finite duration ≥ 0 or undefined, got ${named}`);
        expect(runs(), 'no retry ran').toBe(1);
        expect(budget.available, 'the one call deposited one retry, given back').toBe(1);
        await vi.advanceTimersByTimeAsync(0);
        // A rejected promise is reported, never unhandled; nothing else is reported.
        expect(reported).toHaveBeenCalledTimes(reports === true ? 1 : 0);
        expect(vi.getTimerCount()).toBe(0);
        // The budget still serves the next call's retry.
        const { fn: next } = failingOnce(kind);
        expectValue(await settleWithTimers(policy.execute(next)), 'ok');
        expect(asked).toHaveLength(1);
        expect(retries).toEqual([1_000]);
      } finally {
        reported.mockRestore();
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Function options: what they throw is the call's answer, documented
// ---------------------------------------------------------------------------------------------

describe('predicates that throw', () => {
  const thrown = new Error('predicate broke');
  const broken = () => {
    throw thrown;
  };
  it.each([
    { option: 'CircuitBreaker isFailure', policy: () => breakerWith({ isFailure: broken }) },
    { option: 'retryWithBackoff retryOn', policy: () => retryWithBackoff({ retryOn: broken, baseDelay: 0 }) },
    { option: 'withFallback handles', policy: () => withFallback('fallback', { handles: broken }) },
  ])('$option that throws: the call rejects with what it threw', async ({ policy }) => {
    const outcome = await outcomeOf(policy().execute(() => Promise.reject(new Error('down'))));
    expectOwnError(outcome, thrown);
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// MetricsRegistry, bulwark/prometheus and bulwark/otel
// ---------------------------------------------------------------------------------------------

const ASCENDING_100K = Array.from({ length: 100_000 }, (_, at) => at * 0.25);
const BUCKET_ROWS: { label: string; value: unknown[]; mentions: string[] }[] = [
  { label: '[0]', value: [0], mentions: [] },
  { label: '[-0]', value: [-0], mentions: [] },
  { label: '[1e-300]', value: [1e-300], mentions: [] },
  { label: '[1e-9]', value: [1e-9], mentions: [] },
  { label: '[0.5]', value: [0.5], mentions: [] },
  { label: '[2**31-1]', value: [MAX_TIMER], mentions: [] },
  { label: '[MAX_SAFE_INTEGER]', value: [Number.MAX_SAFE_INTEGER], mentions: [] },
  { label: '[MAX_VALUE]', value: [Number.MAX_VALUE], mentions: [] },
  { label: '[0, 1e-300, 1, MAX_VALUE]', value: [0, 1e-300, 1, Number.MAX_VALUE], mentions: [] },
  { label: '100 000 ascending bounds', value: ASCENDING_100K, mentions: [] },
  { label: '[]', value: [], mentions: ['at least one'] },
  { label: '[Infinity]', value: [Infinity], mentions: ['Infinity'] },
  { label: '[NaN]', value: [NaN], mentions: ['NaN'] },
  { label: '[-1e-300]', value: [-1e-300], mentions: ['-1e-300'] },
  { label: '[1, 1]', value: [1, 1], mentions: ['ascending'] },
  { label: '[2, 1]', value: [2, 1], mentions: ['ascending'] },
];

describe('MetricsRegistry', () => {
  it.each(BUCKET_ROWS)('buckets = $label: a 5 ms call lands in the first bucket ≥ 5, estimates and the scrape stay sane', async ({ value, mentions }) => {
    collectGarbage();
    const before = arrayBuffersNow();
    const registry = build('buckets', 'unused', () => new MetricsRegistry(loose<MetricsRegistryOptions>({ buckets: value })), mentions);
    if (registry === REFUSED) return;
    const breaker = new CircuitBreaker({ name: 'payments' });
    registry.track(breaker);
    expectValue(await callTaking((fn) => breaker.execute(fn), 5, { value: 'ok' }), 'ok');
    const [entry] = registry.snapshot().policies;
    expectMemoryWithinLimit(before, `a registry of ${value.length} buckets`);
    expect(entry?.successes).toBe(1);
    expect(entry?.latency.count).toBe(1);
    expect(entry?.latency.sum).toBe(5);
    const bounds = value as number[];
    const home = bounds.findIndex((bound) => bound >= 5);
    const buckets = entry?.latency.buckets ?? [];
    expect(buckets).toHaveLength(bounds.length + 1);
    expect(buckets[home === -1 ? bounds.length : home]?.count).toBe(1);
    if (home > 0) expect(buckets[home - 1]?.count).toBe(0);
    for (const estimate of [entry?.latency.p50, entry?.latency.p90, entry?.latency.p99]) {
      expect(Number.isFinite(estimate) && (estimate as number) >= 0 && (estimate as number) <= Math.max(...bounds.slice(-1), 0)).toBe(true);
    }
    const scrape = renderPrometheus(registry);
    expect(scrape).toContain('bulwark_call_duration_seconds_bucket{policy="payments",kind="circuit-breaker",le="+Inf"} 1');
    for (const [, le] of scrape.matchAll(/le="([^"]*)"/g)) expect(le === '+Inf' || Number.isFinite(Number(le)), `le="${le}"`).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  // `now` is documented as "ms from any origin, never going back"; a broken one must not lose calls.
  it.each([
    { label: 'NaN', now: () => NaN },
    { label: 'Infinity', now: () => Infinity },
    { label: '-Infinity', now: () => -Infinity },
    { label: 'MAX_VALUE', now: () => Number.MAX_VALUE },
    { label: 'a string', now: () => 'soon' as unknown as number },
    { label: 'a clock that goes back', now: (() => { let t = 1_000; return () => (t -= 7); })() },
    { label: 'a throw', now: () => { throw new Error('clock broke'); } },
  ])('now() returning $label: the call answers its value and is counted as finished', async ({ now }) => {
    vi.stubGlobal('reportError', vi.fn());
    const registry = build('now', 'unused', () => new MetricsRegistry({ now }), ['number']);
    if (registry === REFUSED) return;
    const breaker = new CircuitBreaker({ name: 'payments' });
    registry.track(breaker);
    expectValue(await outcomeOf(breaker.execute(() => 'ok')), 'ok');
    const [entry] = registry.snapshot().policies;
    const inFlight = (entry?.calls ?? 0) - (entry?.successes ?? 0) - (entry?.failures ?? 0) - (entry?.rejections ?? 0);
    expect(inFlight, 'calls − successes − failures − rejections: the calls in flight').toBe(0);
    expect(entry?.latency.count).toBe(entry?.calls);
    expect(Number.isFinite(entry?.latency.sum) && (entry?.latency.sum as number) >= 0).toBe(true);
  });
});

describe('bulwark/otel durationBuckets', () => {
  class CollectingReader extends MetricReader {
    protected override onForceFlush(): Promise<void> {
      return Promise.resolve();
    }
    protected override onShutdown(): Promise<void> {
      return Promise.resolve();
    }
  }

  const SECOND_ROWS = BUCKET_ROWS.map((row) => (row.label === '[]' ? { ...row, mentions: [] } : row));

  it.each(SECOND_ROWS)('durationBuckets = $label: the histogram records the call', async ({ value, mentions }) => {
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    try {
      const registry = new MetricsRegistry();
      const meter = provider.getMeter('extreme') as unknown as OtelMeter;
      const stop = build('durationBuckets', 'unused', () => registerOpenTelemetryMetrics(registry, meter, loose<OpenTelemetryMetricsOptions>({ durationBuckets: value })), mentions);
      if (stop === REFUSED) return;
      const breaker = new CircuitBreaker({ name: 'payments' });
      registry.track(breaker);
      expectValue(await callTaking((fn) => breaker.execute(fn), 5, { value: 'ok' }), 'ok');
      const { resourceMetrics, errors } = await reader.collect();
      expect(errors).toEqual([]);
      const histogram = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((metric) => metric.descriptor.name === 'bulwark.call.duration');
      expect(histogram?.dataPointType).toBe(DataPointType.HISTOGRAM);
      const point = histogram?.dataPoints[0]?.value as HistogramValue | undefined;
      expect(point?.count).toBe(1);
      expect(point?.sum).toBeCloseTo(0.005, 9);
      expect(point?.buckets.boundaries).toEqual(value);
      stop();
    } finally {
      await provider.shutdown();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// logPolicyEvents
// ---------------------------------------------------------------------------------------------

describe('logPolicyEvents', () => {
  it.each(rows(EDGE))('summaryInterval = $label: repeats within it make one summary line; its timer lives only while a summary is pending', async ({ value }) => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, name: 'inventory' });
    const logger = silentLogger();
    const stop = build('summaryInterval', value, () => logPolicyEvents(bulkhead, logger, loose<LogPolicyEventsOptions>({ summaryInterval: value })), [String(MAX_TIMER)]);
    if (stop === REFUSED) return;
    const gate = deferred();
    const holder = outcomeOf(bulkhead.execute(() => gate.promise.then(() => 'holder')));
    for (let at = 0; at < 3; at++) expect(expectRefusal(await outcomeOf(bulkhead.execute(() => 'refused')), BulkheadRejectedError).reason).toBe('full');
    if (value === 0) {
      expect(logger.warn).toHaveBeenCalledTimes(3);
      expect(vi.getTimerCount()).toBe(0);
    } else {
      expect(logger.warn).toHaveBeenCalledTimes(1);
      expect(vi.getTimerCount(), 'the summary timer, documented').toBe(1);
      await vi.advanceTimersByTimeAsync(past(value));
      expect(logger.warn).toHaveBeenCalledTimes(2);
      expect(logger.warn.mock.calls[1]?.[0]).toMatchObject({ repeated: 2, event: 'rejected' });
      await vi.advanceTimersByTimeAsync(past(value));
      expect(vi.getTimerCount(), 'no summary pending, no timer').toBe(0);
    }
    stop();
    gate.resolve();
    expectValue(await holder, 'holder');
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// bulwark/health
// ---------------------------------------------------------------------------------------------

describe('HealthMonitor', () => {
  /** Runs a report with a check that passes and one that never settles; the report must come by `timeout`. */
  async function expectReportWithin(monitor: HealthMonitor, timeout: number): Promise<void> {
    let hungSignal: AbortSignal | undefined;
    monitor.addCheck('hung', ({ signal }) => {
      hungSignal = signal;
      return new Promise(() => {});
    });
    const report = track(monitor.check());
    if (timeout >= 2) {
      await vi.advanceTimersByTimeAsync(timeout - 1);
      expect(report.settled, 'no report before the timeout').toBe(false);
    }
    await vi.advanceTimersByTimeAsync(past(timeout));
    expect(report.settled, 'the report came at the timeout').toBe(true);
    expect(report.value?.checks['fast']?.status).toBe('pass');
    expect(report.value?.checks['hung']).toMatchObject({ status: 'fail', timedOut: true });
    expect(report.value?.status).toBe('unhealthy');
    expect(hungSignal?.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  }

  it.each(rows(EDGE))('timeout = $label: a hung check fails at the timeout, the report comes, its signal aborts', async ({ value }) => {
    const monitor = build('timeout', value, () => new HealthMonitor(loose<HealthMonitorOptions>({ timeout: value })), [String(MAX_TIMER)]);
    if (monitor === REFUSED) return;
    monitor.addCheck('fast', () => true);
    await expectReportWithin(monitor, value);
  });

  it.each(rows(EDGE))('addCheck timeout = $label (monitor timeout 2**31-1): the check fails at its own timeout', async ({ value }) => {
    const monitor = new HealthMonitor({ timeout: MAX_TIMER }).addCheck('fast', () => true);
    const added = build('timeout', value, () => monitor.addCheck('probe', () => true, loose<CheckOptions>({ timeout: value })), [String(MAX_TIMER)]);
    if (added === REFUSED) return;
    monitor.removeCheck('probe');
    // The same timeout on the check that hangs: the report must come when it ends.
    let hungSignal: AbortSignal | undefined;
    monitor.addCheck(
      'hung',
      ({ signal }) => {
        hungSignal = signal;
        return new Promise(() => {});
      },
      { timeout: value },
    );
    const report = track(monitor.check());
    await vi.advanceTimersByTimeAsync(past(value));
    expect(report.value?.checks['hung']).toMatchObject({ status: 'fail', timedOut: true });
    expect(report.value?.checks['fast']?.status).toBe('pass');
    expect(hungSignal?.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each(rows(EDGE))('cacheTtl = $label: a report is reused for that long, then the checks run again', async ({ value }) => {
    const monitor = build('cacheTtl', value, () => new HealthMonitor(loose<HealthMonitorOptions>({ cacheTtl: value })));
    if (monitor === REFUSED) return;
    let runs = 0;
    monitor.addCheck('counted', () => {
      runs++;
      return true;
    });
    expect((await monitor.check()).status).toBe('healthy');
    expect((await monitor.check()).status).toBe('healthy');
    expect(runs, 'the second report reused the first').toBe(value > 0 ? 1 : 2);
    if (value > 0 && value <= 2 ** 32) {
      await vi.advanceTimersByTimeAsync(past(value));
      await monitor.check();
      expect(runs, 'the checks ran again once cacheTtl passed').toBe(2);
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each([true, false, 1, 'true', null].map((value) => ({ label: label(value), value })))('addCheck critical = $label: a failing check makes the service unhealthy, or degraded', async ({ value }) => {
    const monitor = new HealthMonitor();
    const added = build('critical', value, () => monitor.addCheck('flaky', () => false, loose<CheckOptions>({ critical: value })));
    if (added === REFUSED) return;
    expect((await monitor.check()).status).toBe(value === true ? 'unhealthy' : 'degraded');
    expect(vi.getTimerCount()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Junk that is no valid value of any option: refused at build time, naming the option
// ---------------------------------------------------------------------------------------------

describe('values of the wrong kind are refused, naming the option and the value', () => {
  const otelMeterStub = (): OtelMeter => {
    const instrument = () => ({ addCallback: vi.fn(), removeCallback: vi.fn(), record: vi.fn() });
    return { createHistogram: instrument, createObservableCounter: instrument, createObservableUpDownCounter: instrument, createObservableGauge: instrument, addBatchObservableCallback: vi.fn(), removeBatchObservableCallback: vi.fn() };
  };
  const OPTIONS: { owner: string; option: string; make: (value: unknown) => unknown }[] = [
    { owner: 'CircuitBreaker', option: 'failureThreshold', make: (v) => breakerWith({ failureThreshold: v }) },
    { owner: 'CircuitBreaker', option: 'recoveryTimeout', make: (v) => breakerWith({ recoveryTimeout: v }) },
    { owner: 'CircuitBreaker', option: 'halfOpenMaxCalls', make: (v) => breakerWith({ halfOpenMaxCalls: v }) },
    { owner: 'CircuitBreaker', option: 'halfOpenSuccessThreshold', make: (v) => breakerWith({ halfOpenSuccessThreshold: v }) },
    { owner: 'CircuitBreaker', option: 'halfOpenMaxWait', make: (v) => breakerWith({ halfOpenMaxWait: v }) },
    { owner: 'CircuitBreaker', option: 'isFailure', make: (v) => breakerWith({ isFailure: v }) },
    { owner: 'CircuitBreaker', option: 'failureRate.threshold', make: (v) => breakerWith({ failureRate: { threshold: v } }) },
    { owner: 'CircuitBreaker', option: 'failureRate.minimumCalls', make: (v) => breakerWith({ failureRate: { threshold: 0.5, minimumCalls: v } }) },
    { owner: 'CircuitBreaker', option: 'failureRate.window.calls', make: (v) => breakerWith({ failureRate: { threshold: 0.5, window: { calls: v } } }) },
    { owner: 'CircuitBreaker', option: 'failureRate.window.duration', make: (v) => breakerWith({ failureRate: { threshold: 0.5, window: { duration: v } } }) },
    { owner: 'CircuitBreaker', option: 'failureRate.window.buckets', make: (v) => breakerWith({ failureRate: { threshold: 0.5, window: { duration: 60_000, buckets: v } } }) },
    { owner: 'CircuitBreaker', option: 'slowCall.duration', make: (v) => breakerWith({ slowCall: { duration: v, rateThreshold: 0.5 } }) },
    { owner: 'CircuitBreaker', option: 'slowCall.rateThreshold', make: (v) => breakerWith({ slowCall: { duration: 1_000, rateThreshold: v } }) },
    { owner: 'CircuitBreakerGroup', option: 'maxKeys', make: (v) => new CircuitBreakerGroup({}, loose<CircuitBreakerGroupOptions>({ maxKeys: v })) },
    { owner: 'retryWithBackoff', option: 'maxRetries', make: (v) => retryWithBackoff(loose<RetryOptions>({ maxRetries: v })) },
    { owner: 'retryWithBackoff', option: 'baseDelay', make: (v) => retryWithBackoff(loose<RetryOptions>({ baseDelay: v })) },
    { owner: 'retryWithBackoff', option: 'maxDelay', make: (v) => retryWithBackoff(loose<RetryOptions>({ maxDelay: v })) },
    { owner: 'retryWithBackoff', option: 'exponentialBase', make: (v) => retryWithBackoff(loose<RetryOptions>({ exponentialBase: v })) },
    { owner: 'retryWithBackoff', option: 'jitter', make: (v) => retryWithBackoff(loose<RetryOptions>({ jitter: v })) },
    { owner: 'retryWithBackoff', option: 'retryOn', make: (v) => retryWithBackoff(loose<RetryOptions>({ retryOn: v })) },
    { owner: 'retryWithBackoff', option: 'random', make: (v) => retryWithBackoff(loose<RetryOptions>({ random: v })) },
    { owner: 'Bulkhead', option: 'maxConcurrent', make: (v) => new Bulkhead(loose<BulkheadOptions>({ maxConcurrent: v })) },
    { owner: 'Bulkhead', option: 'maxQueue', make: (v) => new Bulkhead(loose<BulkheadOptions>({ maxConcurrent: 1, maxQueue: v })) },
    { owner: 'Bulkhead', option: 'queueTimeout', make: (v) => new Bulkhead(loose<BulkheadOptions>({ maxConcurrent: 1, queueTimeout: v })) },
    { owner: 'withTimeout', option: 'ms', make: (v) => withTimeout(loose<number>(v)) },
    { owner: 'RateLimiter', option: 'rate', make: (v) => limiterWith({ rate: v }) },
    { owner: 'RateLimiter (sliding-window)', option: 'rate', make: (v) => limiterWith({ rate: v, algorithm: 'sliding-window' }) },
    { owner: 'RateLimiter', option: 'interval', make: (v) => limiterWith({ rate: 1, interval: v }) },
    { owner: 'RateLimiter', option: 'burst', make: (v) => limiterWith({ rate: 1, burst: v }) },
    { owner: 'RateLimiter', option: 'maxWait', make: (v) => limiterWith({ rate: 1, maxWait: v }) },
    { owner: 'RateLimiter', option: 'maxQueue', make: (v) => limiterWith({ rate: 1, maxWait: 1_000, maxQueue: v }) },
    { owner: 'RateLimiterGroup', option: 'rate', make: (v) => new RateLimiterGroup(loose<RateLimiterOptions>({ rate: v })) },
    { owner: 'RateLimiterGroup', option: 'maxKeys', make: (v) => new RateLimiterGroup({ rate: 1 }, loose<RateLimiterGroupOptions>({ maxKeys: v })) },
    { owner: 'hedge', option: 'delay', make: (v) => hedge(loose<HedgeOptions>({ delay: v })) },
    { owner: 'hedge', option: 'maxHedgedAttempts', make: (v) => hedge(loose<HedgeOptions>({ maxHedgedAttempts: v })) },
    { owner: 'RetryBudget', option: 'ratio', make: (v) => new RetryBudget(loose<RetryBudgetOptions>({ ratio: v })) },
    { owner: 'RetryBudget', option: 'minPerSecond', make: (v) => new RetryBudget(loose<RetryBudgetOptions>({ minPerSecond: v })) },
    { owner: 'RetryBudget', option: 'window', make: (v) => new RetryBudget(loose<RetryBudgetOptions>({ window: v })) },
    { owner: 'chaosFault', option: 'rate', make: (v) => chaosFault(loose<ChaosFaultOptions>({ rate: v, fault: new Error('injected') })) },
    { owner: 'chaosLatency', option: 'rate', make: (v) => chaosLatency(loose<ChaosLatencyOptions>({ rate: v, latency: 10 })) },
    { owner: 'chaosLatency', option: 'latency', make: (v) => chaosLatency(loose<ChaosLatencyOptions>({ rate: 1, latency: v })) },
    { owner: 'chaosOutcome', option: 'rate', make: (v) => chaosOutcome(loose<ChaosOutcomeOptions<string>>({ rate: v, outcome: 'injected' })) },
    { owner: 'withFallback', option: 'handles', make: (v) => withFallback(0, loose({ handles: v })) },
    { owner: 'MemoryCache', option: 'maxEntries', make: (v) => new MemoryCache(loose<MemoryCacheOptions>({ maxEntries: v })) },
    { owner: 'MemoryCache', option: 'ttl', make: (v) => new MemoryCache(loose<MemoryCacheOptions>({ ttl: v })) },
    { owner: 'MemoryCache set()', option: 'ttl', make: (v) => new MemoryCache().set('k', 1, loose<number>(v)) },
    { owner: 'MetricsRegistry', option: 'buckets', make: (v) => new MetricsRegistry(loose<MetricsRegistryOptions>({ buckets: v })) },
    { owner: 'MetricsRegistry (one bound)', option: 'buckets', make: (v) => new MetricsRegistry(loose<MetricsRegistryOptions>({ buckets: [v] })) },
    { owner: 'MetricsRegistry', option: 'now', make: (v) => new MetricsRegistry(loose<MetricsRegistryOptions>({ now: v })) },
    { owner: 'logPolicyEvents', option: 'summaryInterval', make: (v) => logPolicyEvents(new Bulkhead({ maxConcurrent: 1, name: 'b' }), silentLogger(), loose({ summaryInterval: v }))() },
    { owner: 'HealthMonitor', option: 'timeout', make: (v) => new HealthMonitor(loose<HealthMonitorOptions>({ timeout: v })) },
    { owner: 'HealthMonitor', option: 'cacheTtl', make: (v) => new HealthMonitor(loose<HealthMonitorOptions>({ cacheTtl: v })) },
    { owner: 'HealthMonitor addCheck', option: 'timeout', make: (v) => new HealthMonitor().addCheck('c', () => true, loose<CheckOptions>({ timeout: v })) },
    { owner: 'HealthMonitor addCheck', option: 'critical', make: (v) => new HealthMonitor().addCheck('c', () => true, loose<CheckOptions>({ critical: v })) },
    { owner: 'HealthMonitor addCircuitBreaker', option: 'critical', make: (v) => new HealthMonitor().addCircuitBreaker('b', new CircuitBreaker(), loose({ critical: v })) },
    { owner: 'registerOpenTelemetryMetrics', option: 'durationBuckets', make: (v) => registerOpenTelemetryMetrics(new MetricsRegistry(), otelMeterStub(), loose({ durationBuckets: v })) },
    { owner: 'registerOpenTelemetryMetrics (one bound)', option: 'durationBuckets', make: (v) => registerOpenTelemetryMetrics(new MetricsRegistry(), otelMeterStub(), loose({ durationBuckets: [v] })) },
  ];
  const JUNK: unknown[] = [NaN, -1, '5'];
  const JUNK_ROWS = OPTIONS.flatMap((entry) => JUNK.map((value) => ({ ...entry, value, label: label(value) })));

  it.each(JUNK_ROWS)('$owner $option = $label', ({ option, value, make }) => {
    let thrown: unknown;
    try {
      make(value);
    } catch (error) {
      thrown = error;
    }
    if (thrown === undefined) expect.fail(`${option} = ${label(value)} was accepted`);
    if (!(thrown instanceof RangeError || thrown instanceof TypeError)) expect.fail(`refused with ${describeError(thrown)}, not a RangeError or TypeError`);
    expect(thrown.message).toContain(option);
    expect(thrown.message).toContain(shown(value));
  });
});
