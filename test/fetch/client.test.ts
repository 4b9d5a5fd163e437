/**
 * The client itself (src/fetch/client.ts) with a hand-written fetch: its events and their
 * payloads, how it refuses a bad `init`, and a Request left unread when the call is aborted
 * before it starts.
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
