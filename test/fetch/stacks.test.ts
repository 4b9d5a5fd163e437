/**
 * Each origin's policies (src/fetch/stacks.ts) with a hand-written fetch and fake timers: when
 * a transient response's retry fits before the total timeout, and which origins a client keeps.
 */
import { resilientFetch } from 'bulwark/fetch';
import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.useRealTimers();
});

/** A fetch answering 503 with `Retry-After: <seconds>` first, then 200, noting when each request came. */
function asking(seconds: number): { fetch: (input: string) => Promise<Response>; at: number[] } {
  const start = Date.now();
  const at: number[] = [];
  const fetch = async (): Promise<Response> => {
    at.push(Date.now() - start);
    return new Response('', at.length === 1 ? { status: 503, headers: { 'retry-after': String(seconds) } } : { status: 200 });
  };
  return { fetch, at };
}

describe('a retry and the total timeout', () => {
  it('retries when the wait ends before the total timeout', async () => {
    vi.useFakeTimers();
    const { fetch, at } = asking(2);
    const answer = resilientFetch({ fetch, totalTimeout: 3_000, retry: { baseDelay: 1, jitter: 'none' } })('https://a.test/');
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await answer).status).toBe(200);
    expect(at).toEqual([0, 2_000]);
  });

  it('returns the response at once when the wait would end just as the total timeout does', async () => {
    vi.useFakeTimers();
    const { fetch, at } = asking(3);
    const response = await resilientFetch({ fetch, totalTimeout: 3_000, retry: { baseDelay: 1, jitter: 'none' } })('https://a.test/');
    expect(response.status).toBe(503);
    expect(at).toEqual([0]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('origins a client keeps', () => {
  const answer = async (_input: string): Promise<Response> => new Response('');

  it.each([
    ['with breakers', {}],
    ['without breakers', { breaker: false as const }],
  ])('forgets the least recently used origin beyond maxOrigins, %s', async (_kind, options) => {
    const api = resilientFetch({ fetch: answer, maxOrigins: 2, ...options });
    await api('https://a.test/');
    await api('https://b.test/');
    await api('https://a.test/');
    expect(api.origins().sort()).toEqual(['https://a.test', 'https://b.test']);
    await api('https://c.test/');
    expect(api.origins().sort()).toEqual(['https://a.test', 'https://c.test']);
  });
});
