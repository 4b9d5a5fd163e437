/**
 * How exactly a rate limiter grants under a standing crowd: 1 000 permits per second for 10 s,
 * 200 callers always waiting (each comes back as soon as its call settles), on a simulated
 * clock, with timers that fire on time or up to 4 ms late (seeded). Deterministic: no real time
 * passes. bench/rate-limit.mjs measures the same on real timers, beside other libraries.
 */
import { describe, expect, it } from 'vitest';
import { RateLimiter, type Clock, type RateLimitAlgorithm } from '../../src/index.js';
import { flush } from '../fixtures/promises.js';

const RATE = 1_000;
const INTERVAL = 1_000;
const DURATION = 10_000;
const CALLERS = 200;

/** Mulberry32: a seeded random. */
function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A simulated clock whose timers fire `lateness()` ms after they are due. */
class SimulatedClock implements Clock {
  time = 0;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  constructor(private readonly lateness: () => number) {}

  get armed(): number {
    return this.timers.size;
  }

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms + this.lateness(), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Fires every timer due by `end` in order, letting the callers react after each. */
  async runUntil(end: number): Promise<void> {
    await flush();
    for (;;) {
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (next === undefined || entry[1].at < next[1].at) next = entry;
      if (next === undefined || next[1].at > end) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].callback();
      await flush();
    }
    this.time = end;
  }
}

/** Runs the crowd against a limiter and returns the grant times (ms from the start). */
async function crowd(algorithm: RateLimitAlgorithm, lateness: () => number): Promise<{ grants: number[]; clock: SimulatedClock; limiter: RateLimiter }> {
  const clock = new SimulatedClock(lateness);
  const limiter = new RateLimiter({ rate: RATE, interval: INTERVAL, algorithm, maxWait: Infinity, clock });
  const grants: number[] = [];
  const stop = new AbortController();
  const record = (): void => void grants.push(clock.now());
  const callers = Array.from({ length: CALLERS }, async () => {
    while (!stop.signal.aborted) {
      try {
        await limiter.execute(record, { signal: stop.signal });
      } catch (error) {
        if (error !== stop.signal.reason) throw error;
      }
    }
  });
  await clock.runUntil(DURATION);
  stop.abort();
  await Promise.all(callers);
  return { grants, clock, limiter };
}

/** The most permits any closed window of `INTERVAL` holds: the windows that start at a grant are the fullest. */
function fullestWindow(grants: readonly number[]): number {
  let most = 0;
  let end = 0;
  for (let start = 0; start < grants.length; start++) {
    while (end < grants.length && (grants[end] as number) <= (grants[start] as number) + INTERVAL) end++;
    most = Math.max(most, end - start);
  }
  return most;
}

/** Replays the grants through an exact token bucket: each must find a whole token. */
function overdrawnAt(grants: readonly number[], burst: number): number | undefined {
  let tokens = burst;
  let last = 0;
  for (const at of grants) {
    tokens = Math.min(burst, tokens + ((at - last) * RATE) / INTERVAL);
    last = at;
    if (tokens < 1 - 1e-9) return at;
    tokens -= 1;
  }
  return undefined;
}

describe('RateLimiter accuracy: 1 000 per second, 200 callers always waiting, 10 s', () => {
  it.each([
    ['on time', 0, () => 0],
    ['0–4 ms late (seeded)', 4, ((random) => () => Math.floor(random() * 5))(seededRandom(42))],
  ])('token bucket, timers %s: rate × time + burst within 1 %, no window over rate + burst, never overdrawn', async (_, latest, lateness) => {
    const { grants, clock, limiter } = await crowd('token-bucket', lateness);
    const expected = (RATE * DURATION) / INTERVAL + RATE; // burst = rate by default
    expect(grants.length).toBeLessThanOrEqual(expected);
    expect(Math.abs(grants.length - expected) / expected).toBeLessThan(0.01);
    expect(fullestWindow(grants)).toBeLessThanOrEqual(RATE + RATE);
    expect(overdrawnAt(grants, RATE)).toBeUndefined();
    // Not one permit lost: on time, every one granted; late, only those of the last few ms, still to come.
    expect(grants.length).toBeGreaterThanOrEqual(expected - (latest * RATE) / INTERVAL);
    expect([limiter.queued, clock.armed]).toEqual([0, 0]);
  });

  it.each([
    ['on time', 0, () => 0],
    ['0–4 ms late (seeded)', 4, ((random) => () => Math.floor(random() * 5))(seededRandom(7))],
  ])('sliding window, timers %s: no window of interval holds more than rate', async (_, latest, lateness) => {
    const { grants, clock, limiter } = await crowd('sliding-window', lateness);
    for (let i = 0; i + RATE < grants.length; i++) expect((grants[i + RATE] as number) - (grants[i] as number)).toBeGreaterThanOrEqual(INTERVAL);
    // A full window every interval: 11 of them in [0, 10 000] on time; a late timer may push the last one out.
    expect(grants.length).toBeLessThanOrEqual(RATE * (DURATION / INTERVAL + 1));
    expect(grants.length).toBeGreaterThanOrEqual(RATE * (DURATION / INTERVAL));
    if (latest === 0) expect(grants.length).toBe(RATE * (DURATION / INTERVAL + 1));
    expect([limiter.queued, clock.armed]).toEqual([0, 0]);
  });
});
