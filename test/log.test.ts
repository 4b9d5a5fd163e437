import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  MetricsRegistry,
  LayerPolicy,
  compose,
  logPolicyEvents,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type LogDescription,
  type LogLevel,
  type LogPolicyEventsOptions,
  type Policy,
  type PolicyDescription,
  type PolicyLogger,
} from '../src/index.js';
import { CountingClock, manualClock } from './fixtures/clock.js';
import { deferred, flush, hang, rejectionOf } from './fixtures/promises.js';
import { liveSubscriptions } from './fixtures/subscriptions.js';

/** A logger that records every call as [level, ...arguments]. */
function recordingLogger() {
  const lines: [LogLevel, ...unknown[]][] = [];
  const logger = {
    info: (...args: unknown[]) => void lines.push(['info', ...args]),
    warn: (...args: unknown[]) => void lines.push(['warn', ...args]),
    error: (...args: unknown[]) => void lines.push(['error', ...args]),
  } satisfies PolicyLogger;
  return { logger, lines };
}


const down = (): Promise<never> => Promise.reject(new Error('down'));

/** An open breaker named `payments` on a manual clock, with its logs on a counting clock. */
function openBreaker(options: LogPolicyEventsOptions = {}) {
  const breakerClock = manualClock();
  const logClock = new CountingClock();
  const breaker = new CircuitBreaker({ name: 'payments', failureThreshold: 1, recoveryTimeout: 60_000, clock: breakerClock.clock });
  const { logger, lines } = recordingLogger();
  const stop = logPolicyEvents(breaker, logger, { summaryInterval: 1_000, clock: logClock, ...options });
  return { breaker, breakerClock, logClock, logger, lines, stop };
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe('logPolicyEvents: circuit breaker state changes', () => {
  it('writes opening and isolation as warnings, half-open and closing as info, with structured fields', async () => {
    const { breaker, breakerClock, lines } = openBreaker();
    await breaker.execute(down).catch(() => undefined);
    breakerClock.advance(60_000);
    expect(breaker.state).toBe('half-open');
    await breaker.execute(() => 'ok');
    breaker.isolate();
    breaker.reset();
    const base = { policy: 'payments', kind: 'circuit-breaker', event: 'stateChange' };
    expect(lines).toEqual([
      ['warn', { ...base, from: 'closed', to: 'open', reason: 'failure-threshold' }, 'circuit breaker "payments" opened (was closed, failure-threshold)'],
      ['info', { ...base, from: 'open', to: 'half-open', reason: 'recovery-timeout' }, 'circuit breaker "payments" half-open, letting trial calls through (was open, recovery-timeout)'],
      ['info', { ...base, from: 'half-open', to: 'closed', reason: 'trial-success' }, 'circuit breaker "payments" closed (was half-open, trial-success)'],
      ['warn', { ...base, from: 'closed', to: 'isolated', reason: 'manual' }, 'circuit breaker "payments" isolated (was closed, manual)'],
      ['info', { ...base, from: 'isolated', to: 'closed', reason: 'manual' }, 'circuit breaker "payments" closed (was isolated, manual)'],
    ]);
  });

  it("passes the message first with style 'message-first' (winston's signature)", async () => {
    const { breaker, lines } = openBreaker({ style: 'message-first' });
    await breaker.execute(down).catch(() => undefined);
    expect(lines).toEqual([
      ['warn', 'circuit breaker "payments" opened (was closed, failure-threshold)', { policy: 'payments', kind: 'circuit-breaker', event: 'stateChange', from: 'closed', to: 'open', reason: 'failure-threshold' }],
    ]);
  });

  it('writes nothing for successful calls or counted failures, only for what changes', async () => {
    const breakerClock = manualClock();
    const breaker = new CircuitBreaker({ name: 'quiet', failureThreshold: 3, clock: breakerClock.clock });
    const bulkhead = new Bulkhead({ name: 'quiet', maxConcurrent: 100 });
    const stack = compose(withFallback(0, { name: 'quiet' }), breaker, retryWithBackoff({ name: 'quiet' }), withTimeout(1_000, { name: 'quiet' }), bulkhead);
    const { logger, lines } = recordingLogger();
    const clock = new CountingClock();
    logPolicyEvents(stack, logger, { clock });
    for (let i = 0; i < 100; i++) await stack.execute(() => i);
    await breaker.execute(down).catch(() => undefined);
    await breaker.execute(down).catch(() => undefined);
    expect(lines).toEqual([]);
    expect(clock.created).toBe(0);
  });
});

describe('logPolicyEvents: per-call events are summarised', () => {
  it('writes the first rejection in full, then one summary line per interval, then closes the window', async () => {
    const { breaker, logClock, lines } = openBreaker();
    await breaker.execute(down).catch(() => undefined);
    lines.length = 0;
    for (let i = 0; i < 10_000; i++) await breaker.execute(() => 'refused').catch(() => undefined);
    expect(lines).toEqual([
      [
        'warn',
        {
          policy: 'payments',
          kind: 'circuit-breaker',
          event: 'rejected',
          reason: 'open',
          error: { name: 'CircuitOpenError', message: 'Circuit is open: next trial in 60000 ms' },
          retryAfter: 60_000,
        },
        'circuit breaker "payments" rejected a call: Circuit is open: next trial in 60000 ms',
      ],
    ]);
    expect(logClock.armed).toBe(1);

    await logClock.advance(999);
    expect(lines).toHaveLength(1);
    await logClock.advance(1);
    expect(lines[1]).toEqual([
      'warn',
      { policy: 'payments', kind: 'circuit-breaker', event: 'rejected', repeated: 9_999, intervalMs: 1_000 },
      'circuit breaker "payments": 9999 more rejections in the last 1000 ms',
    ]);
    // rejections in the next interval are summarised again
    await breaker.execute(() => 'refused').catch(() => undefined);
    await logClock.advance(1_000);
    expect(lines[2]?.[1]).toMatchObject({ event: 'rejected', repeated: 1 });
    // a quiet interval closes the window and leaves no timer
    await logClock.advance(1_000);
    expect(lines).toHaveLength(3);
    expect(logClock.armed).toBe(0);
    // the next rejection is written in full again
    await breaker.execute(() => 'refused').catch(() => undefined);
    expect(lines).toHaveLength(4);
    expect(lines[3]?.[1]).toMatchObject({ event: 'rejected', reason: 'open', retryAfter: 60_000 });
  });

  it('leaves retryAfter out for an isolated breaker (it is Infinity)', async () => {
    const { breaker, lines } = openBreaker();
    breaker.isolate();
    await breaker.execute(() => 'refused').catch(() => undefined);
    expect(lines[1]).toEqual([
      'warn',
      {
        policy: 'payments',
        kind: 'circuit-breaker',
        event: 'rejected',
        reason: 'isolated',
        error: { name: 'CircuitOpenError', message: 'Circuit is isolated: calls are refused until reset()' },
      },
      'circuit breaker "payments" rejected a call: Circuit is isolated: calls are refused until reset()',
    ]);
  });

  it('writes every event with summaryInterval 0, and arms no timer', async () => {
    const { breaker, logClock, lines } = openBreaker({ summaryInterval: 0 });
    await breaker.execute(down).catch(() => undefined);
    for (let i = 0; i < 5; i++) await breaker.execute(() => 'refused').catch(() => undefined);
    expect(lines.map(([, fields]) => (fields as { event: string }).event)).toEqual(['stateChange', 'rejected', 'rejected', 'rejected', 'rejected', 'rejected']);
    expect(logClock.created).toBe(0);
  });

  it('keeps one window per policy and event', async () => {
    const clock = new CountingClock();
    const bulkheadA = new Bulkhead({ name: 'a', maxConcurrent: 1 });
    const bulkheadB = new Bulkhead({ name: 'b', maxConcurrent: 1 });
    const { logger, lines } = recordingLogger();
    logPolicyEvents(compose(bulkheadA, bulkheadB), logger, { clock, summaryInterval: 1_000 });
    const holdA = deferred();
    const holdB = deferred();
    const runningA = bulkheadA.execute(() => holdA.promise);
    const runningB = bulkheadB.execute(() => holdB.promise);
    for (let i = 0; i < 3; i++) {
      await bulkheadA.execute(() => 1).catch(() => undefined);
      await bulkheadB.execute(() => 1).catch(() => undefined);
    }
    expect(lines.map(([, fields]) => (fields as { policy: string }).policy)).toEqual(['a', 'b']);
    expect(lines[0]).toEqual([
      'warn',
      { policy: 'a', kind: 'bulkhead', event: 'rejected', reason: 'full', error: { name: 'BulkheadRejectedError', message: 'Bulkhead is full: 1 running and 0 queued' } },
      'bulkhead "a" rejected a call: Bulkhead is full: 1 running and 0 queued',
    ]);
    await clock.advance(1_000);
    expect(lines.slice(2).map(([, fields]) => fields)).toEqual([
      { policy: 'a', kind: 'bulkhead', event: 'rejected', repeated: 2, intervalMs: 1_000 },
      { policy: 'b', kind: 'bulkhead', event: 'rejected', repeated: 2, intervalMs: 1_000 },
    ]);
    holdA.resolve();
    holdB.resolve();
    await Promise.all([runningA, runningB]);
  });
});

describe('logPolicyEvents: retry, timeout and fallback', () => {
  it('writes a retry’s give-up as a warning, and its retries only when asked', async () => {
    const retry = retryWithBackoff({ name: 'orders', maxRetries: 2, baseDelay: 0 });
    const quiet = recordingLogger();
    const chatty = recordingLogger();
    logPolicyEvents(retry, quiet.logger);
    logPolicyEvents(retry, chatty.logger, { levels: { retry: 'info' }, summaryInterval: 0 });
    await retry.execute(down).catch(() => undefined);
    const giveUp = [
      'warn',
      { policy: 'orders', kind: 'retry', event: 'giveUp', attempts: 3, error: { name: 'Error', message: 'down' } },
      'retry "orders" gave up after 3 attempts: down',
    ];
    expect(quiet.lines).toEqual([giveUp]);
    expect(chatty.lines).toEqual([
      ['info', { policy: 'orders', kind: 'retry', event: 'retry', attempt: 1, delay: 0, error: { name: 'Error', message: 'down' } }, 'retry "orders": attempt 1 failed, retrying in 0 ms: down'],
      ['info', { policy: 'orders', kind: 'retry', event: 'retry', attempt: 2, delay: 0, error: { name: 'Error', message: 'down' } }, 'retry "orders": attempt 2 failed, retrying in 0 ms: down'],
      giveUp,
    ]);
  });

  it('writes a timeout as a warning with its deadline', async () => {
    const clock = new CountingClock();
    const timeout = withTimeout(100, { name: 'search', clock });
    const { logger, lines } = recordingLogger();
    logPolicyEvents(timeout, logger, { clock });
    const call = rejectionOf(timeout.execute(hang));
    await clock.advance(100);
    await call;
    expect(lines).toEqual([['warn', { policy: 'search', kind: 'timeout', event: 'timeout', timeout: 100 }, 'timeout "search" expired after 100 ms']]);
  });

  it('writes a fallback’s answer as info, with what it replaced (also a thrown non-Error)', async () => {
    const fallback = withFallback('cached', { name: 'profile' });
    const { logger, lines } = recordingLogger();
    logPolicyEvents(fallback, logger, { summaryInterval: 0 });
    await fallback.execute(down);
    await fallback.execute(() => Promise.reject('boom'));
    expect(lines).toEqual([
      ['info', { policy: 'profile', kind: 'fallback', event: 'fallback', error: { name: 'Error', message: 'down' } }, 'fallback "profile" answered in place of a failed call: down'],
      ['info', { policy: 'profile', kind: 'fallback', event: 'fallback', error: { name: 'string', message: 'boom' } }, 'fallback "profile" answered in place of a failed call: boom'],
    ]);
  });

  it('takes a level per event, and subscribes nothing for an event that is off', async () => {
    const breakerClock = manualClock();
    const fallback = withFallback(0, { name: 'x' });
    const breaker = new CircuitBreaker({ name: 'x', failureThreshold: 1, clock: breakerClock.clock });
    const retry = retryWithBackoff({ name: 'x', maxRetries: 0 });
    const fallbackListeners = liveSubscriptions(fallback);
    const { logger, lines } = recordingLogger();
    logPolicyEvents(compose(fallback, breaker, retry), logger, { levels: { fallback: 'off', giveUp: 'error', stateChange: 'error' }, clock: new CountingClock() });
    expect(fallbackListeners()).toBe(0);
    await compose(fallback, breaker, retry).execute(down);
    expect(lines.map(([level, fields]) => [level, (fields as { event: string }).event])).toEqual([
      ['error', 'giveUp'],
      ['error', 'stateChange'],
    ]);
  });

  it('names a stack’s unnamed members with the name option, and skips them without it', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock: manualClock().clock });
    const named = recordingLogger();
    logPolicyEvents(compose(breaker), named.logger, { name: 'anonymous' });
    await breaker.execute(down).catch(() => undefined);
    expect(named.lines[0]?.[2]).toBe('circuit breaker "anonymous" opened (was closed, failure-threshold)');
    expect(() => logPolicyEvents(compose(breaker), recordingLogger().logger)).toThrow(/no named bulwark policy/);
  });
});

