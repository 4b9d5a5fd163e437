/**
 * RedisRateLimiter against a real redis-server, with ioredis and with node-redis (and once with
 * iovalkey): the shared bucket, reservations within maxWait, and the store's failure modes
 * (stopped, paused with SIGSTOP, restarted with its script cache flushed).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MetricsRegistry, RateLimitedError, compose, isRateLimitedError, isRefusal, logPolicyEvents, retryWithBackoff, withTimeout, CircuitBreaker, type PolicyLogger } from '../../src/index.js';
import { renderPrometheus } from '../../src/prometheus/index.js';
import { RedisRateLimiter, RedisStoreError, type RedisRateLimiterOptions } from '../../src/redis/index.js';
import { settle, useRedisServer, type Family, type TestClient } from './clients.js';
import { RedisServer } from './server.js';

const { client } = useRedisServer();
let unique = 0;

function limiter(c: TestClient, options: Partial<RedisRateLimiterOptions> & { name: string }): RedisRateLimiter {
  return new RedisRateLimiter(c.client, { rate: 3, interval: 60_000, ...options });
}

const ok = () => 'ran';

describe.each<Family>(['ioredis', 'node-redis'])('RedisRateLimiter with %s', (family) => {
  it('grants burst permits across every replica sharing the name, then refuses with the server\'s exact retryAfter', async () => {
    const name = `shared-${family}-${unique++}`;
    const a = limiter(await client(family), { name });
    const b = limiter(await client(family), { name });
    const answers = await Promise.all([a, b, a, b, a].map((l) => settle(l.execute(ok))));
    const granted = answers.filter((answer) => 'value' in answer);
    const refused = answers.map((answer) => ('error' in answer ? answer.error : undefined)).filter((error) => error !== undefined);
    expect(granted).toHaveLength(3);
    expect(refused).toHaveLength(2);
    for (const error of refused) {
      expect(error).toBeInstanceOf(RateLimitedError);
      expect(isRateLimitedError(error) && isRefusal(error)).toBe(true);
      const { retryAfter, reason } = error as RateLimitedError;
      expect(reason).toBe('limit');
      // One permit per 20 000 ms: the next is at most that far, and nearly that (a few ms passed).
      expect(retryAfter).toBeGreaterThan(19_000);
      expect(retryAfter).toBeLessThanOrEqual(20_000);
    }
  });

  it('a call whose permit is within maxWait reserves it in the same round trip and waits for it', async () => {
    const name = `wait-${family}-${unique++}`;
    // One permit per 100 ms: the second call, right after the first, finds its permit ~100 ms away.
    const l = limiter(await client(family), { name, rate: 10, interval: 1_000, burst: 1, maxWait: 150 });
    const delays: number[] = [];
    l.on('delayed', ({ wait }) => delays.push(wait));
    expect(await l.execute(ok)).toBe('ran');
    expect(await l.execute(ok)).toBe('ran');
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThan(0);
    expect(delays[0]).toBeLessThanOrEqual(100);
  });

  it('an aborted call answers at once with the reason and arms nothing more', async () => {
    const name = `abort-${family}-${unique++}`;
    const l = limiter(await client(family), { name });
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const call = settle(l.execute(ok, { signal: controller.signal }));
    controller.abort(reason);
    expect(await call).toEqual({ error: reason });
  });

  it('Redis stopped: calls go on under a local limiter of the same options, storeDown then storeUp, and sharing resumes', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client(family, own.port);
      const l = new RedisRateLimiter(c.client, { name: `down-${family}`, rate: 2, interval: 60_000, timeout: 100, probeInterval: 50 });
      const seen: string[] = [];
      l.on('storeDown', () => seen.push('down'));
      l.on('storeUp', () => seen.push('up'));
      expect(await l.execute(ok)).toBe('ran'); // shared: 1 of 2 taken in Redis
      await own.stop();
      expect(await l.execute(ok)).toBe('ran'); // local bucket, full: 2 permits
      expect(l.storeUp).toBe(false);
      expect(await l.execute(ok)).toBe('ran');
      expect(await settle(l.execute(ok))).toMatchObject({ error: expect.any(RateLimitedError) });
      expect(seen).toEqual(['down']);
      await own.start(); // empty: a fresh bucket of 2
      await new Promise((resolve) => setTimeout(resolve, 60));
      let back = false;
      for (let i = 0; i < 100 && !back; i++) {
        await settle(l.execute(ok));
        back = l.storeUp;
        if (!back) await new Promise((resolve) => setTimeout(resolve, 60));
      }
      expect(back).toBe(true);
      expect(seen).toEqual(['down', 'up']);
    } finally {
      await own.close();
    }
  });

  it('failClosed: while Redis is down calls are refused with RedisStoreError (a refusal)', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client(family, own.port);
      const l = new RedisRateLimiter(c.client, { name: `closed-${family}`, rate: 2, timeout: 100, failClosed: true });
      await own.stop();
      const first = await settle(l.execute(ok));
      const second = await settle(l.execute(ok));
      for (const answer of [first, second]) {
        expect(answer).toMatchObject({ error: expect.any(RedisStoreError) });
        expect(isRefusal((answer as { error: unknown }).error)).toBe(true);
      }
    } finally {
      await own.close();
    }
  });

  it('Redis paused (SIGSTOP): no call waits on it longer than the store timeout', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client(family, own.port);
      const l = new RedisRateLimiter(c.client, { name: `paused-${family}`, rate: 100, timeout: 100, probeInterval: 10_000 });
      const downs: unknown[] = [];
      l.on('storeDown', (event) => downs.push(event));
      await l.execute(ok);
      own.pause();
      // The server stays stopped until every call below has settled: a call that waited on it
      // would never settle. The store's timeout ends each wait and the local limiter decides.
      const answers = await Promise.all(Array.from({ length: 20 }, () => settle(l.execute(ok))));
      expect(answers.every((answer) => 'value' in answer)).toBe(true); // fail-open
      expect(downs).toHaveLength(1);
      // Later calls decide locally, without asking the paused server.
      expect(await l.execute(ok)).toBe('ran');
      own.resume();
    } finally {
      await own.close();
    }
  });

  it('Redis restarted (script cache lost) and SCRIPT FLUSH: nothing fails', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client(family, own.port);
      const l = new RedisRateLimiter(c.client, { name: `restart-${family}`, rate: 1_000, timeout: 2_000 });
      const failures: unknown[] = [];
      l.on('storeError', ({ error }) => failures.push(error));
      expect(await l.execute(ok)).toBe('ran');
      await c.command('SCRIPT', 'FLUSH');
      expect(await l.execute(ok)).toBe('ran');
      await own.restart();
      // The client reconnects by itself; the first call after it finds no script and loads it.
      expect(await l.execute(ok)).toBe('ran');
      expect(await l.execute(ok)).toBe('ran');
      expect(failures).toEqual([]);
    } finally {
      await own.close();
    }
  });

  it('100 callers racing on two replicas: exactly burst granted, the rest refused', async () => {
    const name = `race-${family}-${unique++}`;
    const a = limiter(await client(family), { name, rate: 37 });
    const b = limiter(await client(family), { name, rate: 37 });
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => settle((i % 2 === 0 ? a : b).execute(ok))));
    expect(answers.filter((answer) => 'value' in answer)).toHaveLength(37);
  });

  it('composed with the core policies: a refusal is not counted by a breaker nor retried', async () => {
    const name = `composed-${family}-${unique++}`;
    const l = limiter(await client(family), { name, rate: 1 });
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const stack = compose(breaker, retryWithBackoff({ maxRetries: 2, baseDelay: 1 }), withTimeout(5_000), l);
    expect(await stack.execute(ok)).toBe('ran');
    expect(await settle(stack.execute(ok))).toMatchObject({ error: expect.any(RateLimitedError) });
    expect(breaker.state).toBe('closed');
  });
});

describe('RedisRateLimiter with iovalkey', () => {
  it('shares the bucket and survives SCRIPT FLUSH', async () => {
    const c = await client('iovalkey');
    const l = limiter(c, { name: `valkey-${unique++}`, rate: 2 });
    expect(await l.execute(ok)).toBe('ran');
    await c.command('SCRIPT', 'FLUSH');
    expect(await l.execute(ok)).toBe('ran');
    expect(await settle(l.execute(ok))).toMatchObject({ error: expect.any(RateLimitedError) });
  });
});

describe('RedisRateLimiter observed', () => {
  it('MetricsRegistry, renderPrometheus and logPolicyEvents read its description', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client('ioredis', own.port);
      const l = new RedisRateLimiter(c.client, { name: 'observed', rate: 1, timeout: 100 });
      const registry = new MetricsRegistry();
      registry.track(l);
      const lines: unknown[][] = [];
      const logger: PolicyLogger = { info: (...args) => void lines.push(['info', ...args]), warn: (...args) => void lines.push(['warn', ...args]), error: (...args) => void lines.push(['error', ...args]) };
      const stop = logPolicyEvents(l, logger, { summaryInterval: 0 });
      await l.execute(ok);
      await settle(l.execute(ok));
      await own.stop();
      await l.execute(ok);
      const mine = registry.snapshot().policies.find((policy) => policy.kind === 'shared-rate-limiter') as Record<string, unknown>;
      expect(mine).toMatchObject({ name: 'observed', rejections: 1, redisStoreUp: 0, redisStoreFailures: 1 });
      const text = renderPrometheus(registry);
      expect(text).toMatch(/bulwark_redis_store_up\{[^}]*policy="observed"[^}]*\} 0/);
      expect(text).toMatch(/bulwark_redis_store_failures_total\{[^}]*\} 1/);
      expect(lines.map((line) => line[0])).toEqual(['warn', 'error']);
      stop();
    } finally {
      await own.close();
    }
  });
});

describe('RedisRateLimiter options', () => {
  const fake = { evalsha: async () => [1, 0, 0], eval: async () => [1, 0, 0] };
  it('refuses a value that is not a client', () => {
    expect(() => new RedisRateLimiter({} as never, { name: 'x', rate: 1 })).toThrow(TypeError);
    expect(() => new RedisRateLimiter(undefined as never, { name: 'x', rate: 1 })).toThrow(/ioredis, iovalkey or node-redis/);
  });
  it('requires name and rate and checks every value', () => {
    expect(() => new RedisRateLimiter(fake, { rate: 1 } as never)).toThrow(/name is required/);
    expect(() => new RedisRateLimiter(fake, { name: 'x' } as never)).toThrow(/rate is required/);
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 0 })).toThrow(/rate must be a whole number ≥ 1, got 0/);
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 1, interval: 0 })).toThrow(RangeError);
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 1, burst: 1.5 })).toThrow(RangeError);
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 1, maxWait: -1 })).toThrow(RangeError);
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 1, timeout: 0 })).toThrow(RangeError);
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 1, failClosed: 'yes' as never })).toThrow(TypeError);
    expect(() => new RedisRateLimiter(fake, { name: '', rate: 1 })).toThrow();
  });
  it.each(['interval', 'leaseTime'] as const)('%s: a TypeError for a value not a number, a RangeError for one not a finite duration > 0, each naming the value', (option) => {
    const make = (value: unknown) => () => new RedisRateLimiter(fake, { name: 'x', rate: 1, [option]: value } as never);
    expect(make('5')).toThrow(new TypeError(`RedisRateLimiter ${option} must be a number, got "5"`));
    for (const value of [0, -1, -Infinity, Infinity, NaN]) {
      expect(make(value)).toThrow(new RangeError(`RedisRateLimiter ${option} must be a finite duration in ms > 0, got ${value}`));
    }
    expect(new RedisRateLimiter(fake, { name: 'x', rate: 1, [option]: Number.MIN_VALUE })[option]).toBe(Number.MIN_VALUE);
  });
  it('names ours for the peers\' option names', () => {
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 1, points: 5 } as never)).toThrow(/points.*"rate"/s);
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 1, reservoir: 5 } as never)).toThrow(/reservoir/);
  });
  const KNOWN = 'known options: "name", "rate", "interval", "burst", "maxWait", "timeout", "probeInterval", "failClosed", "leaseSize", "leaseTime"';
  it('a misspelt option: a TypeError naming it, the nearest, and every option it has', () => {
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 1, maxWiat: 5 } as never)).toThrow(
      new TypeError(`RedisRateLimiter has no option "maxWiat" (did you mean "maxWait"?); ${KNOWN}`),
    );
  });
  it.each([
    ['points', '"rate"'],
    ['duration', '"interval" (in ms, where duration is in seconds)'],
    ['keyPrefix', '"name"'],
    ['storeClient', 'the first argument (the client)'],
    ['execEvenly', '"maxWait" (calls reserve their permit and wait for it)'],
    ['insuranceLimiter', 'none: a local RateLimiter of the same options stands in while Redis is down ("failClosed": false)'],
    ['reservoir', '"rate" (the permits of each "interval")'],
    ['reservoirRefreshAmount', '"rate"'],
    ['reservoirRefreshInterval', '"interval"'],
    ['minTime', '"rate" and "interval" (minTime: 100 is rate: 1, interval: 100)'],
    ['datastore', 'the first argument (the client)'],
    ['clientOptions', 'the first argument (the client)'],
    ['id', '"name"'],
    ['highWater', 'none: calls wait at most "maxWait"'],
    ['algorithm', 'none: the shared limiter is a token bucket'],
    ['maxQueue', 'none: calls reserve their permit and wait at most "maxWait"'],
    ['clock', 'none: time is the Redis server\'s'],
  ])('another library\'s option %s: a TypeError naming ours, %s', (peer, ours) => {
    expect(() => new RedisRateLimiter(fake, { name: 'x', rate: 1, [peer]: 1 } as never)).toThrow(
      new TypeError(`RedisRateLimiter has no option "${peer}" (another library's name: bulwark's is ${ours}); ${KNOWN}`),
    );
  });
  it('accepts the extremes', () => {
    expect(new RedisRateLimiter(fake, { name: 'x', rate: 1, interval: 1e-3, burst: 1, maxWait: 0 }).key).toBe('{bulwark:x}:rate');
    expect(new RedisRateLimiter(fake, { name: 'x', rate: 1e9, burst: 1e9, maxWait: 2_147_483_647, timeout: 1 }).rate).toBe(1e9);
  });
});

/**
 * The store's ups and downs with a scripted client (its script calls counted) and a mocked
 * `Date`: exactly when a replica asks Redis again while it is down.
 */
