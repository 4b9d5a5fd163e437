import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CircuitBreaker,
  FallbackPolicy,
  compose,
  isCircuitOpenError,
  isTimeoutError,
  logPolicyEvents,
  withFallback,
  withTimeout,
  type ExecutionContext,
  type FallbackOptions,
} from '../src/index.js';
import { CountingClock } from './fixtures/clock.js';
import { collectingUnhandledRejections, hang, letNodeReportUnhandledRejections, track } from './fixtures/promises.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('withFallback: replacing a failure', () => {
  it.each<[string, () => unknown]>([
    ['rejects', () => Promise.reject(new Error('down'))],
    ['throws synchronously', () => {
      throw new Error('down');
    }],
  ])('answers with the fallback value when fn %s', async (_label, fn) => {
    await expect(withFallback('cached').execute(fn)).resolves.toBe('cached');
  });

  it('answers with the very same fallback object', async () => {
    const empty = { items: [] as string[] };
    await expect(withFallback(empty).execute(() => Promise.reject(new Error('down')))).resolves.toBe(empty);
  });

  it('calls a synchronous fallback function with the error and the call’s context', async () => {
    const error = new Error('down');
    const fallback = vi.fn((_error: unknown, ctx: ExecutionContext) => `fallback at attempt ${ctx.attempt}`);
    await expect(withFallback(fallback).execute(() => Promise.reject(error))).resolves.toBe('fallback at attempt 1');
    expect(fallback).toHaveBeenCalledTimes(1);
    expect(fallback.mock.calls[0]?.[0]).toBe(error);
    const ctx = fallback.mock.calls[0]?.[1];
    expect(ctx?.attempt).toBe(1);
    expect(ctx?.signal).toBeInstanceOf(AbortSignal);
    expect(ctx?.signal.aborted).toBe(false);
  });

  it('awaits an async fallback function', async () => {
    const policy = withFallback(async (error: unknown) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { degraded: true, cause: (error as Error).message };
    });
    const outcome = track(policy.execute(() => Promise.reject(new Error('down'))));
    await vi.advanceTimersByTimeAsync(19);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome.value).toEqual({ degraded: true, cause: 'down' });
  });

  it('passes a success through untouched without calling the fallback', async () => {
    const result = { id: 7 };
    const fallback = vi.fn(() => 'fallback');
    const policy = withFallback(fallback);
    const onFallback = vi.fn();
    policy.on('fallback', onFallback);
    await expect(policy.execute(() => Promise.resolve(result))).resolves.toBe(result);
    await expect(policy.execute(() => result)).resolves.toBe(result);
    expect(fallback).not.toHaveBeenCalled();
    expect(onFallback).not.toHaveBeenCalled();
  });

  it('answers for an open circuit inside it without running fn', async () => {
    const breaker = new CircuitBreaker();
    breaker.isolate();
    const fallback = vi.fn((error: unknown) => (isCircuitOpenError(error) ? 'circuit open' : 'other'));
    const fn = vi.fn(() => 'live');
    await expect(compose(withFallback(fallback), breaker).execute(fn)).resolves.toBe('circuit open');
    expect(fn).not.toHaveBeenCalled();
  });
});

describe('withFallback: handles', () => {
  it('rethrows the very same error when handles declines, without calling the fallback', async () => {
    const error = new Error('400 bad request');
    const handles = vi.fn(() => false);
    const fallback = vi.fn(() => 'fallback');
    await expect(withFallback(fallback, { handles }).execute(() => Promise.reject(error))).rejects.toBe(error);
    expect(handles).toHaveBeenCalledWith(error);
    expect(fallback).not.toHaveBeenCalled();
  });

  it('replaces only the errors handles accepts', async () => {
    class Unavailable extends Error {}
    const policy = withFallback('fallback', { handles: (error) => error instanceof Unavailable });
    await expect(policy.execute(() => Promise.reject(new Unavailable('503')))).resolves.toBe('fallback');
    const other = new RangeError('bug');
    await expect(policy.execute(() => Promise.reject(other))).rejects.toBe(other);
  });

  it('rejects with what a throwing handles threw', async () => {
    const broken = new Error('handles is broken');
    const fallback = vi.fn(() => 'fallback');
    const policy = withFallback(fallback, {
      handles: () => {
        throw broken;
      },
    });
    await expect(policy.execute(() => Promise.reject(new Error('down')))).rejects.toBe(broken);
    expect(fallback).not.toHaveBeenCalled();
  });
});

describe('withFallback: a failing fallback', () => {
  it('rejects with what a synchronous fallback function threw', async () => {
    const broken = new Error('fallback failed too');
    const policy = withFallback(() => {
      throw broken;
    });
    await expect(policy.execute(() => Promise.reject(new Error('down')))).rejects.toBe(broken);
  });

  it('rejects with what an async fallback function rejected with', async () => {
    const broken = new Error('fallback failed too');
    const policy = withFallback(() => Promise.reject(broken));
    await expect(policy.execute(() => Promise.reject(new Error('down')))).rejects.toBe(broken);
  });
});