describe('logPolicyEvents: a MetricsRegistry as target', () => {
  it('logs what the registry tracks, under its names, including policies tracked later, until untracked', async () => {
    const registry = new MetricsRegistry();
    const first = new CircuitBreaker({ failureThreshold: 1, clock: manualClock().clock });
    registry.track(first, { name: 'first' });
    const { logger, lines } = recordingLogger();
    const stop = logPolicyEvents(registry, logger, { clock: new CountingClock() });
    await first.execute(down).catch(() => undefined);
    const second = new CircuitBreaker({ name: 'second', failureThreshold: 1, clock: manualClock().clock });
    const untrackSecond = registry.track(second);
    await second.execute(down).catch(() => undefined);
    expect(lines.map((line) => line[2])).toEqual(['circuit breaker "first" opened (was closed, failure-threshold)', 'circuit breaker "second" opened (was closed, failure-threshold)']);

    untrackSecond();
    second.reset();
    expect(lines).toHaveLength(2);
    stop();
    first.reset();
    registry.track(new CircuitBreaker({ name: 'third' })).call(undefined);
    expect(lines).toHaveLength(2);
    expect(() => logPolicyEvents(registry, logger, { name: 'x' })).toThrow(TypeError);
  });

  it('accepts a level for any event while the registry tracks nothing, and checks them against what it tracks otherwise', () => {
    const registry = new MetricsRegistry();
    const { logger, lines } = recordingLogger();
    logPolicyEvents(registry, logger, { levels: { saturated: 'error' }, summaryInterval: 0 });
    const { policy, emit } = describedPolicy({ kind: 'limit', name: 'l', logs: [SATURATED] });
    registry.track(policy);
    emit('saturated', { key: 'k' });
    expect(lines).toEqual([['error', { policy: 'l', kind: 'limit', event: 'saturated', key: 'k' }, 'limit "l" saturated for key k']]);

    const busy = new MetricsRegistry();
    busy.track(new CircuitBreaker({ name: 'b' }));
    expect(() => logPolicyEvents(busy, logger, { levels: { saturated: 'error' } })).toThrow(
      new RangeError('logPolicyEvents levels: unknown event "saturated", expected one of "stateChange", "rejected", "giveUp", "retry", "timeout", "fallback"'),
    );
  });
});

