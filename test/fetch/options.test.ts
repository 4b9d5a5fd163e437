/**
 * resilientFetch's options, checked when the client is built: each bad value a TypeError or
 * RangeError naming the option and the value, unknown keys refused with the peers' names
 * mapped to ours, the keys it sets itself refused, and the extremes of every accepted value.
 */
import { MetricsRegistry } from 'bulwark';
import { resilientFetch, type ResilientFetchOptions } from 'bulwark/fetch';
import { describe, expect, it } from 'vitest';

const ok: typeof fetch = async () => new Response('ok');

describe('resilientFetch options', () => {
  it.each([
    [{ timeout: 1_000 }, /no option "timeout" \(another library's name: bulwark's is "totalTimeout" \(the whole call\) or "attemptTimeout"/],
    [{ TotalRequestTimeout: 1_000 }, /bulwark's is "totalTimeout"/],
    [{ AttemptTimeout: 1_000 }, /bulwark's is "attemptTimeout"/],
    [{ CircuitBreaker: {} }, /bulwark's is "breaker"/],
    [{ retries: 2 }, /bulwark's is "retry": \{ maxRetries \}/],
    [{ throwHttpErrors: true }, /bulwark's is "throwOnTransient"/],
    [{ atemptTimeout: 1 }, /did you mean "attemptTimeout"/],
  ])('refuses the unknown option %o, naming ours', (options, message) => {
    expect(() => resilientFetch(options as ResilientFetchOptions)).toThrow(TypeError);
    expect(() => resilientFetch(options as ResilientFetchOptions)).toThrow(message);
  });

  it.each([
    [{ totalTimeout: -1 }, RangeError, /resilientFetch totalTimeout must be a duration.*got -1/],
    [{ attemptTimeout: Number.NaN }, RangeError, /resilientFetch attemptTimeout must be a number, got NaN/],
    [{ maxRetryAfter: -5 }, RangeError, /resilientFetch maxRetryAfter .*got -5/],
    [{ maxOrigins: 0 }, RangeError, /resilientFetch maxOrigins must be a whole number ≥ 1 or Infinity, got 0/],
    [{ maxOrigins: 1.5 }, RangeError, /maxOrigins/],
    [{ name: '' }, RangeError, /resilientFetch name must not be empty/],
    [{ name: 42 }, TypeError, /resilientFetch name must be a string, got 42/],
    [{ fetch: 'fetch' }, TypeError, /resilientFetch fetch must be a function, got "fetch"/],
    [{ transient: 503 }, TypeError, /resilientFetch transient must be a list of statuses or a function/],
    [{ transient: [503, 'x'] }, RangeError, /HTTP statuses .*got "x"/],
    [{ transient: [42] }, RangeError, /got 42/],
    [{ retryNonIdempotent: 'yes' }, TypeError, /resilientFetch retryNonIdempotent must be true or false/],
    [{ throwOnTransient: 1 }, TypeError, /resilientFetch throwOnTransient must be true or false/],
    [{ metrics: {} }, TypeError, /resilientFetch metrics must be a MetricsRegistry/],
    [{ clock: {} }, TypeError, /resilientFetch clock must be a Clock/],
    [{ retry: true }, TypeError, /resilientFetch retry must be an object or false, got true/],
    [{ breaker: 'off' }, TypeError, /resilientFetch breaker must be an object or false/],
    [{ hedge: false }, TypeError, /resilientFetch hedge must be an object, got false/],
    [{ retry: { maxRetries: -1 } }, RangeError, /retryWithBackoff maxRetries/],
    [{ retry: { retries: 2 } }, TypeError, /retryWithBackoff has no option "retries"/],
    [{ breaker: { failureThreshold: 0 } }, RangeError, /failureThreshold/],
    [{ hedge: { maxHedgedAttempts: 11 } }, RangeError, /hedge maxHedgedAttempts/],
    [{ rateLimit: { rate: 0 } }, RangeError, /rate/],
    [{ bulkhead: { maxConcurrent: 0 } }, RangeError, /maxConcurrent/],
  ])('refuses %o', (options, kind, message) => {
    expect(() => resilientFetch(options as unknown as ResilientFetchOptions)).toThrow(kind);
    expect(() => resilientFetch(options as unknown as ResilientFetchOptions)).toThrow(message);
  });

  it.each([
    ['retry', 'retryOnResult', /resilientFetch retry.retryOnResult is set by resilientFetch itself \(from "transient"\)/],
    ['retry', 'delay', /retry.delay is set by resilientFetch itself \(from Retry-After/],
    ['retry', 'name', /give resilientFetch a "name"/],
    ['retry', 'clock', /give resilientFetch a "clock"/],
    ['breaker', 'isFailureResult', /breaker.isFailureResult/],
    ['breaker', 'initialState', /restore one with client.breakers.get\(origin\).restore\(snapshot\)/],
    ['hedge', 'hedgeOnResult', /hedge.hedgeOnResult/],
    ['rateLimit', 'name', /rateLimit.name/],
    ['bulkhead', 'clock', /bulkhead.clock/],
  ])('refuses %s.%s, which it sets itself', (option, key, message) => {
    const options = { [option]: { ...(option === 'rateLimit' ? { rate: 1 } : option === 'bulkhead' ? { maxConcurrent: 1 } : {}), [key]: undefined } };
    expect(() => resilientFetch(options as ResilientFetchOptions)).toThrow(message);
  });

  it.each([
    { totalTimeout: 0 },
    { totalTimeout: Infinity, attemptTimeout: Infinity },
    { attemptTimeout: 1 },
    { maxRetryAfter: 0 },
    { maxRetryAfter: Infinity },
    { maxOrigins: 1 },
    { maxOrigins: Infinity },
    { retry: { maxRetries: 0 } },
    { retry: { maxRetries: Infinity } },
    { retry: false, breaker: false },
    { hedge: { maxHedgedAttempts: 0 } },
    { hedge: { delay: 0, maxHedgedAttempts: 10 } },
    { transient: [] },
    { rateLimit: { rate: 1_000_000 }, bulkhead: { maxConcurrent: 1, maxQueue: Infinity } },
    { metrics: new MetricsRegistry(), name: 'x' },
  ])('accepts %o, and a call through it works', async (options) => {
    // A fetch that answers at once: even a timeout of 0 lets it through (no timer fires in the turn it answered in).
    const api = resilientFetch({ fetch: ok, ...options } as ResilientFetchOptions<typeof ok>);
    expect(await (await api('https://a.test/')).text()).toBe('ok');
  });

  it('refuses options that are not an object', () => {
    expect(() => resilientFetch(42 as unknown as ResilientFetchOptions)).toThrow(/resilientFetch options must be an object, got 42/);
  });

  it('refuses an unknown event', () => {
    expect(() => resilientFetch().on('retry' as 'response', () => undefined)).toThrow(/Unknown event "retry": expected one of "response", "requestFailed"/);
  });
});
