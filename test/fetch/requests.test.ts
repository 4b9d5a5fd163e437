/**
 * Which requests may be sent twice, and that each attempt sends the same request: methods,
 * Idempotency-Key, replayable bodies, a stream sent once, a Request object, the inputs and
 * any fetch-shaped function.
 */
import { resilientFetch } from 'bulwark/fetch';
import { FormData as UndiciFormData } from 'undici';
import { describe, expect, it } from 'vitest';
import { clock, fetches, useServer } from './fixtures.js';

const handle = useServer();
const quick = { baseDelay: 10, jitter: 'none' } as const;

describe.each(fetches)('with %s', (name, fetch) => {
  const url = (path = '/'): string => `${handle.server.origin}${path}`;
  const api = (): typeof globalThis.fetch => resilientFetch({ fetch, clock, retry: quick });

  describe('methods', () => {
    it.each(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])('retries %s, an idempotent method', async (method) => {
      handle.server.script({ status: 503 });
      const response = await api()(url(), { method });
      expect(response.status).toBe(200);
      expect(handle.server.requests.map((request) => request.method)).toEqual([method, method]);
    });

    it.each(['POST', 'PATCH', 'post'])('sends %s once, returning its transient response', async (method) => {
      handle.server.script({ status: 503 });
      const response = await api()(url(), { method, body: 'x' });
      expect(response.status).toBe(503);
      expect(handle.server.requests).toHaveLength(1);
    });

    it.each([
      ['a record', { 'Idempotency-Key': 'order-42' }],
      ['a Headers', new Headers({ 'idempotency-key': 'order-42' })],
      ['pairs', [['IDEMPOTENCY-KEY', 'order-42']] as [string, string][]],
    ])('retries a POST with an Idempotency-Key header in %s', async (_kind, headers) => {
      handle.server.script({ status: 503 });
      const response = await api()(url(), { method: 'POST', body: 'order', headers });
      expect(response.status).toBe(200);
      expect(handle.server.requests.map((request) => [request.method, request.body, request.headers['idempotency-key']])).toEqual([
        ['POST', 'order', 'order-42'],
        ['POST', 'order', 'order-42'],
      ]);
    });

    it('retries every method with retryNonIdempotent', async () => {
      handle.server.script({ status: 503 }, { status: 502 });
      const response = await resilientFetch({ fetch, clock, retry: quick, retryNonIdempotent: true })(url(), { method: 'PATCH', body: 'x' });
      expect(response.status).toBe(200);
      expect(handle.server.requests).toHaveLength(3);
    });
  });

  describe('bodies', () => {
    const bodies: [string, () => BodyInit, string][] = [
      ['a string', () => 'plain text', 'plain text'],
      ['bytes', () => new TextEncoder().encode('some bytes'), 'some bytes'],
      ['an ArrayBuffer', () => new TextEncoder().encode('a buffer').buffer as ArrayBuffer, 'a buffer'],
      ['a Blob', () => new Blob(['a ', 'blob']), 'a blob'],
      ['URLSearchParams', () => new URLSearchParams({ a: '1', b: 'two' }), 'a=1&b=two'],
    ];

    it.each(bodies)('sends %s again on every attempt', async (_kind, body, expected) => {
      handle.server.script({ status: 503 }, { status: 500 });
      const response = await api()(url(), { method: 'PUT', body: body() });
      expect(response.status).toBe(200);
      expect(handle.server.requests.map((request) => request.body)).toEqual([expected, expected, expected]);
    });

    it('sends FormData again on every attempt', async () => {
      handle.server.script({ status: 503 });
      // Each fetch takes its own FormData class (undici's is not the global one).
      const form = name === 'undici fetch' ? (new UndiciFormData() as unknown as FormData) : new FormData();
      form.set('name', 'Ada');
      const response = await api()(url(), { method: 'PUT', body: form });
      expect(response.status).toBe(200);
      const [first, second] = handle.server.requests;
      expect(first!.body).toMatch(/name="name"\r\n\r\nAda/);
      expect(second!.body).toMatch(/name="name"\r\n\r\nAda/);
    });

    it('sends a stream body once and never retries it, even for an idempotent method', async () => {
      handle.server.script({ status: 503 });
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('streamed'));
          controller.close();
        },
      });
      const response = await api()(url(), { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
      expect(response.status).toBe(503);
      expect(handle.server.requests.map((request) => request.body)).toEqual(['streamed']);
    });

    it('sends a Request again from its parts: method, headers and body on every attempt', async () => {
      handle.server.script({ status: 503 });
      const request = new Request(url('/orders'), { method: 'PUT', headers: { 'x-trace': 'abc' }, body: 'from a request' });
      const response = await api()(request);
      expect(response.status).toBe(200);
      expect(handle.server.requests.map((seen) => [seen.method, seen.path, seen.headers['x-trace'], seen.body])).toEqual([
        ['PUT', '/orders', 'abc', 'from a request'],
        ['PUT', '/orders', 'abc', 'from a request'],
      ]);
    });

    it('lays init over a Request, as fetch does', async () => {
      const response = await api()(new Request(url('/a'), { method: 'PUT', body: 'request body' }), { method: 'POST', body: 'init body', headers: { 'idempotency-key': 'k' } });
      expect(response.status).toBe(200);
      expect(handle.server.requests.map((seen) => [seen.method, seen.body])).toEqual([['POST', 'init body']]);
    });
  });

  describe('inputs', () => {
    it('takes a string, a URL or a Request, and keeps the path and query string', async () => {
      const client = api();
      await client(url('/a?x=1'));
      await client(new URL(url('/b?y=2')));
      await client(new Request(url('/c?z=3')));
      expect(handle.server.requests.map((request) => request.path)).toEqual(['/a?x=1', '/b?y=2', '/c?z=3']);
    });

    it('rejects an invalid URL at once, as fetch does, without a request', async () => {
      await expect(api()('not a url')).rejects.toBeInstanceOf(TypeError);
      await expect(api()(url(), 'nonsense' as unknown as RequestInit)).rejects.toBeInstanceOf(TypeError);
      expect(handle.server.requests).toHaveLength(0);
    });
  });
});

describe('any function of fetch\'s shape', () => {
  it('runs a hand-written fetch: retries its transient responses and hands each attempt a signal of its own', async () => {
    const seen: { url: unknown; signal: AbortSignal }[] = [];
    const statuses = [503, 503, 200];
    const handMade = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      seen.push({ url: input, signal: init!.signal! });
      return new Response(`answer ${seen.length}`, { status: statuses[seen.length - 1]! });
    };
    const api = resilientFetch({ fetch: handMade, clock, retry: { baseDelay: 0 } });
    const response = await api('https://example.test/resource');
    expect(await response.text()).toBe('answer 3');
    expect(seen.map((attempt) => attempt.url)).toEqual(['https://example.test/resource', 'https://example.test/resource', 'https://example.test/resource']);
    expect(new Set(seen.map((attempt) => attempt.signal)).size).toBe(3);
  });

  it('cancels the body of each response it retries, and never the one it returns', async () => {
    const cancelled: number[] = [];
    let made = 0;
    const handMade: typeof fetch = async () => {
      const index = ++made;
      const body = new ReadableStream({ pull: () => undefined, cancel: () => void cancelled.push(index) });
      return new Response(body, { status: index < 3 ? 503 : 200 });
    };
    const response = await resilientFetch({ fetch: handMade, clock, retry: { baseDelay: 0 } })('https://example.test/');
    expect(response.status).toBe(200);
    expect(cancelled).toEqual([1, 2]);
    expect(response.bodyUsed).toBe(false);
  });
});
