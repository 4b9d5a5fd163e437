/**
 * examples/outcomes.ts: statuses as failures, on fake timers. A 503 is retried after the
 * server's Retry-After, a 404 passes unchanged, and a service that stays down opens the breaker
 * while the fallback answers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeCatalog, buildClient } from './outcomes.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

async function run<T>(promise: Promise<T>): Promise<T> {
  await vi.runAllTimersAsync();
  return promise;
}

describe('examples/outcomes', () => {
  it('retries a 503 after the Retry-After it carries, and answers with the 200', async () => {
    const catalog = new FakeCatalog([503, 200]);
    const { get, retry } = buildClient(catalog);
    const delays: number[] = [];
    retry.on('retry', ({ delay }) => delays.push(delay));
    const started = Date.now();
    await expect(run(get('/shoes'))).resolves.toEqual({ status: 200, body: 'catalog /shoes' });
    expect(catalog.calls).toBe(2);
    expect(delays).toEqual([2_000]);
    expect(Date.now() - started).toBe(2_010);
  });

  it('passes a 404 through unchanged, without a retry', async () => {
    const catalog = new FakeCatalog([404]);
    await expect(run(buildClient(catalog).get('/hats'))).resolves.toEqual({ status: 404, body: '' });
    expect(catalog.calls).toBe(1);
  });

  it('during an outage, answers from the fallback and opens the breaker after 3 calls', async () => {
    const catalog = new FakeCatalog([503]);
    const { get, breaker } = buildClient(catalog);
    for (let i = 0; i < 3; i++) await expect(run(get('/shoes'))).resolves.toEqual({ status: 200, body: 'catalog (cached)' });
    expect(catalog.calls).toBe(9);
    expect(breaker.state).toBe('open');
    await expect(run(get('/shoes'))).resolves.toEqual({ status: 200, body: 'catalog (cached)' });
    expect(catalog.calls).toBe(9);
  });

  it('a 429 is retried but is no failure of the service: it reaches the caller when retries are spent', async () => {
    const catalog = new FakeCatalog([429]);
    const { get, breaker } = buildClient(catalog);
    await expect(run(get('/shoes'))).resolves.toMatchObject({ status: 429 });
    expect(catalog.calls).toBe(3);
    expect(breaker.stats().consecutiveFailures).toBe(0);
  });
});
