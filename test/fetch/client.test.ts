/**
 * The client itself (src/fetch/client.ts) with a hand-written fetch: its events and their
 * payloads, how it refuses a bad `init`, and a Request left unread when the call is aborted
 * before it starts; how it reads a Request and an init as fetch does (a body kept or replaced,
 * a signal of undefined or null, a method of null), and a transient predicate that breaks.
 */
import { resilientFetch } from 'bulwark/fetch';
import { describe, expect, it } from 'vitest';

/** A fetch answering the statuses in turn (then 200); a status of 0 is a network error. */
function answering(...statuses: number[]): { fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>; calls: () => number } {
  let calls = 0;
  const fetch = async (): Promise<Response> => {
    const status = statuses[calls++] ?? 200;
    if (status === 0) throw new TypeError('fetch failed');
    return new Response('answer', { status });
  };
  return { fetch, calls: () => calls };
}

describe('events of the client', () => {
  it('emits response with the method, origin, status and attempts of a call that ended well, and no requestFailed', async () => {
    const { fetch } = answering(503);
    const api = resilientFetch({ fetch, retry: { baseDelay: 0 } });
    const responses: unknown[] = [];
    const failed: unknown[] = [];
    api.on('response', (payload) => void responses.push(payload));
    api.on('requestFailed', (payload) => void failed.push(payload));
    await api('https://a.test/orders?id=1', { method: 'put' });
    expect(responses).toEqual([{ method: 'PUT', origin: 'https://a.test', status: 200, attempts: 2 }]);
    expect(failed).toEqual([]);
  });

  it('emits response, then requestFailed with the status, for a call answered with a transient status', async () => {
    const { fetch } = answering(503);
    const api = resilientFetch({ fetch, retry: false });
    const seen: unknown[] = [];
    api.on('response', (payload) => void seen.push(['response', payload]));
    api.on('requestFailed', (payload) => void seen.push(['requestFailed', payload]));
    await api('https://a.test/');
    expect(seen).toEqual([
      ['response', { method: 'GET', origin: 'https://a.test', status: 503, attempts: 1 }],
      ['requestFailed', { method: 'GET', origin: 'https://a.test', attempts: 1, status: 503, error: undefined }],
    ]);
  });

  it('emits requestFailed with the error, and no response, for a call that failed', async () => {
    const { fetch } = answering(0, 0);
    const api = resilientFetch({ fetch, retry: { baseDelay: 0, maxRetries: 1 } });
    const responses: unknown[] = [];
    const failed: { error: unknown }[] = [];
    api.on('response', (payload) => void responses.push(payload));
    api.on('requestFailed', (payload) => void failed.push(payload));
    const error = await api('https://a.test/').catch((caught: unknown) => caught);
    expect(failed).toEqual([{ method: 'GET', origin: 'https://a.test', attempts: 2, status: undefined, error }]);
    expect((error as Error).message).toBe('fetch failed');
    expect(responses).toEqual([]);
  });

  it('stops calling a listener once it unsubscribed', async () => {
    const { fetch } = answering();
    const api = resilientFetch({ fetch });
    const seen: unknown[] = [];
    const off = api.on('response', (payload) => void seen.push(payload));
    await api('https://a.test/');
    off();
    await api('https://a.test/');
    expect(seen).toHaveLength(1);
  });
});

describe('calls', () => {
  it('rejects an init that is not an object with a TypeError, as fetch does, sending nothing', async () => {
    const { fetch, calls } = answering();
    const error = await resilientFetch({ fetch })('https://a.test/', 42 as unknown as RequestInit).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('fetch(input, init): init must be an object, got number');
    expect(calls()).toBe(0);
  });

  it('takes a null init as none', async () => {
    const { fetch, calls } = answering();
    expect((await resilientFetch({ fetch })('https://a.test/', null as unknown as RequestInit)).status).toBe(200);
    expect(calls()).toBe(1);
  });

  it('leaves the body of a Request unread when its signal is aborted before the call', async () => {
    const { fetch, calls } = answering();
    const controller = new AbortController();
    const reason = new Error('gave up');
    controller.abort(reason);
    const request = new Request('https://a.test/', { method: 'PUT', body: 'payload', signal: controller.signal });
    await expect(resilientFetch({ fetch })(request)).rejects.toBe(reason);
    expect(request.bodyUsed).toBe(false);
    expect(calls()).toBe(0);
  });
});