describe('withFallback: caller aborts', () => {
  it.each([
    ['ignores its signal', false],
    ['rejects with signal.reason', true],
  ])('never replaces a caller abort (fn %s): rejects with signal.reason, fallback not called', async (_label, listens) => {
    const fallback = vi.fn(() => 'fallback');
    const handles = vi.fn(() => true);
    const policy = withFallback(fallback, { handles });
    const onFallback = vi.fn();
    policy.on('fallback', onFallback);
    const controller = new AbortController();
    const outcome = track(
      policy.execute(
        ({ signal }) =>
          new Promise<never>((_resolve, reject) => {
            if (listens) signal.addEventListener('abort', () => reject(signal.reason), { once: true });
            setTimeout(() => reject(new Error('late failure')), 100);
          }),
        { signal: controller.signal },
      ),
    );
    await vi.advanceTimersByTimeAsync(10);
    const reason = new Error('user cancelled');
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(500);
    expect(outcome.error).toBe(reason);
    expect(fallback).not.toHaveBeenCalled();
    expect(handles).not.toHaveBeenCalled();
    expect(onFallback).not.toHaveBeenCalled();
  });

  it('does not call fn or the fallback when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    const fallback = vi.fn(() => 'fallback');
    const fn = vi.fn(() => 'live');
    await expect(withFallback(fallback).execute(fn, { signal: controller.signal })).rejects.toBe(controller.signal.reason);
    expect(fn).not.toHaveBeenCalled();
    expect(fallback).not.toHaveBeenCalled();
  });
});

describe('withFallback with withTimeout', () => {
  it('runs the fallback once only when fn rejects late, after the timeout inside it', async () => {
    await collectingUnhandledRejections(async (unhandled) => {
      const fallback = vi.fn((_error: unknown) => 'fallback');
      const policy = withFallback(fallback);
      const onFallback = vi.fn();
      policy.on('fallback', onFallback);
      const outcome = track(
        compose(policy, withTimeout(10)).execute(() => new Promise((_resolve, reject) => setTimeout(() => reject(new Error('late')), 50))),
      );
      await vi.advanceTimersByTimeAsync(10);
      expect(outcome.value).toBe('fallback');
      expect(fallback).toHaveBeenCalledTimes(1);
      expect(isTimeoutError(fallback.mock.calls[0]?.[0])).toBe(true);
      await vi.advanceTimersByTimeAsync(100);
      await letNodeReportUnhandledRejections();
      expect(fallback).toHaveBeenCalledTimes(1);
      expect(onFallback).toHaveBeenCalledTimes(1);
      expect(unhandled).toEqual([]);
    });
  });

  it('does not run a fallback inside a timeout that already answered the caller', async () => {
    const fallback = vi.fn(() => 'too late');
    const outcome = track(compose(withTimeout(10), withFallback(fallback)).execute(hang));
    await vi.advanceTimersByTimeAsync(10);
    expect(isTimeoutError(outcome.error)).toBe(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(fallback).not.toHaveBeenCalled();
  });

  it('bounds a slow fallback by a timeout around it', async () => {
    const outcome = track(compose(withTimeout(30), withFallback(() => hang())).execute(() => Promise.reject(new Error('down'))));
    await vi.advanceTimersByTimeAsync(30);
    expect(isTimeoutError(outcome.error)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('withFallback: events and options', () => {
  it('emits fallback { error } with the error it replaced', async () => {
    const policy = withFallback('fallback');
    const events: { error: unknown }[] = [];
    policy.on('fallback', (event) => events.push(event));
    const error = new Error('down');
    await policy.execute(() => Promise.reject(error));
    expect(events).toHaveLength(1);
    expect(events[0]?.error).toBe(error);
  });

  it('does not emit fallback when handles declines', async () => {
    const policy = withFallback('fallback', { handles: () => false });
    const onFallback = vi.fn();
    policy.on('fallback', onFallback);
    await expect(policy.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(onFallback).not.toHaveBeenCalled();
  });

  it.each<[string, unknown]>([
    ['a non-function handles', { handles: true }],
    ['a non-string name', { name: 42 }],
    ['non-object options', 'handles'],
  ])('throws a TypeError for %s', (_label, options) => {
    expect(() => withFallback('x', options as FallbackOptions)).toThrow(TypeError);
  });

  it.each([
    ['shouldHandle', '"handles" or "handlesResult"'],
    ['errorFilter', '"handles"'],
    ['handleWhenResult', '"handlesResult"'],
  ])("refuses the peer libraries' option %s, naming bulwark's %s", (key, ours) => {
    expect(() => withFallback('x', { [key]: () => true } as FallbackOptions)).toThrow(
      new TypeError(`withFallback has no option "${key}" (another library's name: bulwark's is ${ours}); known options: "handles", "handlesResult", "name"`),
    );
  });

  it('refuses a name that is not a string with the whole rule', () => {
    expect(() => withFallback('x', { name: 7 } as unknown as FallbackOptions)).toThrow(new TypeError('withFallback name must be a string, got 7'));
  });

  it('logs the first fallback and sums up the others in one line of "N more fallbacks"', async () => {
    const lines: unknown[][] = [];
    const record = (level: string) => (...args: unknown[]) => void lines.push([level, ...args]);
    const clock = new CountingClock({ flush: () => Promise.resolve() });
    const policy = withFallback('cached', { name: 'prices' });
    logPolicyEvents(policy, { info: record('info'), warn: record('warn'), error: record('error') }, { clock, summaryInterval: 1_000 });
    for (let i = 0; i < 3; i++) await expect(policy.execute(() => Promise.reject(new Error('down')))).resolves.toBe('cached');
    await clock.advance(1_000);
    expect(lines).toEqual([
      ['info', { policy: 'prices', kind: 'fallback', event: 'fallback', error: { name: 'Error', message: 'down' } }, 'fallback "prices" answered in place of a failed call: down'],
      ['info', { policy: 'prices', kind: 'fallback', event: 'fallback', repeated: 2, intervalMs: 1_000 }, 'fallback "prices": 2 more fallbacks in the last 1000 ms'],
    ]);
  });

  it('builds a FallbackPolicy', () => {
    expect(withFallback(null)).toBeInstanceOf(FallbackPolicy);
  });
});
