/**
 * The caller's signal wins at every stage: before the call, during an attempt, during a
 * Retry-After wait, during a hedge; and each attempt is sent with a signal of its own.
 */
import { resilientFetch } from 'bulwark/fetch';
import { describe, expect, it } from 'vitest';
import { clock, fetches, until, useServer } from './fixtures.js';

const handle = useServer();

describe.each(fetches)('with %s', (_name, fetch) => {
  const url = (path = '/'): string => `${handle.server.origin}${path}`;

  it('rejects with the reason of a signal aborted before the call, sending nothing', async () => {
    const reason = new Error('not needed any more');
    const api = resilientFetch({ fetch, clock });
    await expect(api(url(), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(api(new Request(url(), { method: 'PUT', body: 'x', signal: AbortSignal.abort(reason) }))).rejects.toBe(reason);
    expect(handle.server.requests).toHaveLength(0);
  });

  it('rejects at once with the reason when aborted during an attempt, and the attempt\'s connection closes', async () => {
    handle.server.otherwise({ hang: true });
    const controller = new AbortController();
    const call = resilientFetch({ fetch, clock })(url(), { signal: controller.signal });
    await until(() => handle.server.requests.length === 1);
    const reason = new Error('user left');
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    // The hung request's connection is closed by the client.
    await until(() => handle.server.requests[0]!.connectionClosed);
    expect(handle.server.requests).toHaveLength(1);
  });

  it('rejects at once when aborted during a Retry-After wait, and never sends the retry', async () => {
    handle.server.script({ status: 503, retryAfter: 5, body: 'wait' });
    const controller = new AbortController();
    const call = resilientFetch({ fetch, clock })(url(), { signal: controller.signal });
    await until(() => handle.server.requests.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const reason = new Error('gave up waiting');
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    await new Promise((resolve) => setTimeout(resolve, 80)); // 8 s on the test clock: past the Retry-After
    expect(handle.server.requests).toHaveLength(1);
  });

  it('rejects at once when aborted during a hedge, and both attempts\' connections close', async () => {
    handle.server.otherwise({ hang: true });
    const controller = new AbortController();
    const call = resilientFetch({ fetch, clock, hedge: { delay: 500 } })(url(), { signal: controller.signal });
    await until(() => handle.server.requests.length === 2);
    const reason = new Error('navigated away');
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    await until(() => handle.server.requests.every((request) => request.connectionClosed));
  });

  it('takes the signal of a Request, and lets init.signal replace it', async () => {
    handle.server.otherwise({ hang: true });
    const api = resilientFetch({ fetch, clock });
    const fromRequest = new AbortController();
    const first = api(new Request(url(), { signal: fromRequest.signal }));
    await until(() => handle.server.requests.length === 1);
    fromRequest.abort('request signal');
    await expect(first).rejects.toBe('request signal');

    const replaced = new AbortController();
    const fromInit = new AbortController();
    const second = api(new Request(url(), { signal: replaced.signal }), { signal: fromInit.signal });
    await until(() => handle.server.requests.length === 2);
    replaced.abort('ignored');
    fromInit.abort('init signal');
    await expect(second).rejects.toBe('init signal');
  });
});

describe('each attempt\'s own signal', () => {
  it('is a new signal per attempt, aborted when its attempt times out, while the caller\'s stays untouched', async () => {
    const signals: AbortSignal[] = [];
    const hangs = (_input: unknown, init?: RequestInit): Promise<Response> => {
      const signal = init!.signal!;
      signals.push(signal);
      return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    };
    const caller = new AbortController();
    const api = resilientFetch({ fetch: hangs, clock, attemptTimeout: 1_000, totalTimeout: 2_500, retry: { baseDelay: 10 } });
    await expect(api('https://example.test/', { signal: caller.signal })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(signals.length).toBeGreaterThanOrEqual(2);
    expect(new Set(signals).size).toBe(signals.length);
    expect(signals.every((signal) => signal.aborted)).toBe(true);
    expect(caller.signal.aborted).toBe(false);
  });
});
