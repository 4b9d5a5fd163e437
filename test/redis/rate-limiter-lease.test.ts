/**
 * RedisRateLimiter's permit lease (`leaseSize` > 1) against a real redis-server, with ioredis and
 * with node-redis: how many round trips calls make (counted by the server, `INFO commandstats`),
 * spare permits used and lapsing, racing callers sharing one round trip, `maxWait`, aborts at
 * every stage, the store stopped, restarted and flushed while a lease is held, and the options.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, MetricsRegistry, RateLimitedError, compose, isRefusal, retryWithBackoff, withTimeout } from '../../src/index.js';
import { RedisRateLimiter, RedisStoreError, type RedisRateLimiterOptions } from '../../src/redis/index.js';
import { settle, useRedisServer, type Family, type TestClient } from './clients.js';
import { RedisServer } from './server.js';

const { client } = useRedisServer();
let unique = 0;

function limiter(c: TestClient, options: Partial<RedisRateLimiterOptions> & { name: string }): RedisRateLimiter {
  return new RedisRateLimiter(c.client, { rate: 100, interval: 60_000, ...options });
}

/** Script round trips the server has seen (EVALSHA and EVAL, a NOSCRIPT refusal included), read from its own statistics. */
async function roundTrips(c: TestClient): Promise<number> {
  const stats = String(await c.command('INFO', 'commandstats'));
  let total = 0;
  for (const match of stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+),.*?rejected_calls=(\d+)/gm)) total += Number(match[1]) + Number(match[2]);
  return total;
}

const ok = () => 'ran';