describe('logPolicyEvents: unsubscribing and failures of the logger', () => {
  it('removes every listener and timer, writing a pending summary first', async () => {
    const { breaker, logClock, lines, stop } = openBreaker();
    await breaker.execute(down).catch(() => undefined);
    for (let i = 0; i < 4; i++) await breaker.execute(() => 'refused').catch(() => undefined);
    expect(logClock.armed).toBe(1);
    stop();
    expect(logClock.armed).toBe(0);
    expect(lines.at(-1)).toEqual([
      'warn',
      { policy: 'payments', kind: 'circuit-breaker', event: 'rejected', repeated: 3, intervalMs: 1_000 },
      'circuit breaker "payments": 3 more rejections in the last 1000 ms',
    ]);
    const written = lines.length;
    stop();
    await breaker.execute(() => 'refused').catch(() => undefined);
    breaker.reset();
    await logClock.advance(5_000);
    expect(lines).toHaveLength(written);
  });

  it('writes no summary line when nothing repeated in the window it stops', async () => {
    const { breaker, logClock, lines, stop } = openBreaker();
    await breaker.execute(down).catch(() => undefined);
    await breaker.execute(() => 'refused').catch(() => undefined);
    expect(lines.map(([, fields]) => (fields as { event: string }).event)).toEqual(['stateChange', 'rejected']);
    expect(logClock.armed).toBe(1);
    stop();
    expect(lines).toHaveLength(2);
    expect(logClock.armed).toBe(0);
  });

  it('touches no timer of its clock when it stops with summaryInterval 0', async () => {
    const breakerClock = manualClock();
    const logClock = manualClock();
    const breaker = new CircuitBreaker({ name: 'p', failureThreshold: 1, clock: breakerClock.clock });
    const { logger, lines } = recordingLogger();
    const stop = logPolicyEvents(breaker, logger, { summaryInterval: 0, clock: logClock.clock });
    await breaker.execute(down).catch(() => undefined);
    await breaker.execute(() => 'refused').catch(() => undefined);
    expect(() => stop()).not.toThrow();
    expect(lines).toHaveLength(2);
    expect(logClock.setTimeout).not.toHaveBeenCalled();
    expect(logClock.clearTimeout).not.toHaveBeenCalled();
  });

  it('unsubscribes every policy of a stack', () => {
    const policies = [withFallback(0, { name: 's' }), new CircuitBreaker({ name: 's' }), retryWithBackoff({ name: 's' }), withTimeout(5, { name: 's' }), new Bulkhead({ name: 's', maxConcurrent: 1 })];
    const live = policies.map((policy) => liveSubscriptions(policy));
    const stop = logPolicyEvents(compose(...policies), recordingLogger().logger, { levels: { retry: 'warn' } });
    expect(live.map((count) => count())).toEqual([1, 2, 2, 1, 1]);
    stop();
    expect(live.map((count) => count())).toEqual([0, 0, 0, 0, 0]);
  });

  it('a logger that throws is reported, and neither the call nor the summary timer breaks', async () => {
    const reported = vi.fn();
    vi.stubGlobal('reportError', reported);
    const broken = new Error('log sink down');
    const logger: PolicyLogger = {
      info: () => {
        throw broken;
      },
      warn: () => {
        throw broken;
      },
      error: () => {
        throw broken;
      },
    };
    const clock = new CountingClock();
    const fallback = withFallback('cached', { name: 'f' });
    logPolicyEvents(fallback, logger, { clock, summaryInterval: 100 });
    await expect(fallback.execute(down)).resolves.toBe('cached');
    await expect(fallback.execute(down)).resolves.toBe('cached');
    expect(reported).toHaveBeenCalledTimes(1); // the second fallback is counted for the summary
    expect(clock.armed).toBe(1);
    await clock.advance(100); // writes the summary, which throws too: reported, not thrown out of the timer
    expect(reported).toHaveBeenCalledTimes(2);
    expect(reported).toHaveBeenCalledWith(broken);
    expect(clock.armed).toBe(1); // and the next interval is under way
  });

  it.each(['object-first', 'message-first'] as const)('says on the console that the logger failed, when it throws or rejects (%s)', async (style) => {
    vi.stubGlobal('reportError', undefined);
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {});
    const thrown = new Error('sink down');
    const rejected = new Error('sink rejected');
    const logger: PolicyLogger = {
      info: () => Promise.reject(rejected),
      warn: () => {
        throw thrown;
      },
      error: () => undefined,
    };
    const fallback = withFallback('cached', { name: 'f' });
    const breaker = new CircuitBreaker({ name: 'b' });
    breaker.isolate();
    const stack = compose(fallback, breaker);
    logPolicyEvents(stack, logger, { style, summaryInterval: 0 });
    await expect(stack.execute(() => 'never runs')).resolves.toBe('cached'); // rejected (warn), then answered (info)
    await flush();
    expect(printed.mock.calls).toEqual([
      ['bulwark: the logger failed', thrown],
      ['bulwark: the logger failed', rejected],
    ]);
  });

  it('does not let a pending summary keep a Node process alive', async () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const bulkhead = new Bulkhead({ name: 'b', maxConcurrent: 1 });
    const stop = logPolicyEvents(bulkhead, recordingLogger().logger);
    const hold = deferred();
    const running = bulkhead.execute(() => hold.promise);
    await bulkhead.execute(() => 1).catch(() => undefined);
    const timer = setTimeoutSpy.mock.results.at(-1)?.value as NodeJS.Timeout;
    expect(setTimeoutSpy.mock.calls.at(-1)?.[1]).toBe(10_000);
    expect(timer.hasRef()).toBe(false);
    stop();
    hold.resolve();
    await running;
  });
});

