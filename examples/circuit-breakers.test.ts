/**
 * Runs the examples of examples/circuit-breakers.ts that show behaviour: saved state across a
 * restart, Retry-After from a refusal, isFailure, the per-host group and the backoff.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { CircuitBreaker } from 'bulwark';
import { HttpError, backingOff, clientErrorsAreFine, fetchThroughHost, handClock, handle, perHost, restoredPaymentsBreaker, type SnapshotStore } from './circuit-breakers.js';

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function memoryStore(): SnapshotStore & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    get: async (key) => data.get(key),
    set: async (key, value) => {
      data.set(key, value);
    },
  };
}

it('a breaker saved open comes back open after a restart, and ready for a trial once its break ended', async () => {
  vi.useFakeTimers();
  const store = memoryStore();
  const before = await restoredPaymentsBreaker(store);
  for (let i = 0; i < 20; i++) await before.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
  expect(before.state).toBe('open');
  await vi.advanceTimersByTimeAsync(0); // the store write
  const afterRestart = await restoredPaymentsBreaker(store);
  expect(afterRestart.stats()).toMatchObject({ state: 'open', retryAfter: 30_000 });
  vi.advanceTimersByTime(30_000);
  const afterColdStart = await restoredPaymentsBreaker(store);
  await expect(afterColdStart.execute(() => 'charged')).resolves.toBe('charged');
});

it('a snapshot from other options is refused, and the example starts fresh', async () => {
  const store = memoryStore();
  store.data.set('breaker:payments', JSON.stringify({ ...new CircuitBreaker({ failureRate: { threshold: 0.5, window: { calls: 7 } } }).toJSON(), window: { calls: 7, outcomes: [1] } }));
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  const breaker = await restoredPaymentsBreaker(store);
  expect(breaker.state).toBe('closed');
  expect(String(warn.mock.calls[0]?.[1])).toMatch(/RangeError: .*window of \{ calls: 7 \}/);
});

it('answers 503 with Retry-After in whole seconds while open', async () => {
  const clock = handClock();
  const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 30_000, clock });
  await expect(handle(breaker, () => Promise.reject(new Error('down')))).rejects.toThrow('down');
  clock.advance(500);
  await expect(handle(breaker, async () => 'never')).resolves.toEqual({ status: 503, retryAfterSeconds: 30 });
  breaker.isolate();
  await expect(handle(breaker, async () => 'never')).resolves.toEqual({ status: 503 });
});

it('counts 404s as answers, 429 and 503 as failures', async () => {
  for (let i = 0; i < 10; i++) await clientErrorsAreFine.execute(() => Promise.reject(new HttpError(404))).catch(() => undefined);
  expect(clientErrorsAreFine.state).toBe('closed');
  for (const status of [429, 503, 503, 503, 503]) await clientErrorsAreFine.execute(() => Promise.reject(new HttpError(status))).catch(() => undefined);
  expect(clientErrorsAreFine.state).toBe('open');
});

it('doubles the break at each re-opening', () => {
  const recovery = backingOff.recoveryTimeout as (opens: number) => number;
  expect([1, 2, 3, 4, 10].map(recovery)).toEqual([5_000, 10_000, 20_000, 40_000, 300_000]);
});

it('keeps one breaker per host', async () => {
  vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  vi.stubGlobal('fetch', async (url: string) => (url.includes('down.example') ? Promise.reject(new TypeError('fetch failed')) : new Response('ok')));
  for (let i = 0; i < 10; i++) await fetchThroughHost('https://down.example/a').catch(() => undefined);
  expect(perHost.get('down.example').state).toBe('open');
  await expect(fetchThroughHost('https://up.example/a')).resolves.toBeInstanceOf(Response);
  expect(perHost.get('up.example').state).toBe('closed');
});

it('a store whose write rejects is reported, and neither the call nor the process fails', async () => {
  const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const outage = new Error('store unreachable');
    const store: SnapshotStore = { get: async () => undefined, set: () => Promise.reject(outage) };
    const breaker = await restoredPaymentsBreaker(store);
    for (let i = 0; i < 20; i++) await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    expect(breaker.state).toBe('open');
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
    expect(reported.mock.calls.map((call) => call[1])).toContain(outage);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
