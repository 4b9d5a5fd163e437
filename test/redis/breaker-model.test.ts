/**
 * The shared breaker's script counts like the core breaker: one replica reporting each outcome
 * as it happens (flush after every call) must reach the same state, consecutive failures and
 * window counts as a core `CircuitBreaker` of the same options fed the same outcomes, for random
 * options and outcome sequences (until the first opening: half-open needs the server's clock to
 * move, which the other tests drive for real).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitBreakerOptions } from '../../src/index.js';
import { RedisCircuitBreaker } from '../../src/redis/index.js';
import { settle, useRedisServer } from './clients.js';

const { client } = useRedisServer();
let unique = 0;

const options: fc.Arbitrary<CircuitBreakerOptions> = fc.oneof(
  fc.record({ failureThreshold: fc.integer({ min: 1, max: 6 }) }),
  fc
    .record({ threshold: fc.constantFrom(0.25, 0.5, 0.75, 1), calls: fc.integer({ min: 1, max: 12 }), minimum: fc.integer({ min: 1, max: 12 }), consecutive: fc.option(fc.integer({ min: 2, max: 8 }), { nil: undefined }) })
    .map(({ threshold, calls, minimum, consecutive }) => ({
      failureRate: { threshold, minimumCalls: Math.min(minimum, calls), window: { calls } },
      ...(consecutive === undefined ? {} : { failureThreshold: consecutive }),
    })),
  // A time window long enough that every outcome of a run stays in it.
  fc
    .record({ threshold: fc.constantFrom(0.25, 0.5, 1), minimum: fc.integer({ min: 1, max: 10 }), buckets: fc.integer({ min: 1, max: 10 }) })
    .map(({ threshold, minimum, buckets }) => ({ failureRate: { threshold, minimumCalls: minimum, window: { duration: 600_000, buckets } } })),
);

describe('RedisCircuitBreaker against the core breaker, one replica', () => {
  it('reaches the same state, consecutive failures and window counts after every outcome', async () => {
    const c = await client('ioredis');
    await fc.assert(
      fc.asyncProperty(options, fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), async (given, outcomes) => {
        const local = new CircuitBreaker({ ...given, recoveryTimeout: 600_000 });
        const shared = new RedisCircuitBreaker(c.client, { ...given, name: `model-${unique++}`, recoveryTimeout: 600_000, syncInterval: 60_000, timeout: 2_000 });
        for (const fails of outcomes) {
          const work = fails ? () => Promise.reject(new Error('down')) : () => 'up';
          const [mine, theirs] = [await settle(local.execute(work)), await settle(shared.execute(work))];
          await shared.flush();
          expect('error' in theirs).toBe('error' in mine);
          const [l, s] = [local.stats(), shared.stats()];
          expect({ state: s.state, consecutiveFailures: s.consecutiveFailures, calls: s.calls, failures: s.failures }).toEqual({
            state: l.state,
            consecutiveFailures: l.consecutiveFailures,
            calls: l.calls,
            failures: l.failures,
          });
          if (l.state === 'open') break;
        }
        await shared.close();
      }),
      { numRuns: 60 },
    );
  }, 60_000);
});
