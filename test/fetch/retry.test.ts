/**
 * Transient failures and Retry-After, against a real server with Node's fetch and undici's:
 * what is retried, what is returned, what is thrown, and when a retry may start.
 */
import { isTimeoutError } from 'bulwark';
import { HttpError, isHttpError, resilientFetch } from 'bulwark/fetch';
import { describe, expect, it } from 'vitest';
import { clock, fetches, useServer } from './fixtures.js';

const handle = useServer();
const quick = { baseDelay: 10, jitter: 'none' } as const;

describe.each(fetches)('with %s', (_name, fetch) => {
  const url = (path = '/'): string => `${handle.server.origin}${path}`;

  describe('transient failures', () => {
    it('retries a burst of 5xx and answers with the response that ended it', async () => {
      handle.server.script({ status: 500 }, { status: 502 }, { status: 503 }, { status: 200, body: 'fine' });
      const api = resilientFetch({ fetch, clock, retry: quick });
      const response = await api(url());
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('fine');
      expect(handle.server.requests).toHaveLength(4);
    });

    it.each([408, 429, 500, 501, 504, 599])('retries %i', async (status) => {
      handle.server.script({ status });
      const response = await resilientFetch({ fetch, clock, retry: quick })(url());
      expect(response.status).toBe(200);
      expect(handle.server.requests).toHaveLength(2);
    });

    it.each([400, 401, 403, 404, 409, 422, 301, 304])('returns %i at once, never thrown nor retried', async (status) => {
      handle.server.script(status === 304 ? { status } : { status, body: 'no' });
      const response = await resilientFetch({ fetch, clock, retry: quick, throwOnTransient: true })(url(), { redirect: 'manual' });
      expect(response.status).toBe(status);
      expect(handle.server.requests).toHaveLength(1);
    });

    it('returns the last response, its body unread, once the retries are spent', async () => {
      handle.server.script({ status: 503, body: 'one' }, { status: 503, body: 'two' }, { status: 503, body: 'three' });
      const response = await resilientFetch({ fetch, clock, retry: { ...quick, maxRetries: 2 } })(url());
      expect(response.status).toBe(503);
      expect(response.bodyUsed).toBe(false);
      expect(await response.text()).toBe('three');
      expect(handle.server.requests).toHaveLength(3);
    });

    it('throws an HttpError with the status, method and origin instead, with throwOnTransient', async () => {
      handle.server.otherwise({ status: 503, body: 'down for maintenance' });
      const api = resilientFetch({ fetch, clock, retry: { ...quick, maxRetries: 1 }, throwOnTransient: true });
      const error = await api(url('/accounts/42?token=secret-token'), { headers: { authorization: 'Bearer secret-header' } }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(HttpError);
      expect(isHttpError(error)).toBe(true);
      const httpError = error as HttpError;
      expect({ status: httpError.status, method: httpError.method, origin: httpError.origin, attempts: httpError.attempts }).toEqual({ status: 503, method: 'GET', origin: handle.server.origin, attempts: 2 });
      expect(httpError.message).toBe(`GET ${handle.server.origin} answered 503 after 2 attempts`);
      expect(httpError.message).not.toMatch(/secret|accounts/);
      expect(await httpError.response.text()).toBe('down for maintenance');
    });

    it('takes the transient statuses from a list or a function', async () => {
      handle.server.script({ status: 418 }, { status: 503 });
      const byList = await resilientFetch({ fetch, clock, retry: quick, transient: [418] })(url());
      expect(byList.status).toBe(503);
      expect(handle.server.requests).toHaveLength(2);
      handle.server.reset();
      handle.server.script({ status: 200, headers: { 'x-retry': 'yes' } });
      const byFunction = await resilientFetch({ fetch, clock, retry: quick, transient: (response) => response.headers.get('x-retry') === 'yes' })(url());
      expect(byFunction.status).toBe(200);
      expect(handle.server.requests).toHaveLength(2);
    });

    it('refuses a transient function that throws or answers with a promise: the call rejects with it, without retry', async () => {
      const broken = new Error('broken predicate');
      const throwing = resilientFetch({ fetch, clock, retry: quick, transient: () => { throw broken; } });
      await expect(throwing(url())).rejects.toBe(broken);
      expect(handle.server.requests).toHaveLength(1);
      const asynchronous = resilientFetch({ fetch, clock, retry: quick, transient: (async () => true) as unknown as () => boolean });
      await expect(asynchronous(url())).rejects.toThrow(/synchronously/);
      expect(handle.server.requests).toHaveLength(2);
    });

    it('retries a connection reset, and rejects with the network error once the retries are spent', async () => {
      handle.server.script({ reset: true }, { status: 200, body: 'back' });
      const api = resilientFetch({ fetch, clock, retry: { ...quick, maxRetries: 1 } });
      expect(await (await api(url())).text()).toBe('back');
      handle.server.script({ reset: true }, { reset: true });
      await expect(api(url())).rejects.toBeInstanceOf(TypeError);
      expect(handle.server.requests).toHaveLength(4);
    });

    it('aborts an attempt that hangs past attemptTimeout and retries it', async () => {
      handle.server.script({ hang: true }, { status: 200, body: 'second' });
      const api = resilientFetch({ fetch, clock, retry: quick, attemptTimeout: 1_000 });
      const response = await api(url());
      expect(await response.text()).toBe('second');
      expect(handle.server.requests).toHaveLength(2);
    });

    it('rejects with a TimeoutError at totalTimeout, whatever the attempts are doing', async () => {
      handle.server.otherwise({ hang: true });
      const api = resilientFetch({ fetch, clock, retry: quick, attemptTimeout: 1_000, totalTimeout: 2_500 });
      const error = await api(url()).catch((caught: unknown) => caught);
      expect(isTimeoutError(error)).toBe(true);
      expect(handle.server.requests.length).toBeGreaterThanOrEqual(2);
    });

    it('sends once with retry: false', async () => {
      handle.server.script({ status: 503 });
      const response = await resilientFetch({ fetch, clock, retry: false })(url());
      expect(response.status).toBe(503);
      expect(handle.server.requests).toHaveLength(1);
    });

    it('reads a slow body after its headers, beyond attemptTimeout (the timeout bounds the wait for the headers)', async () => {
      handle.server.script({ slowBody: { chunks: 3, every: 15 } });
      const response = await resilientFetch({ fetch, clock, attemptTimeout: 1_000 })(url());
      expect(await response.text()).toBe('chunk 1\nchunk 2\nchunk 3\n');
    });
  });

  describe('Retry-After', () => {
    it('in seconds: the retry never starts before it allows, even when the backoff is shorter', async () => {
      handle.server.script({ status: 429, retryAfter: 3 }, { status: 503, retryAfter: 1 }, { status: 200 });
      const response = await resilientFetch({ fetch, clock, retry: quick })(url());
      expect(response.status).toBe(200);
      const [first, second, third] = handle.server.requests;
      expect(second!.at).toBeGreaterThanOrEqual(first!.notBefore!);
      expect(third!.at).toBeGreaterThanOrEqual(second!.notBefore!);
    });

    it('as an HTTP date: read against the response\'s Date header, so a server clock an hour ahead asks for its 2 s', async () => {
      handle.server.script({ status: 503, retryAfter: { date: 2 }, dateOffset: 3_600_000 }, { status: 200 });
      const start = clock.now();
      const response = await resilientFetch({ fetch, clock, retry: quick })(url());
      expect(response.status).toBe(200);
      const [first, second] = handle.server.requests;
      expect(second!.at).toBeGreaterThanOrEqual(first!.notBefore!);
      // Not an hour: the wait is measured on the server's clock, from its Date header.
      expect(second!.at - start).toBeLessThan(60_000);
    });

    it('as an HTTP date with no Date header: read against the client\'s clock', async () => {
      handle.server.script({ status: 503, retryAfter: { date: 2 }, dateOffset: false }, { status: 200 });
      const response = await resilientFetch({ fetch, clock, retry: quick })(url());
      expect(response.status).toBe(200);
      const [first, second] = handle.server.requests;
      expect(second!.at).toBeGreaterThanOrEqual(first!.notBefore!);
    });

    it('waits the backoff when it is longer than the Retry-After', async () => {
      handle.server.script({ status: 503, retryAfter: 0 }, { status: 200 });
      await resilientFetch({ fetch, clock, retry: { baseDelay: 3_000, jitter: 'none' } })(url());
      const [first, second] = handle.server.requests;
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(3_000);
    });

    it('ignores a Retry-After it cannot read (the backoff applies)', async () => {
      handle.server.script({ status: 503, retryAfter: 'soon' }, { status: 200 });
      expect((await resilientFetch({ fetch, clock, retry: quick })(url())).status).toBe(200);
    });

    it('returns the response at once when the Retry-After is beyond maxRetryAfter', async () => {
      handle.server.script({ status: 503, retryAfter: 120, body: 'later' });
      const start = clock.now();
      const response = await resilientFetch({ fetch, clock, retry: quick, maxRetryAfter: 60_000 })(url());
      expect(response.status).toBe(503);
      expect(await response.text()).toBe('later');
      expect(handle.server.requests).toHaveLength(1);
      expect(clock.now() - start).toBeLessThan(10_000);
    });

    it('returns the response at once when the wait would outlast the total timeout', async () => {
      handle.server.script({ status: 429, retryAfter: 20 });
      const start = clock.now();
      const response = await resilientFetch({ fetch, clock, retry: quick, totalTimeout: 10_000 })(url());
      expect(response.status).toBe(429);
      expect(handle.server.requests).toHaveLength(1);
      expect(clock.now() - start).toBeLessThan(10_000);
    });

    it('returns the response at once when the backoff itself would outlast the total timeout', async () => {
      handle.server.script({ status: 503 });
      const response = await resilientFetch({ fetch, clock, retry: { baseDelay: 20_000, jitter: 'none' }, totalTimeout: 10_000 })(url());
      expect(response.status).toBe(503);
      expect(handle.server.requests).toHaveLength(1);
    });
  });
});