describe('logPolicyEvents: bad input', () => {
  const breaker = new CircuitBreaker({ name: 'b' });
  const { logger } = recordingLogger();
  it.each([
    ['a logger without error()', breaker, { info() {}, warn() {} }, undefined, TypeError, 'logPolicyEvents(target, logger): logger must have info(), warn() and error() methods, got object'],
    ['a logger without info()', breaker, { warn() {}, error() {} }, undefined, TypeError, 'logPolicyEvents(target, logger): logger must have info(), warn() and error() methods, got object'],
    ['a logger without warn()', breaker, { info() {}, error() {} }, undefined, TypeError, 'logPolicyEvents(target, logger): logger must have info(), warn() and error() methods, got object'],
    ['no logger', breaker, null, undefined, TypeError, 'logPolicyEvents(target, logger): logger must have info(), warn() and error() methods, got null'],
    ['an undefined logger', breaker, undefined, undefined, TypeError, 'logPolicyEvents(target, logger): logger must have info(), warn() and error() methods, got undefined'],
    ['a string for a logger', breaker, 'console', undefined, TypeError, 'logPolicyEvents(target, logger): logger must have info(), warn() and error() methods, got string'],
    ['a name with a registry', new MetricsRegistry(), logger, { name: 'x' }, TypeError, 'logPolicyEvents name cannot be given with a MetricsRegistry: its policies are logged under their registry names'],
    ['an unknown style', breaker, logger, { style: 'json' }, RangeError, 'logPolicyEvents style must be one of "object-first", "message-first", got "json"'],
    ['an unknown event', breaker, logger, { levels: { open: 'warn' } }, RangeError, 'logPolicyEvents levels: unknown event "open", expected one of "stateChange", "rejected", "giveUp", "retry", "timeout", "fallback"'],
    ['an unknown level', breaker, logger, { levels: { giveUp: 'loud' } }, RangeError, 'logPolicyEvents levels.giveUp must be one of "info", "warn", "error", "off", got "loud"'],
    ['levels not an object', breaker, logger, { levels: 'warn' }, TypeError, 'logPolicyEvents levels must be an object, got string'],
    ['levels null', breaker, logger, { levels: null }, TypeError, 'logPolicyEvents levels must be an object, got null'],
    ['levels an array', breaker, logger, { levels: ['warn'] }, TypeError, 'logPolicyEvents levels must be an object, got an array'],
    ['a negative summaryInterval', breaker, logger, { summaryInterval: -1 }, RangeError, 'logPolicyEvents summaryInterval must be a duration in ms from 0 to 2147483647, got -1'],
    ['a clock without timers', breaker, logger, { clock: { now: () => 0 } }, TypeError, 'logPolicyEvents clock must be a Clock with now(), setTimeout() and clearTimeout(), got an object'],
    ['options that are not an object', breaker, logger, 'loud', TypeError, 'logPolicyEvents options must be an object, got "loud"'],
    ['an unnamed policy', new CircuitBreaker(), logger, undefined, TypeError, 'logPolicyEvents: the circuit-breaker has no name; build it with { name } or pass { name } here'],
    ['not a policy', {}, logger, undefined, TypeError, 'logPolicyEvents: expected a bulwark policy or a composed stack, got an object'],
  ])('%s', (_, target, badLogger, options, type, message) => {
    expect(() => logPolicyEvents(target as Policy, badLogger as PolicyLogger, options as LogPolicyEventsOptions)).toThrow(new type(message));
  });
});

