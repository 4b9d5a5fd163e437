/**
 * What a replica of RedisCircuitBreaker reports, and when: the outcomes it batches, the report
 * it sends at once because the batch could open the circuit (by the shared state as last read),
 * and the exact arguments the script gets. A scripted client stands in for Redis: it answers
 * every report with a state the test sets (so "the shared state as last read" is known) and
 * keeps each report's arguments; Date is faked, so "slow" and "fresh" are exact.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from '../../src/index.js';
import { RedisCircuitBreaker, type RedisCircuitBreakerOptions } from '../../src/redis/index.js';
import { OutcomeBatch } from '../../src/redis/breaker-batch.js';
import { sharedSettings } from '../../src/redis/breaker-options.js';
import { settle, useRedisServer } from './clients.js';

const { client } = useRedisServer();

interface Shared {
  gen: number;
  state: 'closed' | 'open' | 'half-open' | 'isolated';
  retryAt: number;
  cf: number;
  co: number;
  wc: number;
  wf: number;
  ws: number;
  openedAt: number;
}

/** An ioredis-shaped client whose every script call answers `shared` (on the faked clock), keeping the call's ARGV. */
function scriptedRedis(shared: Partial<Shared> = {}): { client: never; reports: string[][]; shared: Shared } {
  const state: Shared = { gen: 1, state: 'closed', retryAt: 0, cf: 0, co: 0, wc: 0, wf: 0, ws: 0, openedAt: -1, ...shared };
  const reports: string[][] = [];
  const run = async (_script: string, keys: number, ...rest: string[]): Promise<unknown[]> => {
    reports.push(rest.slice(keys));
    const s = state;
    return [s.gen, s.state, s.retryAt, Date.now(), s.cf, s.co, s.wc, s.wf, s.ws, 0, 0, '', 0, s.openedAt];
  };
  return { client: { evalsha: run, eval: run } as never, reports, shared: state };
}

/** A report's outcomes (ARGV 13–19): generation, codes, calls, failures, slow calls, failures since the last success, 1 with a success. */
const outcomesOf = (report: string[] | undefined): string[] => (report ?? []).slice(12);

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const ok = (): string => 'up';
const boom = (): Promise<never> => Promise.reject(new Error('dependency down'));
/** A call that takes `ms` on the faked clock. */
const taking = (ms: number, fails = false) => (): string => {
  vi.setSystemTime(Date.now() + ms);
  if (fails) throw new Error('slow and down');
  return 'up';
};

let unique = 0;
/** The store's timeout runs on the real clock: the default 100 ms can expire on a loaded machine before even the scripted client answers (the first SHA-1 is computed off the thread). */
const PATIENT = 2_000;
const open: RedisCircuitBreaker[] = [];

function replica(redis: { client: never }, options: Partial<RedisCircuitBreakerOptions>): RedisCircuitBreaker {
  const breaker = new RedisCircuitBreaker(redis.client, { name: `batch-${unique++}`, failureThreshold: Infinity, syncInterval: 60_000, timeout: PATIENT, ...options });
  open.push(breaker);
  return breaker;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] }); // the breaker's clock only: the store's timeout and the turns run for real
  vi.setSystemTime(1_000_000);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((breaker) => breaker.close()));
  vi.useRealTimers();
});

