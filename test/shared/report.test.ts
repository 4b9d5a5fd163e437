/**
 * A callback a user passes — a listener, a logger, a predicate — can be `async`, and its
 * promise can reject. Left alone that is an unhandled rejection, which ends a Node process
 * (exit code 1) by default; bulwark watches every such promise and reports its rejection like
 * a throw, and a predicate that answers with a promise is refused with a TypeError.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  CircuitBreakerGroup,
  MemoryCache,
  MetricsRegistry,
  compose,
  logPolicyEvents,
  retryWithBackoff,
  withCacheFallback,
  withFallback,
  withTimeout,
  type PolicyLogger,
} from '../../src/index.js';
import { HealthMonitor, fetchHealthHandler } from '../../src/health/index.js';

const run = promisify(execFile);
const boom = new Error('boom');
const rejectLater = async (): Promise<never> => {
  throw boom;
};
const fails = (): Promise<never> => Promise.reject(new Error('down'));

let unhandled: unknown[];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
let reported: ReturnType<typeof vi.spyOn>;

beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
  reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** Lets every pending reaction run, and Node's unhandled-rejection check with them. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** The error objects reported through console.error (Node has no global reportError). */
function reportedErrors(): unknown[] {
  return reported.mock.calls.map((call: unknown[]) => call[1]);
}

describe('an async listener that rejects is reported, never unhandled', () => {
  it.each<[string, (listener: () => Promise<never>) => Promise<unknown>]>([
    ['CircuitBreaker failure', (listener) => {
      const breaker = new CircuitBreaker();
      breaker.on('failure', listener);
      return breaker.execute(fails);
    }],
    ['CircuitBreaker success', (listener) => {
      const breaker = new CircuitBreaker();
      breaker.on('success', listener);
      return breaker.execute(() => 1);
    }],
    ['CircuitBreaker stateChange', (listener) => {
      const breaker = new CircuitBreaker({ failureThreshold: 1 });
      breaker.on('stateChange', listener);
      return breaker.execute(fails);
    }],
    ['CircuitBreaker rejected', (listener) => {
      const breaker = new CircuitBreaker();
      breaker.isolate();
      breaker.on('rejected', listener);
      return breaker.execute(() => 1);
    }],
    ['CircuitBreakerGroup stateChange', (listener) => {
      const group = new CircuitBreakerGroup({ failureThreshold: 1 });
      group.on('stateChange', listener);
      return group.execute('a', fails);
    }],
    ['CircuitBreakerGroup evicted', (listener) => {
      const group = new CircuitBreakerGroup({}, { maxKeys: 1 });
      group.on('evicted', listener);
      group.get('a');
      group.get('b');
      return Promise.resolve();
    }],
    ['retry retry and giveUp', (listener) => {
      const retry = retryWithBackoff({ maxRetries: 1, baseDelay: 0 });
      retry.on('retry', listener);
      retry.on('giveUp', listener);
      return retry.execute(fails);
    }],
    ['Bulkhead rejected', (listener) => {
      const bulkhead = new Bulkhead({ maxConcurrent: 1 });
      bulkhead.on('rejected', listener);
      const running = bulkhead.execute(() => new Promise((resolve) => setTimeout(resolve, 1)));
      return Promise.allSettled([running, bulkhead.execute(() => 1)]);
    }],
    ['withTimeout timeout', (listener) => {
      const timeout = withTimeout(1);
      timeout.on('timeout', listener);
      return timeout.execute(() => new Promise(() => {}));
    }],
    ['withFallback fallback', (listener) => {
      const fallback = withFallback('cached');
      fallback.on('fallback', listener);
      return fallback.execute(fails);
    }],
    ['MetricsRegistry onCall', (listener) => {
      const registry = new MetricsRegistry();
      const bulkhead = new Bulkhead({ maxConcurrent: 1, name: 'b' });
      registry.track(bulkhead);
      registry.onCall(listener);
      return bulkhead.execute(() => 1);
    }],
  ])('%s', async (_, trigger) => {
    const listener = vi.fn(rejectLater);
    await trigger(listener).catch(() => undefined);
    await settle();
    expect(listener).toHaveBeenCalled();
    expect(unhandled).toEqual([]);
    expect(reportedErrors()).toContain(boom);
  });

  it('a listener returning a thenable whose then throws is reported too', async () => {
    const breaker = new CircuitBreaker();
    const thenable = {
      then() {
        throw boom;
      },
    };
    breaker.on('success', () => thenable as unknown as void);
    await expect(breaker.execute(() => 'ok')).resolves.toBe('ok');
    expect(reportedErrors()).toContain(boom);
  });

  it('a listener returning an object whose then getter throws is reported, naming the listener', async () => {
    const breaker = new CircuitBreaker();
    const trap = Object.defineProperty({}, 'then', {
      get() {
        throw boom;
      },
    });
    breaker.on('success', () => trap as unknown as void);
    await expect(breaker.execute(() => 'ok')).resolves.toBe('ok');
    expect(reported).toHaveBeenCalledWith('bulwark: a "success" listener failed', boom);
  });

  it('a logger whose methods return a rejecting promise is reported, and the call goes on', async () => {
    const logger: PolicyLogger = { info: rejectLater, warn: rejectLater, error: rejectLater };
    const breaker = new CircuitBreaker({ failureThreshold: 1, name: 'payments' });
    const stop = logPolicyEvents(breaker, logger);
    await expect(breaker.execute(fails)).rejects.toThrow('down');
    await settle();
    stop();
    expect(unhandled).toEqual([]);
    expect(reportedErrors()).toContain(boom);
  });

  it('the saved-state example of docs/circuit-breaker.md survives a store whose writes reject', async () => {
    const kv = { set: vi.fn(rejectLater) };
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    breaker.on('stateChange', () => kv.set());
    await expect(breaker.execute(fails)).rejects.toThrow('down');
    await settle();
    expect(kv.set).toHaveBeenCalledTimes(1);
    expect(unhandled).toEqual([]);
    expect(reportedErrors()).toContain(boom);
  });
});