describe('logPolicyEvents: options that are accepted', () => {
  it('takes a level left undefined as no level given', async () => {
    const levels = { stateChange: undefined, rejected: 'error' } as unknown as LogPolicyEventsOptions['levels']; // as JavaScript allows
    const { breaker, lines } = openBreaker({ levels });
    await breaker.execute(down).catch(() => undefined);
    await breaker.execute(() => 'refused').catch(() => undefined);
    expect(lines.map(([level, fields]) => [level, (fields as { event: string }).event])).toEqual([
      ['warn', 'stateChange'],
      ['error', 'rejected'],
    ]);
  });

  it('takes a logger that is a function with info(), warn() and error() methods', () => {
    const { logger, lines } = recordingLogger();
    const callable = Object.assign(() => undefined, logger);
    const breaker = new CircuitBreaker({ name: 'b' });
    logPolicyEvents(breaker, callable);
    breaker.isolate();
    expect(lines).toEqual([['warn', { policy: 'b', kind: 'circuit-breaker', event: 'stateChange', from: 'closed', to: 'isolated', reason: 'manual' }, 'circuit breaker "b" isolated (was closed, manual)']]);
  });
});

describe('logPolicyEvents: logger types', () => {
  it('accepts console and the shapes of pino, bunyan and winston loggers', () => {
    // Their method signatures, as their type definitions declare them.
    interface PinoLike {
      info(obj: object, msg?: string, ...args: unknown[]): void;
      info(msg: string, ...args: unknown[]): void;
      warn(obj: object, msg?: string, ...args: unknown[]): void;
      warn(msg: string, ...args: unknown[]): void;
      error(obj: object, msg?: string, ...args: unknown[]): void;
      error(msg: string, ...args: unknown[]): void;
    }
    interface WinstonLike {
      info(message: string, ...meta: unknown[]): WinstonLike;
      warn(message: string, ...meta: unknown[]): WinstonLike;
      error(message: string, ...meta: unknown[]): WinstonLike;
    }
    const calls: unknown[][] = [];
    const pinoLike: PinoLike = { info: (...args: unknown[]) => void calls.push(args), warn: (...args: unknown[]) => void calls.push(args), error: (...args: unknown[]) => void calls.push(args) };
    const winstonLike: WinstonLike = {
      info: (...args: unknown[]) => (calls.push(args), winstonLike),
      warn: (...args: unknown[]) => (calls.push(args), winstonLike),
      error: (...args: unknown[]) => (calls.push(args), winstonLike),
    };
    const breaker = new CircuitBreaker({ name: 'b', failureThreshold: 1, clock: manualClock().clock });
    const stops = [logPolicyEvents(breaker, pinoLike), logPolicyEvents(breaker, winstonLike, { style: 'message-first' }), logPolicyEvents(breaker, console, { levels: { stateChange: 'off' } })];
    breaker.isolate();
    expect(calls).toEqual([
      [{ policy: 'b', kind: 'circuit-breaker', event: 'stateChange', from: 'closed', to: 'isolated', reason: 'manual' }, 'circuit breaker "b" isolated (was closed, manual)'],
      ['circuit breaker "b" isolated (was closed, manual)', { policy: 'b', kind: 'circuit-breaker', event: 'stateChange', from: 'closed', to: 'isolated', reason: 'manual' }],
    ]);
    for (const stop of stops) stop();
  });
});