describe('RedisCircuitBreaker reports a batch at once when it could open the circuit', () => {
  it('a success that brings the fleet\'s calls to minimumCalls at a failure rate at the threshold is reported at once, as the core breaker opens on it', async () => {
    // The shared window as read: 8 calls, 5 failures; minimumCalls 10.
    const redis = scriptedRedis({ wc: 8, wf: 5 });
    const breaker = replica(redis, { failureRate: { threshold: 0.5, minimumCalls: 10, window: { calls: 10 } } });
    expect(await breaker.execute(ok)).toBe('up'); // the cold read, then 9 calls: under minimumCalls
    await turn();
    expect(redis.reports).toHaveLength(1);
    await breaker.execute(ok); // 10 calls, 5 failures: 0.5
    await turn();
    expect(redis.reports).toHaveLength(2);
    expect(outcomesOf(redis.reports[1])).toEqual(['1', '00', '2', '0', '0', '0', '1']);
  });

  it('failures under minimumCalls wait for the sync interval, however high their rate; the failure that reaches it is reported at once', async () => {
    const redis = scriptedRedis();
    const breaker = replica(redis, { failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 10 } } });
    for (let i = 0; i < 3; i++) await settle(breaker.execute(boom));
    await turn();
    expect(redis.reports).toHaveLength(1); // the cold read alone: 3 of 3 failed, under minimumCalls
    await settle(breaker.execute(boom));
    await turn();
    expect(redis.reports).toHaveLength(2);
    expect(outcomesOf(redis.reports[1])).toEqual(['1', '1111', '4', '4', '0', '4', '0']);
  });

  it('at minimumCalls, a failure rate under the threshold waits; the failure that reaches the threshold is reported at once', async () => {
    // The shared window as read: 6 calls, 2 failures.
    const redis = scriptedRedis({ wc: 6, wf: 2 });
    const breaker = replica(redis, { failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 10 } } });
    await settle(breaker.execute(boom)); // 7 calls, 3 failures: 0.43
    await turn();
    expect(redis.reports).toHaveLength(1);
    await settle(breaker.execute(boom)); // 8 calls, 4 failures: 0.5
    await turn();
    expect(redis.reports).toHaveLength(2);
    expect(outcomesOf(redis.reports[1])).toEqual(['1', '11', '2', '2', '0', '2', '0']);
  });

  it('a slow-call rate under slowCall.rateThreshold waits; the slow call that reaches it is reported at once', async () => {
    // The shared window as read: 6 calls, 2 slow.
    const redis = scriptedRedis({ wc: 6, ws: 2 });
    const breaker = replica(redis, { failureRate: { threshold: 1, minimumCalls: 4, window: { calls: 10 } }, slowCall: { duration: 10, rateThreshold: 0.5 } });
    await breaker.execute(taking(11)); // 7 calls, 3 slow: 0.43
    await turn();
    expect(redis.reports).toHaveLength(1);
    await breaker.execute(taking(10)); // exactly slowCall.duration: not slow
    await turn();
    expect(redis.reports).toHaveLength(1);
    await breaker.execute(taking(11)); // 9 calls, 4 slow: 0.44
    await turn();
    expect(redis.reports).toHaveLength(1);
    await breaker.execute(taking(11)); // 10 calls, 5 slow: 0.5
    await turn();
    expect(redis.reports).toHaveLength(2);
    expect(outcomesOf(redis.reports[1])).toEqual(['1', '2022', '4', '0', '3', '0', '1']);
  });

  it('a cold replica whose calls find the circuit already open sends one read for all of them, and nothing more at once', async () => {
    const redis = scriptedRedis({ gen: 7, state: 'open', retryAt: Date.now() + 60_000, cf: 3, co: 1, wc: 10, wf: 10, openedAt: Date.now() });
    const breaker = replica(redis, { failureThreshold: 3, failureRate: { threshold: 0.5, minimumCalls: 10, window: { calls: 10 } } });
    const answers = await Promise.all([settle(breaker.execute(ok)), settle(breaker.execute(ok))]);
    await turn();
    for (const answer of answers) {
      expect('error' in answer && answer.error).toBeInstanceOf(CircuitOpenError);
      expect((answer as { error: CircuitOpenError }).error).toMatchObject({ state: 'open', retryAfter: 60_000 });
    }
    // The second call asked for a read while the first was on its way; the answer serves both.
    expect(redis.reports).toHaveLength(1);
  });
});