describe('RedisRateLimiter while Redis is down: one probe per probeInterval', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function scripted() {
    let trips = 0;
    let answer: () => Promise<unknown> = () => Promise.reject(new Error('connection refused'));
    const run = async () => {
      trips++;
      return answer();
    };
    return {
      client: { evalsha: run, eval: run },
      trips: () => trips,
      answer: (next: () => Promise<unknown>) => (answer = next),
    };
  }

  it('fail-open: the others decide locally; the next probe goes probeInterval after the last failure; storeDown and storeUp once, storeError per failure', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000_000);
    const redis = scripted();
    const limiter = new RedisRateLimiter(redis.client, { name: 'probe', rate: 1_000, probeInterval: 1_000, timeout: 60_000 });
    const seen: string[] = [];
    limiter.on('storeError', ({ error }) => seen.push(`storeError ${error.message}`));
    limiter.on('storeDown', ({ error }) => seen.push(`storeDown ${error.message}`));
    limiter.on('storeUp', () => seen.push('storeUp'));
    expect(await limiter.execute(ok)).toBe('ran'); // Redis failed: the local limiter let it in
    expect(redis.trips()).toBe(1);
    expect(seen).toEqual(['storeError RedisRateLimiter: Redis failed: connection refused', 'storeDown RedisRateLimiter: Redis failed: connection refused']);
    expect(limiter.storeUp).toBe(false);
    vi.setSystemTime(1_000_999);
    expect(await limiter.execute(ok)).toBe('ran');
    expect(redis.trips()).toBe(1);
    // probeInterval after the failure: this call is the probe, and its answer is slow.
    vi.setSystemTime(1_001_000);
    let fail!: (error: Error) => void;
    redis.answer(() => new Promise((_, reject) => (fail = reject)));
    const probe = limiter.execute(ok);
    await vi.waitFor(() => expect(redis.trips()).toBe(2));
    // While its answer is awaited, no other call asks, even past another probeInterval.
    vi.setSystemTime(1_002_100);
    expect(await limiter.execute(ok)).toBe('ran');
    expect(redis.trips()).toBe(2);
    vi.setSystemTime(1_002_300);
    fail(new Error('still down'));
    expect(await probe).toBe('ran');
    expect(seen.slice(2)).toEqual(['storeError RedisRateLimiter: Redis failed: still down']);
    // The next probe is counted from that failure, not from when the probe asked.
    vi.setSystemTime(1_003_299);
    expect(await limiter.execute(ok)).toBe('ran');
    expect(redis.trips()).toBe(2);
    vi.setSystemTime(1_003_300);
    redis.answer(async () => [1, 0, 0]);
    expect(await limiter.execute(ok)).toBe('ran');
    expect(redis.trips()).toBe(3);
    expect(seen.slice(3)).toEqual(['storeUp']);
    expect(limiter.storeUp).toBe(true);
    // Shared again: every call asks Redis.
    await limiter.execute(ok);
    await limiter.execute(ok);
    expect(redis.trips()).toBe(5);
    expect(seen).toHaveLength(4);
  });

  it('failClosed: a call refused while the probe is out is told to retry when the next probe may go', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(2_000_000);
    const redis = scripted();
    const limiter = new RedisRateLimiter(redis.client, { name: 'probe-closed', rate: 1_000, probeInterval: 1_000, timeout: 60_000, failClosed: true });
    const refusals: number[] = [];
    limiter.on('rejected', ({ retryAfter }) => refusals.push(retryAfter));
    expect(await settle(limiter.execute(ok))).toMatchObject({ error: expect.any(RedisStoreError) });
    vi.setSystemTime(2_000_400);
    const refused = await settle(limiter.execute(ok));
    expect((refused as { error: RedisStoreError }).error).toEqual(new RedisStoreError('RedisRateLimiter: Redis is down and failClosed is set'));
    // The probe asks at 2 001 000 and its answer is slow: a call 250 ms later waits 750 ms.
    vi.setSystemTime(2_001_000);
    let fail!: (error: Error) => void;
    redis.answer(() => new Promise((_, reject) => (fail = reject)));
    const probe = settle(limiter.execute(ok));
    await vi.waitFor(() => expect(redis.trips()).toBe(2));
    vi.setSystemTime(2_001_250);
    await settle(limiter.execute(ok));
    expect(refusals).toEqual([1_000, 600, 750]);
    fail(new Error('still down'));
    expect(await probe).toMatchObject({ error: expect.any(RedisStoreError) });
  });
});