/** A fetch that checks its arguments as fetch does (by making a Request of them), keeping each request it was given, and answering the statuses in turn (then 200). */
function strict(...statuses: number[]): { fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>; sent: Request[] } {
  const sent: Request[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    sent.push(new Request(input, init));
    return new Response('answer', { status: statuses[sent.length - 1] ?? 200 });
  };
  return { fetch, sent };
}

describe('a Request as input', () => {
  it('is sent without a body when it has none, as fetch asks of a GET', async () => {
    const { fetch, sent } = strict();
    expect((await resilientFetch({ fetch })(new Request('https://a.test/x', { headers: { accept: 'text/plain' } }))).status).toBe(200);
    expect(sent.map((request) => [request.method, request.url, request.headers.get('accept'), request.body])).toEqual([['GET', 'https://a.test/x', 'text/plain', null]]);
  });

  it('keeps its body when the init changes something else', async () => {
    const { fetch, sent } = strict(503);
    const request = new Request('https://a.test/x', { method: 'PUT', body: 'payload' });
    const response = await resilientFetch({ fetch, retry: { baseDelay: 0 } })(request, { headers: { 'x-try': '1' } });
    expect(response.status).toBe(200);
    expect(await Promise.all(sent.map(async (one) => [one.method, one.headers.get('x-try'), await one.text()]))).toEqual([
      ['PUT', '1', 'payload'],
      ['PUT', '1', 'payload'],
    ]);
  });

  it('sends the body of the init in place of its own', async () => {
    const { fetch, sent } = strict();
    await resilientFetch({ fetch })(new Request('https://a.test/x', { method: 'PUT', body: 'old' }), { body: 'new' });
    expect(await sent[0]!.text()).toBe('new');
  });

  it('keeps its signal when the init gives signal: undefined, as fetch does', async () => {
    const { fetch, sent } = strict();
    const controller = new AbortController();
    const reason = new Error('gave up');
    controller.abort(reason);
    const request = new Request('https://a.test/', { signal: controller.signal });
    await expect(resilientFetch({ fetch })(request, { signal: undefined } as unknown as RequestInit)).rejects.toBe(reason);
    expect(sent).toEqual([]);
  });

  it('loses its signal to the init\'s signal: null, as fetch does', async () => {
    const { fetch, sent } = strict();
    const controller = new AbortController();
    controller.abort(new Error('gave up'));
    const request = new Request('https://a.test/', { signal: controller.signal });
    expect((await resilientFetch({ fetch })(request, { signal: null })).status).toBe(200);
    expect(sent).toHaveLength(1);
  });
});

describe('an init', () => {
  it('with signal: null is a call without a signal', async () => {
    const { fetch, sent } = strict();
    expect((await resilientFetch({ fetch })('https://a.test/', { signal: null })).status).toBe(200);
    expect(sent).toHaveLength(1);
  });

  it('with method: null is sent as fetch sends it, a method "null" that is neither GET nor retried', async () => {
    const { fetch } = answering(503);
    const api = resilientFetch({ fetch, retry: { baseDelay: 0 } });
    const seen: unknown[] = [];
    api.on('response', (payload) => void seen.push(payload));
    expect((await api('https://a.test/', { method: null as unknown as string })).status).toBe(503);
    expect(seen).toEqual([{ method: 'NULL', origin: 'https://a.test', status: 503, attempts: 1 }]);
  });
});

describe('a transient predicate that breaks', () => {
  it('fails the call with a TypeError naming what it threw, when that is not an object', async () => {
    const { fetch, calls } = answering();
    const api = resilientFetch({
      fetch,
      transient: () => {
        throw 42;
      },
    });
    const error = await api('https://a.test/').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('resilientFetch transient threw 42');
    expect(calls()).toBe(1);
  });

  it('fails the call with a TypeError when it answers with a promise', async () => {
    const { fetch, calls } = answering();
    const api = resilientFetch({ fetch, transient: (async () => true) as unknown as () => boolean });
    const error = await api('https://a.test/').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('resilientFetch transient must return its answer synchronously, got a promise (an async function?)');
    expect(calls()).toBe(1);
  });
});

describe('a request of another fetch implementation', () => {
  it('is sent from its parts when it has no body property at all', async () => {
    const { fetch, sent } = strict();
    const request = { url: 'https://a.test/x', method: 'GET', headers: new Headers({ accept: 'text/plain' }) };
    expect((await resilientFetch({ fetch })(request as unknown as Request)).status).toBe(200);
    expect(sent.map((one) => [one.method, one.url, one.headers.get('accept'), one.body])).toEqual([['GET', 'https://a.test/x', 'text/plain', null]]);
  });
});
