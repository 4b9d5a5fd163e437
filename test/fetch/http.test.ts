/**
 * What bulwark/fetch reads of a request and a response (src/fetch/http.ts), seen through a
 * client with a hand-written fetch and fake timers: which requests are retried or hedged, what
 * a Request is sent again with, and how long a `Retry-After` makes a retry wait.
 */
import { resilientFetch } from 'bulwark/fetch';
import { afterEach, describe, expect, it, vi } from 'vitest';

interface Sent {
  readonly input: unknown;
  readonly init: Record<string, unknown>;
  readonly at: number;
}

/** A fetch answering the statuses in turn (then 200), each with `headers`, recording each request and when it came. */
function server(statuses: number[], headers: Record<string, string> = {}): { fetch: typeof fetch; sent: Sent[] } {
  const start = Date.now();
  const sent: Sent[] = [];
  const fetch = (async (input: unknown, init: Record<string, unknown>) => {
    sent.push({ input, init, at: Date.now() - start });
    return new Response('answer', { status: statuses[sent.length - 1] ?? 200, headers });
  }) as unknown as typeof globalThis.fetch;
  return { fetch, sent };
}

const once = { baseDelay: 1_000, jitter: 'none', maxRetries: 1 } as const;

afterEach(() => {
  vi.useRealTimers();
});

describe('which requests are retried', () => {
  it.each([
    ['a Map', () => new Map([['Idempotency-Key', 'order-42']])],
    ['a generator of pairs', function* () {
      yield ['x-trace', 'abc'];
      yield ['Idempotency-Key', 'order-42'];
    }],
    ['a record with other headers', () => ({ 'x-trace': 'abc', 'Idempotency-Key': 'order-42' })],
  ])('retries a POST whose Idempotency-Key header is in %s', async (_kind, headers) => {
    const { fetch, sent } = server([503]);
    const response = await resilientFetch({ fetch, retry: { baseDelay: 0 } })('https://a.test/', { method: 'POST', body: 'order', headers: headers() as HeadersInit });
    expect(response.status).toBe(200);
    expect(sent).toHaveLength(2);
  });

  it.each([
    ['pairs', [['x-trace', 'abc']]],
    ['a record', { 'x-trace': 'abc', 'x-idempotency': 'no' }],
    ['a Headers', new Headers({ 'x-trace': 'abc' })],
    ['null', null],
  ])('sends a POST without an Idempotency-Key header in %s once', async (_kind, headers) => {
    const { fetch, sent } = server([503]);
    const response = await resilientFetch({ fetch, retry: { baseDelay: 0 } })('https://a.test/', { method: 'POST', body: 'order', headers: headers as HeadersInit });
    expect(response.status).toBe(503);
    expect(sent).toHaveLength(1);
  });

  it('sends a body of no type fetch can send again (a number) once', async () => {
    const { fetch, sent } = server([503]);
    const response = await resilientFetch({ fetch, retry: { baseDelay: 0 } })('https://a.test/', { method: 'PUT', body: 42 } as unknown as RequestInit);
    expect(response.status).toBe(503);
    expect(sent).toHaveLength(1);
  });

  it('sends a SharedArrayBuffer body again on every attempt', async () => {
    const { fetch, sent } = server([503]);
    const body = new SharedArrayBuffer(4);
    const response = await resilientFetch({ fetch, retry: { baseDelay: 0 } })('https://a.test/', { method: 'PUT', body } as unknown as RequestInit);
    expect(response.status).toBe(200);
    expect(sent.map((request) => request.init['body'])).toEqual([body, body]);
  });
});

describe('which responses are transient by default', () => {
  /** A fetch answering `status`, then 200, with responses of the least shape (any status a hand-written fetch may give). */
  function bare(status: number): { fetch: (input: string) => Promise<{ status: number; headers: Headers; body: null }>; calls: () => number } {
    let calls = 0;
    return { calls: () => calls, fetch: async () => ({ status: calls++ === 0 ? status : 200, headers: new Headers(), body: null }) };
  }

  it.each([408, 429, 500, 501, 599])('retries %i', async (status) => {
    const { fetch, calls } = bare(status);
    expect((await resilientFetch({ fetch, retry: { baseDelay: 0 } })('https://a.test/')).status).toBe(200);
    expect(calls()).toBe(2);
  });

  it.each([407, 409, 428, 430, 499, 600, 999])('returns %i at once', async (status) => {
    const { fetch, calls } = bare(status);
    expect((await resilientFetch({ fetch, retry: { baseDelay: 0 } })('https://a.test/')).status).toBe(status);
    expect(calls()).toBe(1);
  });
});

