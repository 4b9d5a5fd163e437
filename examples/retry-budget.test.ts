/**
 * examples/retry-budget.ts: one budget shared by the retries of two dependencies, on fake
 * timers. During an outage the attempts stay within the budget; while healthy it never refuses.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildService, checkouts } from './retry-budget.js';

/** A deterministic Math.random (mulberry32). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.spyOn(Math, 'random').mockImplementation(seeded(7));
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

async function run<T>(promise: Promise<T>): Promise<T> {
  await vi.runAllTimersAsync();
  return promise;
}

describe('examples/retry-budget', () => {
  it('during an outage, 1 000 calls make at most 1 000 × 1.2 + the reserve of 100 attempts, not 4 000', async () => {
    const service = buildService();
    service.users.failureRate = 1;
    service.orders.failureRate = 1;
    const failed = await run(checkouts(service, 500));
    const attempts = service.users.calls + service.orders.calls;
    expect(failed).toBe(1_000);
    expect(attempts).toBeLessThanOrEqual(1_000 * 1.2 + 100);
    expect(attempts).toBeGreaterThan(1_000);
    expect(service.giveUps).toEqual({ 'retries-spent': 0, 'not-retryable': 0, 'budget-spent': 1_000 });
    expect(service.exhausted()).toBe(1_000);
    expect(service.budget.available).toBe(0);
  });

  it('while healthy (5 % of calls to users fail), every failure is retried and none refused', async () => {
    const service = buildService();
    service.users.failureRate = 0.05;
    const failed = await run(checkouts(service, 500));
    expect(failed).toBe(0);
    expect(service.users.calls).toBeGreaterThan(500);
    expect(service.orders.calls).toBe(500);
    expect(service.giveUps['budget-spent']).toBe(0);
    expect(service.exhausted()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
