// The rate limiter against a model, on random scenarios: fast-check draws the options (either
// algorithm, small rates and intervals, maxWait and maxQueue from 0 to Infinity) and up to 20
// calls (arrival time, an abort or none), runs them on a hand-driven clock, then probes the
// limiter's retryAfter. Checked: every call settles once, as exactly one of granted, refused
// on arrival, or aborted while waiting; grants come first in first out; the grant times never
// overdraw an exact token bucket (or put more than `rate` in a window of `interval`); a waiting
// call is let in exactly when it was told, or sooner when a call ahead of it left; a refused
// call coming back after `retryAfter` gets a permit; nothing is left behind.
//
// A failure prints the seed and path; replay with
//   BULWARK_PROPERTY_SEED=<seed> BULWARK_PROPERTY_PATH=<path> npx vitest run test/rate-limit/property.test.ts
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimitedError, RateLimiter, type RateLimitAlgorithm, type RateLimiterEvents } from '../../src/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { flush, track, type Tracked } from '../fixtures/promises.js';
import { propertyParameters } from '../fixtures/property.js';

interface Scenario {
  readonly algorithm: RateLimitAlgorithm;
  readonly rate: number;
  readonly interval: number;
  readonly burst: number;
  readonly maxWait: number;
  readonly maxQueue: number;
  readonly calls: readonly { readonly at: number; readonly abortAfter: number | undefined }[];
}

const scenarios: fc.Arbitrary<Scenario> = fc
  .record({
    algorithm: fc.constantFrom<RateLimitAlgorithm>('token-bucket', 'sliding-window'),
    rate: fc.integer({ min: 1, max: 4 }),
    interval: fc.integer({ min: 1, max: 40 }),
    burst: fc.integer({ min: 1, max: 4 }),
    maxWait: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 }), fc.constant(Infinity)),
    maxQueue: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constant(Infinity)),
    calls: fc.array(fc.record({ at: fc.integer({ min: 0, max: 120 }), abortAfter: fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined }) }), {
      minLength: 1,
      maxLength: 20,
    }),
  })
  .map((scenario) => ({ ...scenario, calls: [...scenario.calls].sort((a, b) => a.at - b.at) }));

const EPSILON = 1e-9;

interface CallRecord {
  readonly id: number;
  readonly arrivedAt: number;
  outcome: Tracked<number>;
  wait: number | undefined;
  refusal: RateLimiterEvents['rejected'] | undefined;
  queueAtArrival: number;
  grantedAt: number | undefined;
  runs: number;
  readonly reason: Error | undefined;
}