/**
 * A policy of one's own that describes itself as the test says, and whose events the test
 * emits by hand (`emit`): what logPolicyEvents reads of a kind it does not know.
 */
function describedPolicy(description: Omit<PolicyDescription, 'on'> & { on?: false }) {
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const on = (event: string, listener: (payload: unknown) => void): (() => void) => {
    const set = listeners.get(event) ?? new Set();
    listeners.set(event, set);
    set.add(listener);
    return () => void set.delete(listener);
  };
  const { on: subscribable, ...rest } = description;
  const full: PolicyDescription = subscribable === false ? rest : { ...rest, on };
  class Described extends LayerPolicy<void> {
    protected describe(): PolicyDescription {
      return full;
    }
  }
  return {
    policy: new Described(),
    emit: (event: string, payload: unknown = {}) => {
      for (const listener of [...(listeners.get(event) ?? [])]) listener(payload);
    },
    listening: (event: string) => listeners.get(event)?.size ?? 0,
  };
}

const SATURATED: LogDescription = {
  event: 'saturated',
  level: 'warn',
  perCall: true,
  message: ({ key }: { key: string }, label: string) => `${label} saturated for key ${key}`,
  fields: ({ key }: { key: string }) => ({ key }),
};

describe('logPolicyEvents: a policy of your own', () => {
  it('names it by its kind when it has no label, and counts its repeats as "<event> events" when it has no plural', async () => {
    const { policy, emit } = describedPolicy({ kind: 'in-flight-limit', name: 'tenants', logs: [SATURATED] });
    const clock = new CountingClock();
    const { logger, lines } = recordingLogger();
    logPolicyEvents(policy, logger, { clock, summaryInterval: 1_000 });
    emit('saturated', { key: 'a' });
    emit('saturated', { key: 'b' });
    emit('saturated', { key: 'c' });
    await clock.advance(1_000);
    expect(lines).toEqual([
      ['warn', { policy: 'tenants', kind: 'in-flight-limit', event: 'saturated', key: 'a' }, 'in-flight-limit "tenants" saturated for key a'],
      ['warn', { policy: 'tenants', kind: 'in-flight-limit', event: 'saturated', repeated: 2, intervalMs: 1_000 }, 'in-flight-limit "tenants": 2 more saturated events in the last 1000 ms'],
    ]);
  });

  it('reads the level of a per-call event from the first event of each window', async () => {
    const { policy, emit } = describedPolicy({
      kind: 'limit',
      label: 'limit',
      name: 'l',
      logs: [{ ...SATURATED, level: ({ key }: { key: string }) => (key === 'loud' ? 'error' : 'info') }],
    });
    const clock = new CountingClock();
    const { logger, lines } = recordingLogger();
    logPolicyEvents(policy, logger, { clock, summaryInterval: 1_000 });
    emit('saturated', { key: 'loud' });
    emit('saturated', { key: 'quiet' });
    await clock.advance(1_000);
    expect(lines.map(([level, fields]) => [level, (fields as { key?: string; repeated?: number }).key ?? (fields as { repeated: number }).repeated])).toEqual([
      ['error', 'loud'],
      ['error', 1],
    ]);
  });

  it('accepts a level for the events it describes, and still refuses an event no policy of the target has', () => {
    const { policy, emit } = describedPolicy({ kind: 'limit', name: 'l', logs: [SATURATED] });
    const { logger, lines } = recordingLogger();
    logPolicyEvents(policy, logger, { levels: { saturated: 'error' }, summaryInterval: 0 });
    emit('saturated', { key: 'k' });
    expect(lines.map(([level]) => level)).toEqual(['error']);
    expect(() => logPolicyEvents(policy, logger, { levels: { saturation: 'error' } })).toThrow(
      new RangeError('logPolicyEvents levels: unknown event "saturation", expected one of "stateChange", "rejected", "giveUp", "retry", "timeout", "fallback", "saturated"'),
    );
  });

  it('writes nothing, and throws nothing, for a policy that describes no logs or cannot be subscribed to', () => {
    const { logger, lines } = recordingLogger();
    const silent = describedPolicy({ kind: 'silent', name: 's' });
    const deaf = describedPolicy({ kind: 'deaf', name: 'd', logs: [SATURATED], on: false });
    const stops = [logPolicyEvents(silent.policy, logger), logPolicyEvents(deaf.policy, logger), logPolicyEvents(compose(silent.policy, deaf.policy), logger)];
    silent.emit('saturated');
    deaf.emit('saturated');
    expect(lines).toEqual([]);
    for (const stop of stops) stop();
  });

  it('a message or fields describer that throws is reported: the line is written with the rest', () => {
    const reported = vi.fn();
    vi.stubGlobal('reportError', undefined);
    vi.spyOn(console, 'error').mockImplementation(reported);
    const broken = new Error('describer broke');
    const { policy, emit } = describedPolicy({
      kind: 'limit',
      name: 'l',
      logs: [
        { ...SATURATED, message: () => { throw broken; } },
        { ...SATURATED, event: 'drained', fields: () => { throw broken; } },
      ],
    });
    const { logger, lines } = recordingLogger();
    logPolicyEvents(policy, logger, { summaryInterval: 0 });
    emit('saturated', { key: 'a' });
    emit('drained', { key: 'b' });
    expect(lines).toEqual([
      ['warn', { policy: 'l', kind: 'limit', event: 'saturated', key: 'a' }, 'limit "l": saturated'],
      ['warn', { policy: 'l', kind: 'limit', event: 'drained' }, 'limit "l" saturated for key b'],
    ]);
    expect(reported.mock.calls).toEqual([
      ['bulwark: the log message of a "saturated" event failed', broken],
      ['bulwark: the log fields of a "drained" event failed', broken],
    ]);
  });
});