describe('with a real Redis', () => {
  it('the fleet\'s circuit opens at the success that brings its calls to minimumCalls over the failure rate, not a sync interval later', async () => {
    vi.useRealTimers(); // the script runs on the server's clock
    const options = { failureRate: { threshold: 0.5, minimumCalls: 10, window: { calls: 10 } } };
    const name = `real-${unique++}`;
    const a = replica(await client('ioredis'), { name, ...options });
    for (let i = 0; i < 5; i++) await settle(a.execute(boom));
    for (let i = 0; i < 4; i++) await a.execute(ok);
    await a.flush();
    const raw = await client('ioredis');
    expect(await raw.command('HMGET', a.key, 'state', 'wc', 'wf')).toEqual(['closed', '9', '5']);
    const b = replica(await client('ioredis'), { name, ...options });
    expect(await b.execute(ok)).toBe('up'); // reads 9 calls, 5 failures; its success makes 10 (syncInterval is a minute)
    await vi.waitFor(async () => expect(await raw.command('HMGET', a.key, 'state', 'reason')).toEqual(['open', 'failure-rate']), { timeout: 2_000, interval: 5 });
  });
});

describe('the report a replica sends', () => {
  it('carries a count window\'s latest codes in order (failure 1, slow 2, both 3), at most the window\'s worth, with the batch\'s counts', async () => {
    const redis = scriptedRedis();
    const breaker = replica(redis, { failureRate: { threshold: 1, minimumCalls: 2, window: { calls: 2 } }, slowCall: { duration: 10, rateThreshold: 1 } });
    await breaker.execute(ok);
    await settle(breaker.execute(boom));
    await breaker.execute(taking(11));
    await settle(breaker.execute(taking(11, true)));
    await breaker.execute(ok);
    await turn();
    expect(redis.reports).toHaveLength(1); // no rate reached 1: nothing reported yet
    await breaker.flush();
    // 5 calls (codes 0 1 2 3 0), 2 failures, 2 slow; the last was a success.
    expect(outcomesOf(redis.reports[1])).toEqual(['1', '30', '5', '2', '2', '0', '1']);
  });

  it('carries failures since the batch\'s last success, and 0 for "no success" when it holds none', async () => {
    const redis = scriptedRedis({ cf: 2 });
    const breaker = replica(redis, { failureThreshold: 10, failureRate: { threshold: 1, minimumCalls: 6, window: { calls: 6 } } });
    await settle(breaker.execute(boom));
    await settle(breaker.execute(boom));
    await breaker.flush();
    expect(outcomesOf(redis.reports[1])).toEqual(['1', '11', '2', '2', '0', '2', '0']);
    await settle(breaker.execute(boom));
    await breaker.execute(ok);
    await settle(breaker.execute(boom));
    await breaker.flush();
    expect(outcomesOf(redis.reports[2])).toEqual(['1', '101', '3', '2', '0', '1', '1']);
  });

  it('carries a time window\'s counts and no codes (the script keeps buckets of counts)', async () => {
    const redis = scriptedRedis();
    const breaker = replica(redis, { failureRate: { threshold: 1, minimumCalls: 3, window: { duration: 10_000 } } });
    await breaker.execute(ok);
    await settle(breaker.execute(boom));
    await breaker.flush();
    expect(outcomesOf(redis.reports[1])).toEqual(['1', '', '2', '1', '0', '1', '1']);
  });

  it('holds at most twice the window\'s codes however many calls come between two reports: a replica\'s memory stays bounded', () => {
    const batch = new OutcomeBatch(sharedSettings({ name: 'bounded', failureRate: { threshold: 1, window: { calls: 3 } } }, () => false));
    const held = (): number => (batch as unknown as { codes: unknown[] }).codes.length;
    let most = 0;
    for (let i = 0; i < 1_000; i++) {
      batch.record(i % 7 === 0, false, 1, undefined);
      most = Math.max(most, held());
    }
    expect(most).toBeLessThanOrEqual(6);
    // Calls 997, 998, 999: 997 = 7 × 142 + 3.
    expect(batch.take().slice(1, 3)).toEqual(['000', '1000']);
  });
});