/**
 * The limiter's side of the protocol with a scripted client (no server): the script's arguments,
 * how each answer is carried out, and what a call that left before the answer leaves behind.
 */
describe('RedisRateLimiter with a scripted client', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Waits (on real turns of the event loop, the fake clock left alone) until `check` passes. */
  async function until(check: () => void): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        check();
        return;
      } catch (error) {
        if (i > 1_000) throw error;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  /** A client whose every script call is recorded and answered by `answer` (by default, granted at once). */
  function recorded(answer: (args: unknown[]) => Promise<unknown> = async () => [1, 0, 0]) {
    const calls: unknown[][] = [];
    const run = (...args: unknown[]) => {
      calls.push(args);
      return answer(args);
    };
    return { client: { evalsha: run, eval: run }, calls };
  }

  it('options: name and rate are required, with messages saying why', () => {
    const { client } = recorded();
    expect(() => new RedisRateLimiter(client, undefined as never)).toThrow(new TypeError('RedisRateLimiter(client, options): options with name and rate are required, got undefined'));
    expect(() => new RedisRateLimiter(client, null as never)).toThrow(new TypeError('RedisRateLimiter(client, options): options with name and rate are required, got null'));
    expect(() => new RedisRateLimiter(client, { rate: 1 } as never)).toThrow(new TypeError('RedisRateLimiter name is required: every replica sharing the limit uses the same name'));
    expect(() => new RedisRateLimiter(client, { name: 'x' } as never)).toThrow(new TypeError('RedisRateLimiter rate is required (permits per interval)'));
    expect(() => new RedisRateLimiter(client, { name: '', rate: 1 })).toThrow(new RangeError('RedisRateLimiter name must be a non-empty string, got ""'));
    expect(() => new RedisRateLimiter(client, { name: 'x', rate: 1, probeInterval: -1 })).toThrow(RangeError);
  });

  it('each option error names the option and the limiter', () => {
    const { client } = recorded();
    const make = (options: object) => () => new RedisRateLimiter(client, { name: 'x', rate: 1, ...options });
    expect(() => new RedisRateLimiter(undefined as never, { name: 'x', rate: 1 })).toThrow(
      new TypeError('RedisRateLimiter client must be an ioredis, iovalkey or node-redis (v4+) client or cluster (with evalsha/evalSha and eval), got undefined'),
    );
    expect(make({ name: 5 })).toThrow(new TypeError('RedisRateLimiter name must be a string, got 5'));
    expect(make({ burst: 0 })).toThrow(new RangeError('RedisRateLimiter burst must be a whole number ≥ 1, got 0'));
    expect(make({ maxWait: -1 })).toThrow(new RangeError('RedisRateLimiter maxWait must be a duration in ms from 0 to 2147483647, got -1'));
    expect(make({ timeout: -1 })).toThrow(new RangeError('RedisRateLimiter timeout must be a duration in ms from 0 to 2147483647, got -1'));
    expect(make({ timeout: 0 })).toThrow(new RangeError('RedisRateLimiter timeout must be a finite duration in ms > 0, got 0'));
    expect(make({ probeInterval: -1 })).toThrow(new RangeError('RedisRateLimiter probeInterval must be a duration in ms from 0 to 2147483647, got -1'));
    expect(make({ failClosed: 1 })).toThrow(new TypeError('RedisRateLimiter failClosed must be true or false, got 1'));
  });

  it('failClosed: a call whose round trip failed is refused with that failure, told to retry after probeInterval (with and without a lease)', async () => {
    // A generous timeout: the first call of a run hashes the script first, which a loaded machine may take 100 ms over.
    for (const leaseSize of [1, 2]) {
      const { client } = recorded(() => Promise.reject(new Error('connection refused')));
      const l = new RedisRateLimiter(client, { name: `closed-${leaseSize}`, rate: 2, probeInterval: 700, failClosed: true, leaseSize, timeout: 10_000 });
      const rejected: unknown[] = [];
      l.on('rejected', (event) => rejected.push(event));
      const { error } = (await settle(l.execute(ok))) as { error: RedisStoreError };
      expect(error).toEqual(new RedisStoreError('RedisRateLimiter: Redis failed: connection refused'));
      expect(rejected).toEqual([{ error, retryAfter: 700 }]);
    }
  });

  it('a lease round trip that does not answer within timeout: storeError names the limiter and the timeout', async () => {
    const { client } = recorded(() => new Promise(() => {}));
    const l = new RedisRateLimiter(client, { name: 'slow-lease', rate: 2, timeout: 30, leaseSize: 2 });
    const errors: RedisStoreError[] = [];
    l.on('storeError', ({ error }) => errors.push(error));
    expect(await l.execute(ok)).toBe('ran');
    expect(errors).toEqual([new RedisStoreError('RedisRateLimiter: Redis did not answer within 30 ms')]);
  });

  it('the defaults in force, and the script gets rate, interval, burst and maxWait on the limit\'s key', async () => {
    const { client, calls } = recorded();
    const plain = new RedisRateLimiter(client, { name: 'defaults', rate: 7 });
    expect({ ...[plain].map(({ interval, burst, maxWait, timeout, probeInterval, failClosed, leaseSize, leaseTime, key }) => ({ interval, burst, maxWait, timeout, probeInterval, failClosed, leaseSize, leaseTime, key }))[0] }).toEqual({
      interval: 1_000, burst: 7, maxWait: 0, timeout: 100, probeInterval: 1_000, failClosed: false, leaseSize: 1, leaseTime: 1_000, key: '{bulwark:defaults}:rate',
    });
    expect(await plain.execute(ok)).toBe('ran');
    const set = new RedisRateLimiter(client, { name: 'set', rate: 5, interval: 2_000, burst: 9, maxWait: 300, timeout: 50, probeInterval: 20, failClosed: true });
    expect([set.timeout, set.probeInterval, set.failClosed]).toEqual([50, 20, true]);
    expect(await set.execute(ok)).toBe('ran');
    expect(calls.map((args) => args.slice(1))).toEqual([
      [1, '{bulwark:defaults}:rate', '7', '1000', '7', '0'],
      [1, '{bulwark:set}:rate', '5', '2000', '9', '300'],
    ]);
  });

  it('a lease round trip also gets how many calls wait and how many spare permits to take', async () => {
    const { client, calls } = recorded(async () => [3, 0, 0]);
    const l = new RedisRateLimiter(client, { name: 'lease-args', rate: 10, leaseSize: 4 });
    expect(await Promise.all([l.execute(ok), l.execute(ok), l.execute(ok)])).toEqual(['ran', 'ran', 'ran']);
    expect(calls.map((args) => args.slice(1))).toEqual([[1, '{bulwark:lease-args}:rate', '10', '1000', '10', '0', '3', '3']]);
  });

  it('a refusal from the server: RateLimitedError with its retryAfter (µs → ms), the rate and interval, and a rejected event', async () => {
    const { client } = recorded(async () => [0, 2_500_000, 0]);
    const l = new RedisRateLimiter(client, { name: 'refused', rate: 4, interval: 10_000, timeout: 10_000 });
    const rejected: unknown[] = [];
    l.on('rejected', (event) => rejected.push(event));
    const { error } = (await settle(l.execute(ok))) as { error: RateLimitedError };
    expect(error).toEqual(new RateLimitedError('limit', 2_500, 4, 10_000));
    expect(error.message).toBe('Rate limit of 4 per 10000 ms reached: the next permit is 2500 ms away');
    expect([error.reason, error.retryAfter, error.rate, error.interval]).toEqual(['limit', 2_500, 4, 10_000]);
    expect(rejected).toEqual([{ error, retryAfter: 2_500 }]);
  });

  it('a permit granted now starts the call with no delayed event; one reserved 40 ms away starts it exactly then', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let wait = 0;
    const { client } = recorded(async () => [1, wait, 0]);
    const l = new RedisRateLimiter(client, { name: 'granted', rate: 4, timeout: 10_000 });
    const delayed: unknown[] = [];
    l.on('delayed', (event) => delayed.push(event));
    const now = l.execute(ok);
    await until(() => expect(vi.getTimerCount()).toBe(0)); // the store's timeout goes with the answer
    expect(await now).toBe('ran');
    expect(delayed).toEqual([]);
    wait = 40_000;
    let started = false;
    const later = l.execute(() => (started = true));
    await until(() => expect(delayed).toEqual([{ wait: 40 }]));
    await vi.advanceTimersByTimeAsync(39);
    expect(started).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await later).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborted while it waits for its reserved permit: answered at once with the reason, its timer gone, the function never run', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { client } = recorded(async () => [1, 5_000_000, 0]);
    const l = new RedisRateLimiter(client, { name: 'abort-reserved', rate: 4, timeout: 10_000 });
    const delayed: unknown[] = [];
    l.on('delayed', (event) => delayed.push(event));
    const controller = new AbortController();
    let runs = 0;
    const call = settle(l.execute(() => ++runs, { signal: controller.signal }));
    // Redis answered (its timeout timer gone): the call waits for the permit it reserved 5 000 ms away.
    await until(() => expect(delayed).toEqual([{ wait: 5_000 }]));
    expect(vi.getTimerCount()).toBe(1); // the reservation's timer
    const reason = new Error('gave up waiting');
    controller.abort(reason);
    expect(await call).toEqual({ error: reason });
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(runs).toBe(0);
  });

  it('aborted while Redis is asked: the answer that comes later arms no timer and emits nothing', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const answers: ((value: unknown) => void)[] = [];
    const { client } = recorded(() => new Promise((resolve) => answers.push(resolve)));
    const l = new RedisRateLimiter(client, { name: 'abort-asked', rate: 4, timeout: 10_000 });
    const events: string[] = [];
    l.on('delayed', () => events.push('delayed'));
    l.on('rejected', () => events.push('rejected'));
    for (const answer of [[1, 5_000_000, 0], [0, 5_000_000, 0]]) {
      const controller = new AbortController();
      const call = settle(l.execute(ok, { signal: controller.signal }));
      await until(() => expect(answers).toHaveLength(1));
      const reason = new Error('gave up');
      controller.abort(reason);
      expect(await call).toEqual({ error: reason });
      answers.shift()?.(answer);
      await vi.advanceTimersByTimeAsync(0);
      // Only the store's own timeout was armed, and the answer cleared it.
      expect(vi.getTimerCount()).toBe(0);
    }
    expect(events).toEqual([]);
  });

  it('aborted while Redis is asked, which then fails: the local limiter\'s permit stays for the next call (fail-open), nothing is refused (failClosed)', async () => {
    for (const failClosed of [false, true]) {
      let fail!: (error: Error) => void;
      const { client } = recorded(() => new Promise((_, reject) => (fail = reject)));
      const l = new RedisRateLimiter(client, { name: `abort-failed-${failClosed}`, rate: 1, interval: 60_000, timeout: 10_000, probeInterval: 60_000, failClosed });
      const rejected: unknown[] = [];
      l.on('rejected', ({ error }) => rejected.push(error));
      const controller = new AbortController();
      const call = settle(l.execute(ok, { signal: controller.signal }));
      await until(() => expect(fail).toBeTypeOf('function'));
      const reason = new Error('gave up');
      controller.abort(reason);
      expect(await call).toEqual({ error: reason });
      fail(new Error('connection lost'));
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(l.storeUp).toBe(false);
      expect(rejected).toEqual([]);
      if (!failClosed) expect(await l.execute(ok)).toBe('ran'); // the local bucket's one permit
    }
  });

  it('no answer within timeout: storeError names it, and the call is decided locally', async () => {
    const { client } = recorded(() => new Promise(() => {}));
    const l = new RedisRateLimiter(client, { name: 'slow', rate: 1, timeout: 30 });
    const errors: RedisStoreError[] = [];
    l.on('storeError', ({ error }) => errors.push(error));
    expect(await l.execute(ok)).toBe('ran');
    expect(errors).toEqual([new RedisStoreError('RedisRateLimiter: Redis did not answer within 30 ms')]);
  });

  it('the redisStoreUp gauge reads 1 while Redis answers', async () => {
    const { client } = recorded();
    const l = new RedisRateLimiter(client, { name: 'gauge', rate: 1, timeout: 10_000 });
    const registry = new MetricsRegistry();
    registry.track(l);
    await l.execute(ok);
    expect(registry.snapshot().policies.find((policy) => policy.kind === 'shared-rate-limiter')).toMatchObject({ name: 'gauge', redisStoreUp: 1 });
  });

  it('aborted while it waits on the local limiter (Redis down): answered at once with the reason, no timer nor place left, no rejected event, and the permit goes to the next call', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(3_000_000);
    const { client, calls } = recorded(() => Promise.reject(new Error('connection refused')));
    const l = new RedisRateLimiter(client, { name: 'abort-local', rate: 1, interval: 1_000, maxWait: 5_000, probeInterval: 60_000 });
    const rejected: unknown[] = [];
    l.on('rejected', (event) => rejected.push(event));
    expect(await l.execute(ok)).toBe('ran'); // Redis failed: the local bucket's one permit
    const controller = new AbortController();
    let runs = 0;
    const waiting = settle(l.execute(() => ++runs, { signal: controller.signal }));
    await until(() => expect(vi.getTimerCount()).toBe(1)); // the local limiter's timer, for the permit 1 000 ms away
    const reason = new Error('gave up waiting');
    controller.abort(reason);
    expect(await waiting).toEqual({ error: reason });
    expect(vi.getTimerCount()).toBe(0);
    // The permit it waited for is the next call's, at once when it comes.
    await vi.advanceTimersByTimeAsync(1_000);
    let started = false;
    const next = l.execute(() => (started = true));
    await until(() => expect(started).toBe(true));
    expect(await next).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(runs).toBe(0);
    expect(rejected).toEqual([]);
    expect(calls).toHaveLength(1); // Redis asked once: the others decided locally
  });

  it('observed: its log lines call it "shared rate limiter" by name, and Prometheus exports its rejections', async () => {
    let answer: () => Promise<unknown> = async () => [0, 2_500_000, 0];
    const { client } = recorded(() => answer());
    const l = new RedisRateLimiter(client, { name: 'logged', rate: 4, interval: 10_000, probeInterval: 0, timeout: 10_000 });
    const registry = new MetricsRegistry();
    registry.track(l);
    const lines: [string, unknown][] = [];
    const write = (level: string) => (...args: unknown[]) => void lines.push([level, args.find((arg) => typeof arg === 'string')]);
    const stop = logPolicyEvents(l, { info: write('info'), warn: write('warn'), error: write('error') }, { summaryInterval: 0 });
    expect(await settle(l.execute(ok))).toEqual({ error: new RateLimitedError('limit', 2_500, 4, 10_000) });
    answer = () => Promise.reject(new Error('connection refused'));
    expect(await l.execute(ok)).toBe('ran'); // decided locally
    answer = async () => [1, 0, 0];
    expect(await l.execute(ok)).toBe('ran'); // the probe: Redis is back
    stop();
    expect(lines).toEqual([
      ['warn', 'shared rate limiter "logged" rejected a call: Rate limit of 4 per 10000 ms reached: the next permit is 2500 ms away'],
      ['error', 'shared rate limiter "logged": Redis is down, deciding locally: RedisRateLimiter: Redis failed: connection refused'],
      ['info', 'shared rate limiter "logged": Redis is back, the limit is shared again'],
    ]);
    expect(renderPrometheus(registry)).toContain('bulwark_rejections_total{policy="logged",kind="shared-rate-limiter"} 1\n');
  });
});