/** Loads both scripts of the limiter on the server, so a test counting round trips does not count a first NOSCRIPT. */
async function loaded(c: TestClient): Promise<TestClient> {
  await limiter(c, { name: `load-${unique++}` }).execute(ok);
  await limiter(c, { name: `load-${unique++}`, leaseSize: 2 }).execute(ok);
  return c;
}
const tick = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe.each<Family>(['ioredis', 'node-redis'])('RedisRateLimiter leaseSize with %s', (family) => {
  it('one round trip takes leaseSize permits: the next leaseSize − 1 calls start with none, and the bucket shows them taken', async () => {
    const c = await loaded(await client(family));
    const l = limiter(c, { name: `lease-${family}-${unique++}`, leaseSize: 5 });
    const before = await roundTrips(c);
    expect(await l.execute(ok)).toBe('ran');
    expect(await roundTrips(c)).toBe(before + 1);
    expect(l.leased).toBe(4);
    for (let i = 0; i < 4; i++) expect(await l.execute(ok)).toBe('ran');
    expect(await roundTrips(c)).toBe(before + 1);
    expect(l.leased).toBe(0);
    expect(await l.execute(ok)).toBe('ran');
    expect(await roundTrips(c)).toBe(before + 2);
    expect(l.leased).toBe(4);
    // 10 permits left the bucket of 100 (it refills 100 a minute: a few ms add a few hundredths).
    const tokens = Number(await c.command('HGET', l.key, 'tokens'));
    expect(tokens).toBeGreaterThanOrEqual(90);
    expect(tokens).toBeLessThan(90.5);
  });

  it('spare permits lapse leaseTime after the round trip that took them', async () => {
    const c = await loaded(await client(family));
    const l = limiter(c, { name: `lapse-${family}-${unique++}`, leaseSize: 5, leaseTime: 1_000 });
    vi.useFakeTimers({ toFake: ['Date'] }); // the limiter's clock only: sockets and the store's timeout run for real
    await l.execute(ok);
    expect(l.leased).toBe(4);
    const before = await roundTrips(c);
    vi.setSystemTime(Date.now() + 999);
    expect(await l.execute(ok)).toBe('ran');
    expect(await roundTrips(c)).toBe(before);
    expect(l.leased).toBe(3);
    vi.setSystemTime(Date.now() + 1);
    expect(l.leased).toBe(0); // lapsed
    expect(await l.execute(ok)).toBe('ran');
    expect(await roundTrips(c)).toBe(before + 1);
    expect(l.leased).toBe(4);
  });

  it('100 callers racing on an empty lease share one round trip, and each settles once', async () => {
    const c = await loaded(await client(family));
    const l = limiter(c, { name: `herd-${family}-${unique++}`, rate: 1_000, leaseSize: 20 });
    let runs = 0;
    const before = await roundTrips(c);
    const answers = await Promise.all(Array.from({ length: 100 }, () => settle(l.execute(() => ++runs))));
    expect(await roundTrips(c)).toBe(before + 1);
    expect(answers.every((answer) => 'value' in answer)).toBe(true);
    expect(runs).toBe(100);
    expect(new Set(answers.map((answer) => (answer as { value: number }).value)).size).toBe(100);
    expect(l.leased).toBe(19); // a permit for each caller, and leaseSize − 1 spare
  });

  it('100 callers racing on a bucket of 37: one round trip, 37 granted, the rest refused by the server; the next call is refused with no round trip', async () => {
    const c = await loaded(await client(family));
    const l = limiter(c, { name: `small-${family}-${unique++}`, rate: 37, leaseSize: 10 });
    const rejected: number[] = [];
    l.on('rejected', ({ retryAfter }) => rejected.push(retryAfter));
    const before = await roundTrips(c);
    const answers = await Promise.all(Array.from({ length: 100 }, () => settle(l.execute(ok))));
    expect(await roundTrips(c)).toBe(before + 1);
    expect(answers.filter((answer) => 'value' in answer)).toHaveLength(37);
    const refused = answers.flatMap((answer) => ('error' in answer ? [answer.error as RateLimitedError] : []));
    expect(refused).toHaveLength(63);
    for (const error of refused) {
      expect(error).toBeInstanceOf(RateLimitedError);
      expect(error.retryAfter).toBeGreaterThan(60_000 / 37 - 100);
      expect(error.retryAfter).toBeLessThanOrEqual(60_000 / 37 + 1);
    }
    expect(l.leased).toBe(0);
    // The bucket is known empty until its next permit: other replicas can only take permits.
    const again = await settle(l.execute(ok));
    expect(again).toMatchObject({ error: expect.any(RateLimitedError) });
    expect(isRefusal((again as { error: unknown }).error)).toBe(true);
    expect((again as { error: RateLimitedError }).error.retryAfter).toBeGreaterThan(0);
    expect(await roundTrips(c)).toBe(before + 1);
    expect(rejected).toHaveLength(64);
  });

  it('two replicas racing on one bucket: one round trip each, burst granted in all', async () => {
    const name = `pair-${family}-${unique++}`;
    const c = await loaded(await client(family));
    const a = limiter(c, { name, rate: 37, leaseSize: 5 });
    const b = limiter(await client(family), { name, rate: 37, leaseSize: 5 });
    const before = await roundTrips(c);
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => settle((i % 2 === 0 ? a : b).execute(ok))));
    expect(await roundTrips(c)).toBe(before + 2);
    expect(answers.filter((answer) => 'value' in answer).length + a.leased + b.leased).toBe(37);
  });

  it('maxWait: calls on an empty lease reserve the next permits exactly, in order, in one round trip; an abort in that wait answers at once', async () => {
    const c = await loaded(await client(family));
    // One permit per 100 ms, a bucket of 2: the first call takes both (one spare).
    const l = limiter(c, { name: `wait-${family}-${unique++}`, rate: 10, interval: 1_000, burst: 2, leaseSize: 2, maxWait: 250 });
    const delays: number[] = [];
    l.on('delayed', ({ wait }) => delays.push(wait));
    expect(await l.execute(ok)).toBe('ran');
    expect(await l.execute(ok)).toBe('ran'); // the spare permit
    const before = await roundTrips(c);
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const calls = controllers.map((controller) => settle(l.execute(ok, { signal: controller.signal })));
    const third = await calls[2];
    expect(third).toMatchObject({ error: expect.any(RateLimitedError) });
    const { retryAfter } = (third as { error: RateLimitedError }).error;
    expect(retryAfter).toBeGreaterThan(250);
    expect(retryAfter).toBeLessThanOrEqual(300);
    expect(await roundTrips(c)).toBe(before + 1);
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeGreaterThan(50);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect((delays[1] as number) - (delays[0] as number)).toBeCloseTo(100, 0);
    expect(l.leased).toBe(0); // a reservation is never leased
    const reasons = [new Error('first gave up'), new Error('second gave up')];
    controllers[0]?.abort(reasons[0]);
    controllers[1]?.abort(reasons[1]);
    expect(await calls[0]).toEqual({ error: reasons[0] });
    expect(await calls[1]).toEqual({ error: reasons[1] });
  });

  it('aborts before entering and while waiting on the round trip: the caller is answered at once, its permit goes to the others or the lease', async () => {
    const c = await loaded(await client(family));
    const admin = await client(family);
    const l = limiter(c, { name: `abort-${family}-${unique++}`, interval: 3_600_000, leaseSize: 5, timeout: 5_000 });
    const reason = new Error('caller gave up');
    const before = await roundTrips(c);
    expect(await settle(l.execute(ok, { signal: AbortSignal.abort(reason) }))).toEqual({ error: reason });
    // Aborted in the turn it entered: it drops out before the round trip leaves.
    const early = new AbortController();
    const dropped = [settle(l.execute(ok, { signal: early.signal })), settle(l.execute(ok))];
    early.abort(reason);
    expect(await Promise.all(dropped)).toEqual([{ error: reason }, { value: 'ran' }]);
    expect(await roundTrips(c)).toBe(before + 1);
    expect(l.leased).toBe(4);
    for (let i = 0; i < 4; i++) await l.execute(ok);
    // Aborted while the round trip is in flight (held by the server: CLIENT PAUSE blocks scripts):
    // counted in it, its permit then kept as a spare.
    await admin.command('CLIENT', 'PAUSE', '2000', 'WRITE');
    const late = new AbortController();
    const racing = [settle(l.execute(ok)), settle(l.execute(ok, { signal: late.signal })), settle(l.execute(ok))];
    await tick();
    late.abort(reason);
    expect(await racing[1]).toEqual({ error: reason });
    await admin.command('CLIENT', 'UNPAUSE');
    expect(await Promise.all(racing)).toEqual([{ value: 'ran' }, { error: reason }, { value: 'ran' }]);
    expect(await roundTrips(c)).toBe(before + 2);
    expect(l.leased).toBe(4); // 3 calls + 4 spare taken; the aborted call's permit is capped away
    const tokens = Number(await admin.command('HGET', l.key, 'tokens'));
    expect(tokens).toBeGreaterThanOrEqual(100 - 5 - 7);
    expect(tokens).toBeLessThan(100 - 5 - 7 + 0.1);
  });

  it('Redis stopped while the replica holds a lease: its spare permits are used, then a local limiter decides (fail-open), and sharing resumes', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client(family, own.port);
      const l = new RedisRateLimiter(c.client, { name: `down-${family}`, rate: 2, interval: 60_000, leaseSize: 2, timeout: 100, probeInterval: 50, maxWait: 2_000_000_000 });
      const seen: string[] = [];
      l.on('storeDown', () => seen.push('down'));
      l.on('storeUp', () => seen.push('up'));
      expect(await l.execute(ok)).toBe('ran');
      expect(l.leased).toBe(1);
      await own.stop();
      expect(await l.execute(ok)).toBe('ran'); // the spare permit: no round trip, Redis not missed yet
      expect(seen).toEqual([]);
      expect(l.storeUp).toBe(true);
      // 10 racing callers on the empty lease: one round trip fails, and each decides locally (2 permits, the rest wait up to maxWait).
      const aborts = Array.from({ length: 10 }, () => new AbortController());
      const racing = aborts.map((controller) => settle(l.execute(ok, { signal: controller.signal })));
      while (l.storeUp) await tick();
      expect(seen).toEqual(['down']);
      const reason = new Error('waited locally, gave up');
      for (const controller of aborts.slice(2)) controller.abort(reason);
      const answers = await Promise.all(racing);
      expect(answers.slice(0, 2)).toEqual([{ value: 'ran' }, { value: 'ran' }]);
      expect(answers.slice(2).every((answer) => 'error' in answer && answer.error === reason)).toBe(true);
      await own.start(); // empty: a fresh bucket of 2
      let back = false;
      for (let i = 0; i < 100 && !back; i++) {
        await new Promise((resolve) => setTimeout(resolve, 60));
        const probe = new AbortController();
        const answer = settle(l.execute(ok, { signal: probe.signal }));
        await tick();
        back = l.storeUp;
        probe.abort(new Error('done probing'));
        await answer;
      }
      expect(back).toBe(true);
      expect(seen).toEqual(['down', 'up']);
    } finally {
      await own.close();
    }
  });

  it('failClosed: once the lease is spent, the callers racing on the failed round trip are each refused with RedisStoreError', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client(family, own.port);
      const l = new RedisRateLimiter(c.client, { name: `closed-${family}`, rate: 10, leaseSize: 3, timeout: 100, failClosed: true });
      await l.execute(ok);
      await own.stop();
      expect(await l.execute(ok)).toBe('ran');
      expect(await l.execute(ok)).toBe('ran');
      const answers = await Promise.all(Array.from({ length: 10 }, () => settle(l.execute(ok))));
      for (const answer of answers) {
        expect(answer).toMatchObject({ error: expect.any(RedisStoreError) });
        expect(isRefusal((answer as { error: unknown }).error)).toBe(true);
      }
      expect(await settle(l.execute(ok))).toMatchObject({ error: expect.any(RedisStoreError) });
    } finally {
      await own.close();
    }
  });

  it('Redis restarted (script cache lost) and SCRIPT FLUSH while a lease is held: nothing fails', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client(family, own.port);
      const l = new RedisRateLimiter(c.client, { name: `restart-${family}`, rate: 1_000, leaseSize: 2, timeout: 2_000 });
      const failures: unknown[] = [];
      l.on('storeError', ({ error }) => failures.push(error));
      expect(await l.execute(ok)).toBe('ran');
      await c.command('SCRIPT', 'FLUSH');
      for (let i = 0; i < 3; i++) expect(await l.execute(ok)).toBe('ran');
      await own.restart();
      for (let i = 0; i < 4; i++) expect(await l.execute(ok)).toBe('ran');
      expect(failures).toEqual([]);
      expect(l.storeUp).toBe(true);
    } finally {
      await own.close();
    }
  });

  it('the extremes: leaseSize 1 is one round trip per call (no lease); leaseSize burst takes the whole bucket in one', async () => {
    const c = await loaded(await client(family));
    const one = limiter(c, { name: `one-${family}-${unique++}`, leaseSize: 1 });
    let before = await roundTrips(c);
    await Promise.all([one.execute(ok), one.execute(ok), one.execute(ok)]);
    expect(await roundTrips(c)).toBe(before + 3);
    expect(one.leased).toBe(0);
    const all = limiter(c, { name: `all-${family}-${unique++}`, rate: 10, leaseSize: 10 });
    before = await roundTrips(c);
    for (let i = 0; i < 10; i++) expect(await all.execute(ok)).toBe('ran');
    expect(await roundTrips(c)).toBe(before + 1);
    expect(await settle(all.execute(ok))).toMatchObject({ error: expect.any(RateLimitedError) });
    expect(await settle(all.execute(ok))).toMatchObject({ error: expect.any(RateLimitedError) });
    expect(await roundTrips(c)).toBe(before + 2);
  });

  it('composed with the core policies: refusals, from the server or from the replica, are not counted by a breaker nor retried', async () => {
    const c = await loaded(await client(family));
    const l = limiter(c, { name: `composed-${family}-${unique++}`, rate: 2, leaseSize: 2 });
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const registry = new MetricsRegistry();
    registry.track(l, { name: 'composed' });
    const stack = compose(breaker, retryWithBackoff({ maxRetries: 2, baseDelay: 1 }), withTimeout(5_000), l);
    const before = await roundTrips(c);
    expect(await stack.execute(ok)).toBe('ran');
    expect(await stack.execute(ok)).toBe('ran');
    expect(await settle(stack.execute(ok))).toMatchObject({ error: expect.any(RateLimitedError) }); // the server's
    expect(await settle(stack.execute(ok))).toMatchObject({ error: expect.any(RateLimitedError) }); // the replica's
    expect(await roundTrips(c)).toBe(before + 2);
    expect(breaker.state).toBe('closed');
    expect(registry.snapshot().policies.find((policy) => policy.kind === 'shared-rate-limiter')).toMatchObject({ rejections: 2 });
  });

  it('model: whatever the batches and aborts, every call settles once, no permit is made up, and a call is refused only when neither the lease nor the bucket has one', async () => {
    const c = await loaded(await client(family));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.array(fc.constantFrom('plain', 'before', 'entered', 'inFlight'), { minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 6 }),
        async (burst, size, batches) => {
          const leaseSize = Math.min(size, burst);
          // A bucket that does not refill within the test: an hour per permit.
          const l = limiter(c, { name: `model-${family}-${unique++}`, rate: burst, interval: burst * 3_600_000, leaseSize });
          let granted = 0;
          for (const batch of batches) {
            const reason = new Error('aborted');
            const controllers = batch.map(() => new AbortController());
            const runs = batch.map(() => 0);
            const calls = batch.map((stage, i) => {
              const signal = (controllers[i] as AbortController).signal;
              if (stage === 'before') (controllers[i] as AbortController).abort(reason);
              return settle(l.execute(() => ++(runs[i] as number) && i, stage === 'plain' ? {} : { signal }));
            });
            batch.forEach((stage, i) => stage === 'entered' && controllers[i]?.abort(reason));
            await tick();
            batch.forEach((stage, i) => stage === 'inFlight' && controllers[i]?.abort(reason));
            const answers = await Promise.all(calls);
            // A call runs at most once; one answered with a value ran (an abort may come after it started).
            expect(runs.every((n) => n <= 1)).toBe(true);
            answers.forEach((answer, i) => {
              if ('value' in answer) expect([answer.value, runs[i]]).toEqual([i, 1]);
              else if (answer.error !== reason) expect([answer.error, runs[i]]).toEqual([expect.any(RateLimitedError), 0]);
            });
            granted += runs.reduce((sum, n) => sum + n, 0);
            if (answers.some((answer) => 'error' in answer && answer.error instanceof RateLimitedError)) {
              expect(l.leased).toBe(0);
              expect(Number(await c.command('HGET', l.key, 'tokens'))).toBeLessThan(1);
            }
            expect(granted + l.leased).toBeLessThanOrEqual(burst);
          }
        },
      ),
      { numRuns: 25 },
    );
  }, 30_000);
});

