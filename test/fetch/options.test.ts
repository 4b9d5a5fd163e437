/**
 * resilientFetch's options, checked when the client is built: each bad value a TypeError or
 * RangeError naming the option and the value, unknown keys refused with the peers' names
 * mapped to ours, the keys it sets itself refused, and the extremes of every accepted value.
 */
import { MetricsRegistry, isTimeoutError } from 'bulwark';
import { resilientFetch, type ResilientFetchOptions } from 'bulwark/fetch';
import { afterEach, describe, expect, it, vi } from 'vitest';

const ok: typeof fetch = async () => new Response('ok');

/** The error `make` throws (the test fails if it throws none). */
function refused(make: () => unknown): Error {
  try {
    make();
  } catch (error) {
    return error as Error;
  }
  throw new Error('accepted');
}

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

  const known = '"fetch", "totalTimeout", "attemptTimeout", "retry", "breaker", "hedge", "rateLimit", "bulkhead", "transient", "retryNonIdempotent", "throwOnTransient", "maxRetryAfter", "maxOrigins", "name", "metrics", "clock"';

  it.each([
    ['TotalRequestTimeout', '"totalTimeout"'],
    ['totalRequestTimeout', '"totalTimeout"'],
    ['AttemptTimeout', '"attemptTimeout"'],
    ['timeout', '"totalTimeout" (the whole call) or "attemptTimeout" (one attempt)'],
    ['Retry', '"retry"'],
    ['retries', '"retry": { maxRetries }'],
    ['limit', '"retry": { maxRetries }'],
    ['CircuitBreaker', '"breaker"'],
    ['circuitBreaker', '"breaker"'],
    ['Hedging', '"hedge"'],
    ['hedging', '"hedge"'],
    ['RateLimiter', '"rateLimit"'],
    ['rateLimiter', '"rateLimit"'],
    ['concurrency', '"bulkhead": { maxConcurrent }'],
    ['statusCodes', '"transient" (a list of statuses)'],
    ['shouldHandle', '"transient"'],
    ['throwHttpErrors', '"throwOnTransient"'],
    ['methods', '"retryNonIdempotent" (GET, HEAD, OPTIONS, TRACE, PUT and DELETE are retried)'],
    ['maxRetryAfterDelay', '"maxRetryAfter"'],
    ['ShouldRetryAfterHeader', 'none: Retry-After is always honoured, up to "maxRetryAfter"'],
  ])('maps Polly\'s, ky\'s or got\'s option %s to ours, listing every known option', (peer, ours) => {
    const error = refused(() => resilientFetch({ [peer]: 1 } as ResilientFetchOptions));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(`resilientFetch has no option "${peer}" (another library's name: bulwark's is ${ours}); known options: ${known}`);
  });

  const why: Record<string, string> = {
    name: 'each origin\'s policies are named "<name>:<origin>": give resilientFetch a "name"',
    clock: 'give resilientFetch a "clock"',
    retryOnResult: 'from "transient"',
    isFailureResult: 'from "transient"',
    hedgeOnResult: 'from "transient"',
    delay: 'from Retry-After; the backoff is "baseDelay", "maxDelay", "exponentialBase" and "jitter"',
    initialState: 'one breaker per origin: restore one with client.breakers.get(origin).restore(snapshot)',
  };
  const reserved: [string, string][] = [
    ...['retryOnResult', 'delay', 'name', 'clock'].map((key): [string, string] => ['retry', key]),
    ...['isFailureResult', 'name', 'clock', 'initialState'].map((key): [string, string] => ['breaker', key]),
    ...['hedgeOnResult', 'name', 'clock'].map((key): [string, string] => ['hedge', key]),
    ...['name', 'clock'].map((key): [string, string] => ['rateLimit', key]),
    ...['name', 'clock'].map((key): [string, string] => ['bulkhead', key]),
  ];

  it.each(reserved)('refuses %s.%s with a TypeError saying which option of its own sets it', (option, key) => {
    const error = refused(() => resilientFetch({ [option]: { [key]: undefined } } as ResilientFetchOptions));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(`resilientFetch ${option}.${key} is set by resilientFetch itself (${why[key]})`);
  });

  it.each([
    ['retry', ' or false'],
    ['breaker', ' or false'],
    ['hedge', ''],
    ['rateLimit', ''],
    ['bulkhead', ''],
  ])('refuses a %s option that is not an object (null, an array, a number)', (option, orFalse) => {
    for (const [value, shown] of [[null, 'null'], [[], 'an array'], [3, '3']] as const) {
      const error = refused(() => resilientFetch({ [option]: value } as unknown as ResilientFetchOptions));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe(`resilientFetch ${option} must be an object${orFalse}, got ${shown}`);
    }
  });

  it.each([
    [[99], '99'],
    [[1_000], '1000'],
    [[503, 2.5], '2.5'],
    [[Number.NaN], 'NaN'],
  ])('refuses transient %o: HTTP statuses are whole numbers from 100 to 999', (statuses, shown) => {
    const error = refused(() => resilientFetch({ transient: statuses }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe(`resilientFetch transient must list HTTP statuses (whole numbers from 100 to 999), got ${shown}`);
  });

  it('takes transient statuses from 100 to 999, and only those listed are retried', async () => {
    const statuses = [100, 200, 999, 200];
    let calls = 0;
    const api = resilientFetch({ transient: [100, 999], retry: { baseDelay: 0 }, fetch: async (_input: string) => ({ status: statuses[calls++]!, headers: new Headers(), body: null }) });
    expect((await api('https://a.test/')).status).toBe(200);
    expect((await api('https://a.test/')).status).toBe(200);
    expect(calls).toBe(4);
  });

  it('takes transient as a function of the response, which must answer synchronously', async () => {
    let calls = 0;
    const teapot = async (_input: string): Promise<Response> => new Response('', { status: calls++ === 0 ? 418 : 200 });
    const byFunction = resilientFetch({ fetch: teapot, retry: { baseDelay: 0 }, transient: (response) => response.status === 418 });
    expect((await byFunction('https://a.test/')).status).toBe(200);
    expect(calls).toBe(2);
    const asynchronous = resilientFetch({ fetch: teapot, retry: { baseDelay: 0 }, transient: (async () => true) as unknown as () => boolean });
    const error = await asynchronous('https://a.test/').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('resilientFetch transient must return its answer synchronously, got a promise (an async function?)');
    expect(calls).toBe(3);
  });

  it.each([
    ['an object with track() alone', { track: () => undefined }, 'an object'],
    ['an object with snapshot() alone', { snapshot: () => undefined }, 'an object'],
    ['null', null, 'null'],
  ])('refuses metrics that is %s', (_kind, metrics, shown) => {
    const error = refused(() => resilientFetch({ metrics } as unknown as ResilientFetchOptions));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(`resilientFetch metrics must be a MetricsRegistry, got ${shown}`);
  });

  it('refuses options that are not an object', () => {
    expect(() => resilientFetch(42 as unknown as ResilientFetchOptions)).toThrow(/resilientFetch options must be an object, got 42/);
  });

  it('refuses an unknown event', () => {
    expect(() => resilientFetch().on('retry' as 'response', () => undefined)).toThrow(/Unknown event "retry": expected one of "response", "requestFailed"/);
  });
});

