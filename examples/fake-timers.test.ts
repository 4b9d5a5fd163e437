/**
 * Testing code that uses bulwark with fake timers: the example of docs/testing.md, run by `npm test`.
 * The default clock looks up the timer functions at each call, so `vi.useFakeTimers()`
 * installed after bulwark was imported drives retries, timeouts and breaker recovery.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { CircuitBreaker, retryWithBackoff, withTimeout } from 'bulwark';

afterEach(() => {
  vi.useRealTimers();
});

it('retries after the backoff delay', async () => {
  vi.useFakeTimers();
  const fn = vi.fn().mockRejectedValueOnce(new Error('blip')).mockResolvedValue('ok');
  const result = retryWithBackoff({ baseDelay: 100, jitter: 'none' }).execute(fn);
  await vi.advanceTimersByTimeAsync(99);
  expect(fn).toHaveBeenCalledTimes(1);
  await vi.advanceTimersByTimeAsync(1);
  await expect(result).resolves.toBe('ok');
});

it('lets a trial through after the recovery timeout', async () => {
  vi.useFakeTimers();
  const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 30_000 });
  await expect(breaker.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
  expect(breaker.state).toBe('open');
  vi.advanceTimersByTime(30_000);
  expect(breaker.state).toBe('half-open');
});

it('times out a call that never answers', async () => {
  vi.useFakeTimers();
  const result = withTimeout(2_000).execute(() => new Promise<never>(() => {}));
  const assertion = expect(result).rejects.toMatchObject({ name: 'TimeoutError', timeout: 2_000 });
  await vi.advanceTimersByTimeAsync(2_000);
  await assertion;
});