async function check(scenario: Scenario): Promise<void> {
  const { algorithm, rate, interval, burst, maxWait, calls } = scenario;
  const maxQueue = maxWait === 0 ? undefined : scenario.maxQueue;
  const clock = new CountingClock({ start: 1_000 });
  const limiter = new RateLimiter({
    rate,
    interval,
    algorithm,
    maxWait,
    clock,
    ...(algorithm === 'token-bucket' ? { burst } : {}),
    ...(maxQueue === undefined ? {} : { maxQueue }),
  });
  const capacity = algorithm === 'token-bucket' ? burst : rate;
  // What the limiter said of the last call, synchronously, as it arrived.
  const said: { delayed: RateLimiterEvents['delayed'] | undefined; rejected: RateLimiterEvents['rejected'] | undefined } = { delayed: undefined, rejected: undefined };
  limiter.on('delayed', (event) => void (said.delayed = event));
  limiter.on('rejected', (event) => void (said.rejected = event));

  const records: CallRecord[] = [];
  const grantOrder: number[] = [];
  let aborts = 0;
  for (const [id, spec] of calls.entries()) {
    await clock.advance(spec.at + 1_000 - clock.now());
    const controller = spec.abortAfter === undefined ? undefined : new AbortController();
    const reason = controller === undefined ? undefined : new Error(`abort ${id}`);
    said.delayed = undefined;
    said.rejected = undefined;
    const queueAtArrival = limiter.queued;
    const record: CallRecord = { id, arrivedAt: clock.now(), outcome: undefined as never, wait: undefined, refusal: undefined, queueAtArrival, grantedAt: undefined, runs: 0, reason };
    const fn = (): number => {
      record.runs++;
      record.grantedAt = clock.now();
      grantOrder.push(id);
      return id;
    };
    record.outcome = track(limiter.execute(fn, controller === undefined ? undefined : { signal: controller.signal }));
    // (Set by the listeners during execute(), which TypeScript's narrowing cannot see.)
    record.wait = (said.delayed as RateLimiterEvents['delayed'] | undefined)?.wait;
    record.refusal = said.rejected as RateLimiterEvents['rejected'] | undefined;
    records.push(record);
    if (controller !== undefined) {
      clock.setTimeout(() => {
        if (record.grantedAt === undefined) aborts++;
        controller.abort(reason);
      }, spec.abortAfter as number);
    }
  }
  // Let every waiting call through (the longest queue waits 20 permits).
  await clock.advance(20 * interval + 200);

  for (const record of records) {
    expect(record.outcome.settled, `call ${record.id} settled`).toBe(true);
    expect(record.runs).toBeLessThanOrEqual(1);
    if (record.refusal !== undefined) {
      // Refused on arrival, never after a wait; and only for the reason it gives.
      expect(record.outcome.error).toBe(record.refusal.error);
      expect(record.outcome.error).toBeInstanceOf(RateLimitedError);
      expect(record.runs).toBe(0);
      expect(record.wait).toBeUndefined();
      const { reason, retryAfter } = record.refusal;
      expect(retryAfter).toBeGreaterThan(0);
      if (reason === 'limit') expect(retryAfter).toBeGreaterThan(maxWait);
      else expect([retryAfter <= maxWait, record.queueAtArrival >= (maxQueue ?? 0)]).toEqual([true, true]);
    } else if (record.runs === 1) {
      expect(record.outcome.value).toBe(record.id);
      const due = record.arrivedAt + (record.wait ?? 0);
      // Let in when told, or sooner when a call ahead of it left the queue.
      expect(record.grantedAt as number).toBeLessThanOrEqual(due + EPSILON);
      if (aborts === 0) expect(record.grantedAt as number).toBeCloseTo(due, 9);
      if (record.wait !== undefined) expect(record.wait).toBeLessThanOrEqual(maxWait);
    } else {
      // Aborted while it waited: answered with its own reason.
      expect(record.wait).toBeDefined();
      expect(record.outcome.error).toBe(record.reason);
    }
  }
  // First in first out.
  expect(grantOrder).toEqual([...grantOrder].sort((a, b) => a - b));
  const grants = records.filter((r) => r.grantedAt !== undefined).sort((a, b) => a.id - b.id).map((r) => r.grantedAt as number);
  expectWithinLimit(grants, scenario);
  expect([limiter.queued, clock.armed]).toEqual([0, 0]);

  // retryAfter is exact: crowd the limiter at one instant until it refuses, then come back.
  const probes: Tracked<number>[] = [];
  let refused: RateLimitedError | undefined;
  // Enough calls to pass the burst and then maxWait's worth of permits, or to fill maxQueue.
  const room = Math.min(Math.ceil((maxWait * rate) / interval), maxQueue ?? 0);
  const enough = capacity + 2 + (room === Infinity ? 50 : room);
  for (let i = 0; i < enough && refused === undefined; i++) {
    probes.push(track(limiter.execute(() => i)));
    await flush();
    const error = probes.at(-1)?.error;
    if (error instanceof RateLimitedError) refused = error;
  }
  if (refused === undefined) {
    expect([maxWait, maxQueue]).toEqual([Infinity, Infinity]); // only an unbounded queue takes them all
  } else {
    const { retryAfter } = refused;
    if (maxWait === 0) {
      const early = Math.min(retryAfter / 2, 0.5);
      await clock.advance(retryAfter - early);
      const before = track(limiter.execute(() => -1));
      await flush();
      expect((before.error as RateLimitedError | undefined)?.retryAfter).toBeCloseTo(early, 6);
      await clock.advance(early);
    } else {
      await clock.advance(retryAfter);
    }
    const back = track(limiter.execute(() => -2));
    await flush();
    expect(back.value, `a call back after retryAfter = ${retryAfter} gets a permit at once`).toBe(-2);
  }
  await clock.advance((enough + 1) * interval + 200);
  expect(probes.every((probe) => probe.settled)).toBe(true);
  expect([limiter.queued, clock.armed]).toEqual([0, 0]);
}

/** The grant times never overdraw an exact token bucket, or put more than `rate` in a window of `interval`. */
function expectWithinLimit(grants: readonly number[], { algorithm, rate, interval, burst }: Scenario): void {
  if (algorithm === 'sliding-window') {
    for (let i = 0; i + rate < grants.length; i++) expect((grants[i + rate] as number) - (grants[i] as number)).toBeGreaterThanOrEqual(interval - EPSILON);
    return;
  }
  let tokens = burst;
  let last = grants[0] ?? 0;
  for (const at of grants) {
    tokens = Math.min(burst, tokens + ((at - last) * rate) / interval);
    last = at;
    expect(tokens).toBeGreaterThanOrEqual(1 - EPSILON);
    tokens -= 1;
  }
  // And so no closed window of `interval` holds more than rate + burst.
  for (let i = 0, end = 0; i < grants.length; i++) {
    while (end < grants.length && (grants[end] as number) <= (grants[i] as number) + interval) end++;
    expect(end - i).toBeLessThanOrEqual(rate + burst);
  }
}

describe('RateLimiter: model property', () => {
  it('grants within the limit, first in first out, exactly when told, and settles every call once', async () => {
    await fc.assert(fc.asyncProperty(scenarios, check), propertyParameters(150));
  }, 120_000);
});