describe('which requests are hedged', () => {
  it.each(['GET', 'HEAD', 'OPTIONS', 'TRACE'])('hedges %s, a read', async (method) => {
    const { fetch, sent } = server([503]);
    const response = await resilientFetch({ fetch, retry: false, hedge: { delay: 60_000 } })('https://a.test/', { method });
    expect(response.status).toBe(200);
    expect(sent.map((request) => request.init['method'])).toEqual([method, method]);
  });

  it.each(['PUT', 'DELETE'])('retries %s but never hedges it', async (method) => {
    const { fetch, sent } = server([503]);
    const response = await resilientFetch({ fetch, retry: false, hedge: { delay: 60_000 } })('https://a.test/', { method });
    expect(response.status).toBe(503);
    expect(sent).toHaveLength(1);
  });
});

describe('a Request', () => {
  it('is sent again with its own settings', async () => {
    const { fetch, sent } = server([503]);
    const request = new Request('https://a.test/r', {
      redirect: 'manual', referrer: 'https://a.test/from', referrerPolicy: 'no-referrer', credentials: 'include',
      cache: 'no-store', integrity: 'sha256-abc', keepalive: true,
    });
    await resilientFetch({ fetch, retry: { baseDelay: 0 } })(request);
    expect(sent).toHaveLength(2);
    for (const { input, init } of sent) {
      expect(input).toBe('https://a.test/r');
      expect(init).toEqual({
        method: 'GET', headers: request.headers, redirect: 'manual', referrer: 'https://a.test/from', referrerPolicy: 'no-referrer',
        credentials: 'include', cache: 'no-store', integrity: 'sha256-abc', keepalive: true, signal: expect.any(AbortSignal),
      });
    }
  });

  it('is sent without the settings it left at their defaults (its referrer "about:client" is refused by some runtimes)', async () => {
    const { fetch, sent } = server([]);
    const request = new Request('https://a.test/r');
    await resilientFetch({ fetch })(request);
    expect(sent[0]!.init).toEqual({
      method: 'GET', headers: request.headers, redirect: 'follow', credentials: 'same-origin', cache: 'default', keepalive: false, signal: expect.any(AbortSignal),
    });
  });

  it.each([
    ['a url but no method', { url: 'https://a.test/', toString: (): string => 'https://b.test/' }],
    ['a method but no url', { method: 'PUT', toString: (): string => 'https://b.test/' }],
  ])('is told from an object with %s, which is passed to fetch as it is (fetch reads it as a URL)', async (_kind, input) => {
    const { fetch, sent } = server([]);
    const api = resilientFetch({ fetch });
    await api(input as unknown as string);
    expect(sent[0]!.input).toBe(input);
    expect(sent[0]!.init).toEqual({ signal: expect.any(AbortSignal) });
    expect(api.origins()).toEqual(['https://b.test']);
  });

  it('rejects null as fetch does: an invalid URL, without a request', async () => {
    const { fetch, sent } = server([]);
    await expect(resilientFetch({ fetch })(null as unknown as string)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_URL', input: 'null' });
    expect(sent).toHaveLength(0);
  });
});

describe('Retry-After', () => {
  it.each(['120abc', 'abc120'])('ignores %s, digits mixed with letters: the backoff applies', async (value) => {
    vi.useFakeTimers();
    const { fetch, sent } = server([503], { 'retry-after': value });
    const answer = resilientFetch({ fetch, retry: once })('https://a.test/');
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await answer).status).toBe(200);
    expect(sent.map((request) => request.at)).toEqual([0, 1_000]);
  });

  it('reads an HTTP date against the client\'s clock when the Date header cannot be read', async () => {
    vi.useFakeTimers({ now: Date.UTC(2030, 0, 1, 12, 0, 0) });
    const { fetch, sent } = server([503], { 'retry-after': new Date(Date.UTC(2030, 0, 1, 12, 0, 5)).toUTCString(), date: 'not a date' });
    const answer = resilientFetch({ fetch, retry: once })('https://a.test/');
    await vi.advanceTimersByTimeAsync(5_000);
    expect((await answer).status).toBe(200);
    expect(sent.map((request) => request.at)).toEqual([0, 5_000]);
  });
});