describe('a predicate that answers with a promise is refused with a TypeError, its rejection reported', () => {
  it('CircuitBreaker isFailure: the call rejects with the TypeError and counts as a failure', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, isFailure: rejectLater as unknown as () => boolean });
    await expect(breaker.execute(fails)).rejects.toThrow(new TypeError('CircuitBreaker isFailure must return its answer synchronously, got a promise (an async function?)'));
    expect(breaker.state).toBe('open');
    await settle();
    expect(unhandled).toEqual([]);
    expect(reportedErrors()).toContain(boom);
  });

  it('retryWithBackoff retryOn: the call rejects with the TypeError, nothing is retried', async () => {
    const fn = vi.fn(fails);
    const retry = retryWithBackoff({ baseDelay: 0, retryOn: rejectLater as unknown as () => boolean });
    await expect(retry.execute(fn)).rejects.toThrow('retryWithBackoff retryOn must return its answer synchronously');
    expect(fn).toHaveBeenCalledTimes(1);
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('withFallback handles: the call rejects with the TypeError, no fallback', async () => {
    const fallback = withFallback('cached', { handles: rejectLater as unknown as () => boolean });
    await expect(fallback.execute(fails)).rejects.toThrow('withFallback handles must return its answer synchronously');
    await settle();
    expect(unhandled).toEqual([]);
  });

  it('a callable thenable is a promise-like answer too, and is refused', async () => {
    const callable = Object.assign(() => true, { then: (resolve: (value: boolean) => void) => resolve(true) });
    const breaker = new CircuitBreaker({ isFailure: (() => callable) as unknown as () => boolean });
    await expect(breaker.execute(fails)).rejects.toThrow(new TypeError('CircuitBreaker isFailure must return its answer synchronously, got a promise (an async function?)'));
  });

  it('an async predicate that would resolve true is refused just the same: a pending promise is not an answer', async () => {
    const breaker = new CircuitBreaker({ isFailure: (async () => true) as unknown as () => boolean });
    await expect(breaker.execute(fails)).rejects.toThrow(TypeError);
  });

  it('withCacheFallback handles and key', async () => {
    const cache = new MemoryCache<number>();
    const byHandles = withCacheFallback(fails, { cache, key: () => 'k', handles: rejectLater as unknown as () => boolean });
    await expect(byHandles()).rejects.toThrow('withCacheFallback handles must return its answer synchronously');
    const byKey = withCacheFallback(async () => 1, { cache, key: rejectLater as unknown as () => string });
    await expect(byKey()).rejects.toThrow('withCacheFallback key must return its answer synchronously');
    await settle();
    expect(unhandled).toEqual([]);
  });
});