describe('RedisRateLimiter leaseSize and leaseTime options', () => {
  const fake = { evalsha: async () => [1, 0, 0], eval: async () => [1, 0, 0] };
  const make = (options: Partial<RedisRateLimiterOptions>) => () => new RedisRateLimiter(fake, { name: 'x', rate: 10, ...options });

  it.each<[unknown, ErrorConstructor, string]>([
    [0, RangeError, 'RedisRateLimiter leaseSize must be a whole number ≥ 1, got 0'],
    [1.5, RangeError, 'RedisRateLimiter leaseSize must be a whole number ≥ 1, got 1.5'],
    [Infinity, RangeError, 'RedisRateLimiter leaseSize must be a whole number ≥ 1, got Infinity'],
    [Number.NaN, RangeError, 'RedisRateLimiter leaseSize must be a number, got NaN'],
    ['5', TypeError, 'RedisRateLimiter leaseSize must be a number, got "5"'],
    [11, RangeError, 'RedisRateLimiter leaseSize must be at most burst (10): a round trip cannot take more permits than the bucket holds, got 11'],
  ])('leaseSize %s is refused', (leaseSize, type, message) => {
    const build = make({ leaseSize: leaseSize as number });
    expect(build).toThrow(type);
    expect(build).toThrow(message);
  });

  it.each<[unknown, ErrorConstructor, string]>([
    [0, RangeError, 'RedisRateLimiter leaseTime must be a finite duration in ms > 0, got 0'],
    [-1, RangeError, 'RedisRateLimiter leaseTime must be a finite duration in ms > 0, got -1'],
    [Infinity, RangeError, 'RedisRateLimiter leaseTime must be a finite duration in ms > 0, got Infinity'],
    [Number.NaN, RangeError, 'RedisRateLimiter leaseTime must be a finite duration in ms > 0, got NaN'],
    ['1', TypeError, 'RedisRateLimiter leaseTime must be a number, got "1"'],
  ])('leaseTime %s is refused', (leaseTime, type, message) => {
    const build = make({ leaseTime: leaseTime as number });
    expect(build).toThrow(type);
    expect(build).toThrow(message);
  });

  it('leaseSize may reach a burst larger than rate; the defaults are no lease and 1 s', () => {
    expect(make({ burst: 50, leaseSize: 50 })().leaseSize).toBe(50);
    const plain = make({})();
    expect([plain.leaseSize, plain.leaseTime, plain.leased]).toEqual([1, 1_000, 0]);
    expect(make({ leaseSize: 2, leaseTime: 1e-3 })().leaseTime).toBe(1e-3);
    expect(make({ rate: 1e9, leaseSize: 1e9, leaseTime: 1e12 })().leaseSize).toBe(1e9);
  });
});

