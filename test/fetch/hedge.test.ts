/**
 * Hedged reads: a slow GET is sent again, the first good answer wins, the loser is aborted
 * (its connection closes) and the body of a loser that answered is cancelled; writes are never
 * hedged; a transient response hedges at once unless it asks to wait (and its body is then
 * cancelled); `policyOf` gives the hedged policies of a hedging client.
 */
import { resilientFetch } from 'bulwark/fetch';
import { describe, expect, it } from 'vitest';
import { clock, fetches, until, useServer } from './fixtures.js';

const handle = useServer();

describe.each(fetches)('with %s', (_name, fetch) => {
  const url = (path = '/'): string => `${handle.server.origin}${path}`;

  it('sends a slow read again after the delay; the first answer wins and the loser\'s connection closes', async () => {
    handle.server.script({ hang: true }, { status: 200, body: 'hedge' });
    const api = resilientFetch({ fetch, clock, hedge: { delay: 500 } });
    const start = clock.now();
    const response = await api(url());
    expect(await response.text()).toBe('hedge');
    expect(handle.server.requests).toHaveLength(2);
    expect(handle.server.requests[1]!.at - start).toBeGreaterThanOrEqual(500);
    await until(() => handle.server.requests[0]!.connectionClosed);
  });

  it('starts the next hedge at once on a transient response', async () => {
    handle.server.script({ status: 503 }, { status: 200, body: 'second' });
    const response = await resilientFetch({ fetch, clock, hedge: { delay: 60_000 }, retry: false })(url());
    expect(await response.text()).toBe('second');
    expect(handle.server.requests).toHaveLength(2);
  });

  it('does not hedge a transient response that asks to wait: the retry honours its Retry-After', async () => {
    handle.server.script({ status: 429, retryAfter: 2 }, { status: 200 });
    const response = await resilientFetch({ fetch, clock, hedge: { delay: 60_000 }, retry: { baseDelay: 10, jitter: 'none' } })(url());
    expect(response.status).toBe(200);
    const [first, second] = handle.server.requests;
    expect(second!.at).toBeGreaterThanOrEqual(first!.notBefore!);
  });

  it.each(['PUT', 'DELETE'])('never hedges %s: one copy at a time', async (method) => {
    handle.server.script({ status: 200, after: 30 });
    const response = await resilientFetch({ fetch, clock, hedge: { delay: 100 } })(url(), { method, body: method === 'PUT' ? 'x' : null });
    expect(response.status).toBe(200);
    expect(handle.server.requests).toHaveLength(1);
  });
});

describe('a losing hedge that answered anyway', () => {
  it('has its body cancelled; the winner\'s is left for the caller', async () => {
    const cancelled: number[] = [];
    let made = 0;
    // A fetch that ignores its signal: the first attempt answers after the hedge has won.
    const slowFirst: typeof fetch = () => {
      const index = ++made;
      const body = new ReadableStream({ pull: () => undefined, cancel: () => void cancelled.push(index) });
      return new Promise((resolve) => setTimeout(() => resolve(new Response(body, { status: 200 })), index === 1 ? 30 : 1));
    };
    const response = await resilientFetch({ fetch: slowFirst, clock, hedge: { delay: 100 } })('https://example.test/');
    expect(made).toBe(2);
    await until(() => cancelled.length === 1);
    expect(cancelled).toEqual([1]);
    expect(response.bodyUsed).toBe(false);
  });
});

describe('transient responses that started the next hedge', () => {
  it('have their bodies cancelled, every one of them, once a later hedge answers', async () => {
    const cancelled: number[] = [];
    let made = 0;
    const twoUnavailable: typeof fetch = async () => {
      const index = ++made;
      const body = new ReadableStream({ pull: () => undefined, cancel: () => void cancelled.push(index) });
      return new Response(body, { status: index <= 2 ? 503 : 200 });
    };
    const response = await resilientFetch({ fetch: twoUnavailable, clock, retry: false, hedge: { delay: 60_000, maxHedgedAttempts: 3 } })('https://example.test/');
    expect(response.status).toBe(200);
    expect(made).toBe(3);
    await until(() => cancelled.length === 2);
    expect(cancelled.sort()).toEqual([1, 2]);
    expect(response.bodyUsed).toBe(false);
  });
});

describe('policyOf', () => {
  it('gives the hedged policies of a hedging client: a slow function is called again after the delay', async () => {
    const api = resilientFetch({ fetch: async () => new Response(''), clock, hedge: { delay: 500 } });
    let calls = 0;
    const answer = await api.policyOf('https://example.test/x').execute(async ({ signal }) => {
      calls++;
      if (calls === 1) await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      return 'second';
    });
    expect([answer, calls]).toEqual(['second', 2]);
  });

  it('gives the retrying policies of a client that does not hedge', async () => {
    const api = resilientFetch({ fetch: async () => new Response(''), clock, retry: { baseDelay: 10, jitter: 'none' } });
    let calls = 0;
    const answer = await api.policyOf('https://example.test/x').execute(async () => {
      if (++calls === 1) throw new TypeError('fetch failed');
      return 'again';
    });
    expect([answer, calls]).toEqual(['again', 2]);
  });
});