describe('other callbacks whose promise bulwark cannot use', () => {
  it('a recoveryTimeout function that returns a promise: the break lasts the default, the rejection is reported', async () => {
    const now = Date.now();
    const clock = { now: () => now, setTimeout, clearTimeout };
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: rejectLater as unknown as () => number, clock });
    await expect(breaker.execute(fails)).rejects.toThrow('down');
    expect(breaker.stats().retryAfter).toBe(30_000);
    await settle();
    expect(unhandled).toEqual([]);
    expect(reportedErrors()).toContain(boom);
  });

  it('a random source that returns a promise: the delay stays finite, the rejection is reported', async () => {
    const retry = retryWithBackoff({ maxRetries: 1, baseDelay: 1, random: rejectLater as unknown as () => number });
    const delays: number[] = [];
    retry.on('retry', ({ delay }) => void delays.push(delay));
    await expect(retry.execute(fails)).rejects.toThrow('down');
    expect(delays).toEqual([0.5]);
    await settle();
    expect(unhandled).toEqual([]);
    expect(reportedErrors()).toContain(boom);
  });

  it('a MetricsRegistry now that returns a promise: the call goes on, the rejection is reported', async () => {
    const registry = new MetricsRegistry({ now: rejectLater as unknown as () => number });
    const stack = compose(new Bulkhead({ maxConcurrent: 1, name: 'b' }));
    registry.track(stack);
    await expect(stack.execute(() => 'ok')).resolves.toBe('ok');
    await settle();
    expect(unhandled).toEqual([]);
    expect(reportedErrors()).toContain(boom);
  });

  it("a health handler's verbose predicate that returns a promise: the body stays terse, the rejection is reported", async () => {
    const monitor = new HealthMonitor();
    monitor.markReady();
    const handler = fetchHealthHandler(monitor, { verbose: rejectLater as unknown as () => boolean });
    const response = await handler(new Request('http://localhost/health'));
    expect(response?.status).toBe(200);
    await settle();
    expect(unhandled).toEqual([]);
    expect(reportedErrors()).toContain(boom);
  });

  it("a breaker-like's stats() that returns a promise: the check reports the state, the rejection is reported", async () => {
    const monitor = new HealthMonitor();
    monitor.addCircuitBreaker('payments', { state: 'closed', stats: rejectLater });
    const report = await monitor.check();
    expect(report.checks['payments']).toMatchObject({ status: 'pass', details: { state: 'closed' } });
    expect(report.checks['payments']?.details).not.toHaveProperty('stats');
    await settle();
    expect(unhandled).toEqual([]);
    expect(reportedErrors()).toContain(boom);
  });
});

describe('in a real Node process', () => {
  it('an async failure listener that throws does not end the process: it exits 0 and the error is printed', async () => {
    const script = `
      const { CircuitBreaker } = await import(${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)});
      const breaker = new CircuitBreaker();
      breaker.on('failure', async () => { throw new Error('boom from a listener'); });
      await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 20));
      console.log('still running');
    `;
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { timeout: 15_000 });
    expect(stdout.trim()).toBe('still running');
    expect(stderr).toContain('boom from a listener');
  }, 20_000);
});