/**
 * The lease's dealing of one answer, with a scripted client (each round trip answered by the test)
 * and the limiter's clock mocked: which call gets which permit, what the replica then holds, and
 * when it refuses calls itself.
 */
describe('RedisRateLimiter leaseSize with a scripted client', () => {
  /** A client whose round trips wait for the test to answer them, their calls/spare arguments recorded. */
  function scripted() {
    const trips: { calls: string; spare: string; answer: (value: unknown) => void; fail: (error: Error) => void }[] = [];
    const run = (...args: unknown[]) =>
      new Promise((answer, fail) => trips.push({ calls: args.at(-2) as string, spare: args.at(-1) as string, answer, fail }));
    return { client: { evalsha: run, eval: run }, trips };
  }
  async function until(check: () => boolean): Promise<void> {
    for (let i = 0; !check(); i++) {
      if (i > 1_000) throw new Error('never happened');
      await tick();
    }
  }
  const make = (client: ReturnType<typeof scripted>['client'], options: Partial<RedisRateLimiterOptions> = {}) =>
    new RedisRateLimiter(client, { name: `scripted-${unique++}`, rate: 10, interval: 10_000, leaseSize: 3, timeout: 60_000, ...options });

  it('calls that failed to catch the round trip in flight take what is free, or wait for the next round trip; calls aborted before it left are not counted', async () => {
    const redis = scripted();
    const l = make(redis.client, { leaseSize: 4 });
    const reason = new Error('gave up');
    const early = new AbortController();
    const first = [settle(l.execute(ok)), settle(l.execute(ok, { signal: early.signal })), settle(l.execute(ok))];
    early.abort(reason);
    await until(() => redis.trips.length === 1);
    expect([redis.trips[0]?.calls, redis.trips[0]?.spare]).toEqual(['2', '3']);
    // Two calls join while it is out: the answer's last free permit goes to the first of them.
    const late = [settle(l.execute(ok)), settle(l.execute(ok))];
    redis.trips[0]?.answer([3, 0, 0]);
    expect(await Promise.all([...first, late[0]])).toEqual([{ value: 'ran' }, { error: reason }, { value: 'ran' }, { value: 'ran' }]);
    expect(l.leased).toBe(0);
    // The other goes on the next round trip, alone.
    await until(() => redis.trips.length === 2);
    expect([redis.trips[1]?.calls, redis.trips[1]?.spare]).toEqual(['1', '3']);
    redis.trips[1]?.answer([2, 0, 0]);
    expect(await late[1]).toEqual({ value: 'ran' });
    expect(l.leased).toBe(1);
  });

  it('the permit of a call aborted in flight goes to the lease, and its reservation to the next call (in order)', async () => {
    const redis = scripted();
    const l = make(redis.client, { leaseSize: 5, maxWait: 1_000 });
    const delays: number[] = [];
    l.on('delayed', ({ wait }) => delays.push(wait));
    const reason = new Error('gave up');
    const controller = new AbortController();
    const calls = [settle(l.execute(ok, { signal: controller.signal })), settle(l.execute(ok))];
    await until(() => redis.trips.length === 1);
    controller.abort(reason);
    redis.trips[0]?.answer([3, 0, 0]); // 3 free: the live call takes one, the lease keeps 2
    expect(await Promise.all(calls)).toEqual([{ error: reason }, { value: 'ran' }]);
    expect(l.leased).toBe(2);
    await l.execute(ok);
    await l.execute(ok);
    const again = new AbortController();
    const reserved = [settle(l.execute(ok, { signal: again.signal })), settle(l.execute(ok))];
    await until(() => redis.trips.length === 2);
    again.abort(reason);
    redis.trips[1]?.answer([0, 0, 0, 100_000, 200_000]);
    expect(await Promise.all(reserved)).toEqual([{ error: reason }, { value: 'ran' }]);
    expect(delays).toEqual([100]);
    expect(l.leased).toBe(0);
  });

  it('holds at most leaseSize − 1 spare permits, usable until exactly leaseTime after the round trip left', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(5_000_000);
    const redis = scripted();
    const l = make(redis.client, { leaseSize: 3, leaseTime: 500 });
    const call = l.execute(ok);
    await until(() => redis.trips.length === 1);
    vi.setSystemTime(5_000_200); // the answer comes 200 ms later: the lease counts from the round trip's start
    redis.trips[0]?.answer([9, 0, 0]);
    expect(await call).toBe('ran');
    expect(l.leased).toBe(2);
    vi.setSystemTime(5_000_499);
    expect(l.leased).toBe(2);
    vi.setSystemTime(5_000_500);
    expect(l.leased).toBe(0);
  });

  it('after the server refuses, calls are refused here, with no round trip, until the next permit is within maxWait', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(6_000_000);
    const redis = scripted();
    const l = make(redis.client, { rate: 4, interval: 8_000, maxWait: 300 });
    const rejected: number[] = [];
    l.on('rejected', ({ retryAfter }) => rejected.push(retryAfter));
    const asked = settle(l.execute(ok));
    await until(() => redis.trips.length === 1);
    // One more call joins while the round trip is out: it was not counted in it.
    vi.setSystemTime(6_000_010);
    const joined = settle(l.execute(ok));
    vi.setSystemTime(6_000_040);
    redis.trips[0]?.answer([0, 2_000_000, 0]); // the next permit 2 000 ms after the round trip left
    expect(await asked).toEqual({ error: new RateLimitedError('limit', 2_000, 4, 8_000) });
    // The bucket is known empty until 6 001 700 (the permit at 6 002 000 less maxWait): the late call is refused too.
    expect(await joined).toEqual({ error: new RateLimitedError('limit', 1_960, 4, 8_000) });
    vi.setSystemTime(6_001_699);
    const here = await settle(l.execute(ok));
    expect(here).toEqual({ error: new RateLimitedError('limit', 301, 4, 8_000) });
    expect(redis.trips).toHaveLength(1);
    expect(rejected).toEqual([2_000, 1_960, 301]);
    vi.setSystemTime(6_001_700);
    const next = settle(l.execute(ok));
    await until(() => redis.trips.length === 2);
    redis.trips[1]?.answer([0, 0, 0, 300_000]);
    expect(await next).toEqual({ value: 'ran' });
  });

  it('a call aborted while its round trip is out, which then fails, takes no local permit and is not refused', async () => {
    for (const failClosed of [false, true]) {
      const redis = scripted();
      const l = make(redis.client, { rate: 2, interval: 60_000, leaseSize: 2, probeInterval: 60_000, failClosed });
      const rejected: unknown[] = [];
      l.on('rejected', (event) => rejected.push(event));
      const reason = new Error('gave up');
      const controller = new AbortController();
      const call = settle(l.execute(ok, { signal: controller.signal }));
      await until(() => redis.trips.length === 1);
      controller.abort(reason);
      expect(await call).toEqual({ error: reason });
      redis.trips[0]?.fail(new Error('connection lost'));
      await until(() => !l.storeUp);
      await tick();
      expect(rejected).toEqual([]);
      // Fail-open: the local bucket still has both its permits.
      if (!failClosed) expect([await l.execute(ok), await l.execute(ok)]).toEqual(['ran', 'ran']);
    }
  });

  it('while Redis is down, the lease round trip in flight is the probe: other calls decide locally, and a failure hands its callers to the local limiter', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(7_000_000);
    const redis = scripted();
    const l = make(redis.client, { rate: 2, interval: 60_000, probeInterval: 1_000, leaseSize: 2 });
    const first = settle(l.execute(ok));
    await until(() => redis.trips.length === 1);
    redis.trips[0]?.fail(new Error('connection lost'));
    expect(await first).toEqual({ value: 'ran' }); // local: 1 of 2
    expect(l.storeUp).toBe(false);
    vi.setSystemTime(7_001_000);
    const probe = settle(l.execute(ok));
    await until(() => redis.trips.length === 2);
    // The probe is out: this call does not wait on it, the local limiter lets it in (2 of 2) at once.
    expect(await settle(l.execute(ok))).toEqual({ value: 'ran' });
    redis.trips[1]?.fail(new Error('still down'));
    expect(await probe).toMatchObject({ error: expect.any(RateLimitedError) }); // the local bucket is spent
    expect(redis.trips).toHaveLength(2);
  });

  it('reservations go to the waiting calls in order, each with its own wait; a call beyond them is refused with the server\'s retryAfter', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const redis = scripted();
    const l = make(redis.client, { leaseSize: 3, maxWait: 250 });
    const delays: number[] = [];
    l.on('delayed', ({ wait }) => delays.push(wait));
    const order: number[] = [];
    const calls = [0, 1, 2].map((i) => settle(l.execute(() => order.push(i) && i)));
    await until(() => redis.trips.length === 1);
    expect([redis.trips[0]?.calls, redis.trips[0]?.spare]).toEqual(['3', '2']);
    redis.trips[0]?.answer([0, 300_000, 0, 100_000, 200_000]);
    expect(await calls[2]).toEqual({ error: new RateLimitedError('limit', 300, 10, 10_000) });
    expect(delays).toEqual([100, 200]);
    await vi.advanceTimersByTimeAsync(99);
    expect(order).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(order).toEqual([0]);
    await vi.advanceTimersByTimeAsync(100);
    expect(order).toEqual([0, 1]);
    expect(await Promise.all(calls.slice(0, 2))).toEqual([{ value: 0 }, { value: 1 }]);
    expect(vi.getTimerCount()).toBe(0);
    expect(l.leased).toBe(0);
  });

  it('a call that joined after the round trip left is refused only while the next permit is beyond maxWait; from that instant it goes on the next round trip', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(8_000_000);
    const redis = scripted();
    const l = make(redis.client, { rate: 4, interval: 8_000, maxWait: 300 });
    const asked = settle(l.execute(ok));
    await until(() => redis.trips.length === 1);
    const joined = settle(l.execute(ok));
    // The answer comes exactly when the next permit (8 002 000) is maxWait away.
    vi.setSystemTime(8_001_700);
    redis.trips[0]?.answer([0, 2_000_000, 0]);
    expect(await asked).toEqual({ error: new RateLimitedError('limit', 2_000, 4, 8_000) });
    await until(() => redis.trips.length === 2);
    expect(redis.trips[1]?.calls).toBe('1');
    redis.trips[1]?.answer([0, 0, 0, 300_000]);
    expect(await joined).toEqual({ value: 'ran' });
  });

  it('while the round trip started by an answer is out, a new call waits for it: never two round trips at once', async () => {
    const redis = scripted();
    const l = make(redis.client, { leaseSize: 2 });
    const first = settle(l.execute(ok));
    await until(() => redis.trips.length === 1);
    const late = settle(l.execute(ok)); // joins while the first round trip is out
    redis.trips[0]?.answer([1, 0, 0]); // one free permit: the first call's; the late one goes on the next round trip
    expect(await first).toEqual({ value: 'ran' });
    await until(() => redis.trips.length === 2);
    const later = settle(l.execute(ok));
    for (let i = 0; i < 5; i++) await tick();
    expect(redis.trips).toHaveLength(2);
    redis.trips[1]?.answer([2, 0, 0]); // two free: the late call's, and one for the call that joined it
    expect(await Promise.all([late, later])).toEqual([{ value: 'ran' }, { value: 'ran' }]);
    expect(redis.trips).toHaveLength(2);
    expect(l.leased).toBe(0);
  });

  it('a rejected listener that cancels the rest of the batch: those calls answer with the reason, with no rejected event of their own', async () => {
    const redis = scripted();
    const l = make(redis.client, { leaseSize: 2 });
    const batch = new AbortController();
    const reason = new Error('batch cancelled');
    const rejected: unknown[] = [];
    l.on('rejected', ({ error }) => {
      rejected.push(error);
      batch.abort(reason);
    });
    // The first call is the batch's lead (its own signal); the two after it are cancelled with the batch.
    const calls = [settle(l.execute(ok)), settle(l.execute(ok, { signal: batch.signal })), settle(l.execute(ok, { signal: batch.signal }))];
    await until(() => redis.trips.length === 1);
    redis.trips[0]?.answer([0, 500_000, 0]);
    const refusal = new RateLimitedError('limit', 500, 10, 10_000);
    expect(await Promise.all(calls)).toEqual([{ error: refusal }, { error: reason }, { error: reason }]);
    expect(rejected).toEqual([refusal]);
  });
});
