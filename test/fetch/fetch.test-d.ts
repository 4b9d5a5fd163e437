/**
 * The types of bulwark/fetch: a resilient fetch is the fetch it runs, to the type: `typeof
 * fetch` by default (RequestInfo | URL and RequestInit in, Promise<Response> out), undici's own
 * signature with undici's fetch.
 */
import { CircuitBreakerGroup, MetricsRegistry, type Policy } from 'bulwark';
import { HttpError, isHttpError, resilientFetch, type ResilientFetch, type ResilientFetchEvents } from 'bulwark/fetch';
import { fetch as undiciFetch, type Response as UndiciResponse } from 'undici';
import { describe, expectTypeOf, it } from 'vitest';

describe('resilientFetch types', () => {
  it('is a fetch: assignable to typeof fetch, taking RequestInfo | URL and RequestInit', () => {
    const api = resilientFetch();
    expectTypeOf(api).toMatchTypeOf<typeof fetch>();
    const asFetch: typeof fetch = api;
    expectTypeOf(asFetch).toBeFunction();
    expectTypeOf(api).parameter(0).toEqualTypeOf<RequestInfo | URL>();
    expectTypeOf(api).parameter(1).toEqualTypeOf<RequestInit | undefined>();
    expectTypeOf(api('https://api.example.com')).toEqualTypeOf<Promise<Response>>();
    expectTypeOf(api(new URL('https://api.example.com'), { method: 'POST', body: new URLSearchParams() })).toEqualTypeOf<Promise<Response>>();
    expectTypeOf(api(new Request('https://api.example.com'))).toEqualTypeOf<Promise<Response>>();
    // @ts-expect-error a number is no URL
    void api(42);
    // @ts-expect-error init is RequestInit
    void api('https://api.example.com', { method: 1 });
  });

  it('takes the signature of the fetch it runs: undici\'s', () => {
    const api = resilientFetch({ fetch: undiciFetch });
    expectTypeOf(api('https://api.example.com')).toEqualTypeOf<Promise<UndiciResponse>>();
    expectTypeOf(api).parameters.toEqualTypeOf<Parameters<typeof undiciFetch>>();
    resilientFetch({ fetch: undiciFetch, transient: (response) => expectTypeOf(response).toEqualTypeOf<UndiciResponse>() === undefined });
  });

  it('has its members, typed', () => {
    const api: ResilientFetch = resilientFetch({ metrics: new MetricsRegistry(), name: 'api' });
    expectTypeOf(api.breakers).toEqualTypeOf<CircuitBreakerGroup | undefined>();
    expectTypeOf(api.policyOf('https://api.example.com')).toEqualTypeOf<Policy>();
    expectTypeOf(api.origins()).toEqualTypeOf<string[]>();
    api.on('requestFailed', (payload) => expectTypeOf(payload).toEqualTypeOf<ResilientFetchEvents['requestFailed']>());
    // @ts-expect-error no such event
    api.on('retry', () => undefined);
  });

  it('types its options', () => {
    resilientFetch({ transient: [503, 429], retry: { maxRetries: 2, jitter: 'full' }, breaker: false, hedge: { delay: 200 }, bulkhead: { maxConcurrent: 10 }, rateLimit: { rate: 50 } });
    resilientFetch({ transient: (response) => expectTypeOf(response).toEqualTypeOf<Response>() === undefined });
    // @ts-expect-error the retry's result predicate is resilientFetch's own
    resilientFetch({ retry: { retryOnResult: () => true } });
    // @ts-expect-error the breaker's result predicate is resilientFetch's own
    resilientFetch({ breaker: { isFailureResult: () => true } });
    // @ts-expect-error hedge has no `false`: leave it out
    resilientFetch({ hedge: false });
  });

  it('narrows an HttpError', () => {
    const error: unknown = undefined;
    if (isHttpError(error)) expectTypeOf(error.status).toEqualTypeOf<number>();
    expectTypeOf(new HttpError(new Response(), 'GET', 'https://a.test', 1).response).toEqualTypeOf<Response>();
  });
});