describe('resilientFetch defaults', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A fetch answering `status` to every request, noting when each came (ms since the test began). */
  function answering(status: number): { fetch: typeof fetch; at: number[] } {
    const start = Date.now();
    const at: number[] = [];
    return { at, fetch: async () => (at.push(Date.now() - start), new Response('answer', { status })) };
  }

  it('retries a transient response 3 times, from 2 s and doubling (jitter drawn at its middle)', async () => {
    vi.useFakeTimers();
    const server = answering(503);
    const answer = resilientFetch({ fetch: server.fetch, retry: { random: () => 0.5 } })('https://a.test/');
    await vi.advanceTimersByTimeAsync(20_000);
    expect((await answer).status).toBe(503);
    expect(server.at).toEqual([0, 2_000, 6_000, 14_000]);
  });

  it('aborts an attempt after 10 s and rejects the call with a TimeoutError after 30 s', async () => {
    vi.useFakeTimers();
    const start = Date.now();
    const at: number[] = [];
    const hanging: typeof fetch = (_input, init) => {
      at.push(Date.now() - start);
      return new Promise((_resolve, reject) => init!.signal!.addEventListener('abort', () => reject(init!.signal!.reason)));
    };
    const answer = resilientFetch({ fetch: hanging, retry: { random: () => 0.5 } })('https://a.test/');
    const settled = answer.then(() => 'answered', (error: unknown) => error);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(at).toEqual([0, 12_000, 26_000]);
    let done = false;
    void settled.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(await settled)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('opens an origin\'s circuit once 10 % of at least 100 calls failed, for 5 s', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const api = resilientFetch({ retry: false, fetch: async (_input: string) => new Response('', { status: ++calls % 10 === 0 ? 503 : 200 }) });
    for (let i = 0; i < 99; i++) await api('https://a.test/');
    expect(api.breakers!.get('https://a.test').state).toBe('closed');
    expect((await api('https://a.test/')).status).toBe(503);
    expect(api.breakers!.get('https://a.test').state).toBe('open');
    await expect(api('https://a.test/')).rejects.toMatchObject({ name: 'CircuitOpenError' });
    expect(calls).toBe(100);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(api.breakers!.get('https://a.test').state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(api.breakers!.get('https://a.test').state).toBe('half-open');
  });

  it('waits for a Retry-After up to 60 s', async () => {
    vi.useFakeTimers();
    const start = Date.now();
    const at: number[] = [];
    const asks = (seconds: number): typeof fetch => async () => {
      at.push(Date.now() - start);
      return new Response('', { status: at.length === 1 ? 503 : 200, headers: { 'retry-after': String(seconds) } });
    };
    const answer = resilientFetch({ fetch: asks(60), retry: { random: () => 0.5 }, totalTimeout: Infinity })('https://a.test/');
    await vi.advanceTimersByTimeAsync(60_000);
    expect((await answer).status).toBe(200);
    expect(at).toEqual([0, 60_000]);
    at.length = 0;
    const refused = await resilientFetch({ fetch: asks(61), totalTimeout: Infinity })('https://a.test/');
    expect(refused.status).toBe(503);
    expect(at).toHaveLength(1);
  });

  it('names each origin\'s policies "fetch:<origin>"', () => {
    const registry = new MetricsRegistry();
    const api = resilientFetch({ fetch: ok, metrics: registry });
    api.policyOf('https://a.test/x');
    expect(registry.snapshot().policies.map((policy) => policy.name)).toContain('fetch:https://a.test');
  });
});

describe('resilientFetch clock', () => {
  it('is the clock of each origin\'s breaker: its circuit recovers on that clock\'s time', async () => {
    let now = 1_000_000;
    const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined };
    let calls = 0;
    const api = resilientFetch({ clock, retry: false, totalTimeout: Infinity, attemptTimeout: Infinity, fetch: async (_input: string) => new Response('', { status: ++calls % 10 === 0 ? 503 : 200 }) });
    for (let i = 0; i < 100; i++) await api('https://a.test/');
    const breaker = api.breakers!.get('https://a.test');
    expect(breaker.state).toBe('open');
    now += 5_000;
    expect(breaker.state).toBe('half-open');
  });
});
