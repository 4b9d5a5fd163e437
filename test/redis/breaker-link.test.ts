/**
 * A shared breaker replica's link to Redis, with a scripted Redis and fake timers (no server):
 * how many reports go out and when (one in flight, the next at once when it could open the
 * circuit), what goes out while Redis is down and after close(), what storeError/storeDown say,
 * the subscription's life (refused, lost and back, confirmed after close), and recoveryTimeout
 * asked once per opening with its answer checked.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from '../../src/index.js';
import { RedisCircuitBreaker, RedisStoreError, type RedisCircuitBreakerOptions } from '../../src/redis/index.js';
import { settle } from './clients.js';

const ok = (): string => 'ran';
const boom = (): Promise<never> => Promise.reject(new Error('dependency down'));

/** A Redis whose script answers a state the test sets; it records each call's ARGV, and can fail or hold its answers. */
class ScriptedRedis {
  readonly sent: string[][] = [];
  mode: 'answer' | 'fail' | 'hold' = 'answer';
  failure: unknown = new Error('ECONNREFUSED');
  private readonly held: (() => void)[] = [];
  gen = 1_000;
  state = 'closed';
  retryAt = 0;
  openedAt = -1;
  co = 0;
  readonly client = {
    evalsha: (_sha: string, keys: number, ...rest: string[]) => this.run(rest.slice(keys)),
    eval: (_source: string, keys: number, ...rest: string[]) => this.run(rest.slice(keys)),
  } as never;

  private answer(): unknown[] {
    return [this.gen, this.state, this.retryAt, Date.now(), 0, this.co, 0, 0, 0, 0, 0, this.state === 'closed' ? '' : 'failure-threshold', 0, this.openedAt];
  }

  private run(argv: string[]): Promise<unknown> {
    this.sent.push(argv);
    if (this.mode === 'fail') return Promise.reject(this.failure);
    if (this.mode === 'hold') return new Promise((resolve) => this.held.push(() => resolve(this.answer())));
    return Promise.resolve(this.answer());
  }

  release(): void {
    for (const answer of this.held.splice(0)) answer();
  }

  get trips(): number {
    return this.sent.length;
  }
}

/** An ioredis-style subscriber connection: SUBSCRIBE confirmed at once (or when told), pushes and drops on demand. */
class Subscriber extends EventEmitter {
  readonly log: string[] = [];
  confirmLater = false;
  refuse: unknown = undefined;
  private confirm: (() => void) | undefined;
  evalsha(): void {}
  subscribe(channel: string): Promise<void> {
    this.log.push(`subscribe ${channel}`);
    if (this.refuse !== undefined) return Promise.reject(this.refuse);
    if (!this.confirmLater) return Promise.resolve();
    return new Promise((resolve) => (this.confirm = resolve));
  }
  async unsubscribe(channel: string): Promise<void> {
    this.log.push(`unsubscribe ${channel}`);
  }
  confirmed(): void {
    this.confirm?.();
  }
}

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

function breaker(redis: ScriptedRedis, options: Partial<RedisCircuitBreakerOptions> = {}): RedisCircuitBreaker {
  return new RedisCircuitBreaker(redis.client, { name: 'link', timeout: 10_000, syncInterval: 1_000, probeInterval: 5_000, ...options });
}

function events(b: RedisCircuitBreaker): string[] {
  const seen: string[] = [];
  b.on('storeError', ({ error }) => seen.push(`storeError ${error.name}: ${error.message}`));
  b.on('storeDown', ({ error }) => seen.push(`storeDown ${error.message}`));
  b.on('storeUp', () => seen.push('storeUp'));
  b.on('stateChange', ({ from, to, reason }) => seen.push(`${from}→${to} ${reason}`));
  return seen;
}

beforeAll(async () => {
  // The script's SHA-1 is computed once, by Web Crypto: before the clock is faked.
  await breaker(new ScriptedRedis()).execute(ok);
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function fakeTime(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
}

describe('RedisCircuitBreaker reports to Redis', () => {
  it('one report in flight at a time: failures that could open the circuit meanwhile go as soon as it is answered, and nothing after', async () => {
    fakeTime();
    const redis = new ScriptedRedis();
    const b = breaker(redis, { failureThreshold: 1 });
    expect(await b.execute(ok)).toBe('ran');
    expect(redis.trips).toBe(1);
    redis.mode = 'hold';
    await settle(b.execute(boom)); // could open it: reported at once
    await settle(b.execute(boom)); // could too, but a report is on its way
    expect(redis.trips).toBe(2);
    redis.mode = 'answer';
    redis.release();
    await advance(0);
    expect(redis.trips).toBe(3);
    expect(redis.sent[2]!.slice(12)).toEqual(['1000', '', '1', '1', '0', '1', '0']);
    await advance(5_000);
    expect(redis.trips).toBe(3);
  });

  it('after a failed report and Redis back, reports go out again (and no more than they should)', async () => {
    fakeTime();
    const redis = new ScriptedRedis();
    const sub = new Subscriber();
    const b = breaker(redis, { failureThreshold: 1, subscriber: sub as never });
    await advance(0);
    expect(await b.execute(ok)).toBe('ran');
    redis.mode = 'fail';
    await settle(b.execute(boom));
    await advance(0);
    expect(b.storeUp).toBe(false);
    expect(redis.trips).toBe(2);
    redis.mode = 'answer';
    await advance(5_000); // the probe
    expect(b.storeUp).toBe(true);
    expect(redis.trips).toBe(3);
    await settle(b.execute(boom));
    await advance(0);
    expect(redis.trips).toBe(4);
    await advance(3_000);
    expect(redis.trips).toBe(4);
  });

  it('flush() sends nothing when nothing is pending, while Redis is down, or after close()', async () => {
    fakeTime();
    const redis = new ScriptedRedis();
    const options = { failureThreshold: 1, failureRate: { threshold: 1, minimumCalls: 100, window: { calls: 100 } } };
    const b = breaker(redis, options);
    await b.execute(ok);
    await advance(1_000); // the success is reported
    const read = redis.trips;
    await b.flush();
    expect(redis.trips).toBe(read);
    // A call admitted while Redis is up ends once it is down: its outcome waits, unsent.
    let finish!: () => void;
    const late = b.execute(() => new Promise<string>((resolve) => (finish = () => resolve('late'))));
    redis.mode = 'fail';
    await settle(b.execute(boom));
    await advance(0);
    expect(b.storeUp).toBe(false);
    const down = redis.trips;
    finish();
    expect(await late).toBe('late');
    await b.flush();
    expect(redis.trips).toBe(down);
    // The same after close(), Redis up again.
    redis.mode = 'answer';
    const c = breaker(redis, options);
    await c.execute(ok);
    let end!: () => void;
    const after = c.execute(() => new Promise<string>((resolve) => (end = () => resolve('after'))));
    await c.close();
    const closed = redis.trips;
    end();
    expect(await after).toBe('after');
    await c.flush();
    await c.close();
    expect(redis.trips).toBe(closed);
  });

  it('close() sends what is pending once, nothing when nothing is, and leaves no script in flight behind', async () => {
    fakeTime();
    const redis = new ScriptedRedis();
    const b = breaker(redis, { failureThreshold: 5 });
    await b.execute(ok);
    for (let i = 0; i < 20; i++) await settle(b.execute(boom));
    await b.flush();
    const before = redis.trips;
    await settle(b.execute(boom));
    await b.close();
    expect(redis.trips).toBe(before + 1);
    expect(redis.sent.at(-1)!.slice(14, 16)).toEqual(['1', '1']);
    await b.close();
    expect(redis.trips).toBe(before + 1);
    expect((b as unknown as { link: { inFlight: Set<unknown> } }).link.inFlight.size).toBe(0);
    const idle = breaker(redis);
    await idle.execute(ok);
    await advance(1_000);
    const read = redis.trips;
    await idle.close();
    expect(redis.trips).toBe(read);
  });

  it('close() while Redis is down keeps the local state; while up, the local breaker goes on from the shared state', async () => {
    fakeTime();
    const redis = new ScriptedRedis();
    const down = breaker(redis, { failureThreshold: 1 });
    await down.execute(ok);
    redis.mode = 'fail';
    await settle(down.execute(boom));
    await advance(0);
    expect(down.storeUp).toBe(false);
    await settle(down.execute(boom)); // the local breaker opens
    expect(down.state).toBe('open');
    await down.close();
    expect(down.state).toBe('open');
    redis.mode = 'answer';
    redis.state = 'open';
    redis.retryAt = Date.now() + 60_000;
    redis.openedAt = Date.now();
    redis.co = 1;
    const up = breaker(redis, { failureThreshold: 1 });
    expect(await settle(up.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) });
    await up.close();
    const trips = redis.trips;
    const refused = (await settle(up.execute(ok))) as { error: CircuitOpenError };
    expect(refused.error).toBeInstanceOf(CircuitOpenError);
    expect(refused.error.state).toBe('open');
    expect(refused.error.retryAfter).toBe(60_000);
    expect(redis.trips).toBe(trips);
  });
});

describe('RedisCircuitBreaker when Redis fails', () => {
  it('storeError tells each failure (class, whole message); storeDown the first; Redis is probed with a report every probeInterval until it answers', async () => {
    fakeTime();
    const redis = new ScriptedRedis();
    const b = breaker(redis, { timeout: 50, probeInterval: 1_000 });
    const seen = events(b);
    redis.mode = 'fail';
    expect(await b.execute(ok)).toBe('ran');
    await advance(0);
    expect(seen).toEqual(['storeError RedisStoreError: RedisCircuitBreaker: Redis failed: ECONNREFUSED', 'storeDown RedisCircuitBreaker: Redis failed: ECONNREFUSED']);
    redis.mode = 'hold';
    await advance(1_000);
    await advance(50);
    expect(seen.slice(2)).toEqual(['storeError RedisStoreError: RedisCircuitBreaker: Redis did not answer within 50 ms']);
    redis.mode = 'answer';
    await advance(1_000);
    expect(seen.slice(3)).toEqual(['storeUp']);
    expect(redis.sent.map((argv) => argv[0])).toEqual(['sync', 'sync', 'sync']);
    await advance(5_000);
    expect(redis.trips).toBe(3);
  });

  it('pushes while Redis is down are not taken: the local breaker decides, and says nothing of them', async () => {
    fakeTime();
    const redis = new ScriptedRedis();
    const sub = new Subscriber();
    const b = breaker(redis, { failureThreshold: 1, subscriber: sub as never });
    await advance(0);
    await b.execute(ok);
    redis.mode = 'fail';
    await settle(b.execute(boom));
    await advance(0);
    expect(b.storeUp).toBe(false);
    const seen = events(b);
    sub.emit('message', b.key, `1001 open ${Date.now() + 60_000} failure-threshold 1 ${Date.now()}`);
    expect(seen).toEqual([]);
    expect(b.state).toBe('closed');
    expect(await b.execute(ok)).toBe('ran');
  });
});

describe('RedisCircuitBreaker subscription', () => {
  it('pushes trusted: no read while they flow; polled while the connection is lost; trusted again once it is back and a read followed', async () => {
    fakeTime();
    const redis = new ScriptedRedis();
    const sub = new Subscriber();
    const b = breaker(redis, { subscriber: sub as never });
    await advance(0);
    expect(await b.execute(ok)).toBe('ran');
    await advance(5_000);
    expect(await b.execute(ok)).toBe('ran');
    expect(redis.trips).toBe(1);
    sub.emit('close');
    await advance(2_500);
    expect(await b.execute(ok)).toBe('ran');
    expect(redis.trips).toBe(2); // the view was older than two sync intervals
    sub.emit('ready');
    await advance(1_000); // the success is reported: a read after the subscription came back
    expect(redis.trips).toBe(3);
    await advance(5_000);
    expect(await b.execute(ok)).toBe('ran');
    await advance(5_000);
    expect(redis.trips).toBe(3);
  });

  it('a subscription Redis refuses is told as storeError; the breaker goes on polling, Redis counted up', async () => {
    const redis = new ScriptedRedis();
    const sub = new Subscriber();
    const refused = new Error('NOPERM this user has no permissions to access one of the channels');
    sub.refuse = refused;
    const errors: RedisStoreError[] = [];
    const b = new RedisCircuitBreaker(redis.client, { name: 'link', subscriber: sub as never });
    b.on('storeError', ({ error }) => errors.push(error));
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toBeInstanceOf(RedisStoreError);
    expect(errors[0]!.message).toBe('RedisCircuitBreaker could not subscribe to its channel: NOPERM this user has no permissions to access one of the channels');
    expect(errors[0]!.cause).toBe(refused);
    expect(b.storeUp).toBe(true);
    expect(await b.execute(ok)).toBe('ran');
    const other = new Subscriber();
    other.refuse = 'refused';
    const c = new RedisCircuitBreaker(redis.client, { name: 'other', subscriber: other as never });
    const told: RedisStoreError[] = [];
    c.on('storeError', ({ error }) => told.push(error));
    await vi.waitFor(() => expect(told).toHaveLength(1));
    expect(told[0]!.message).toBe('RedisCircuitBreaker could not subscribe to its channel: refused');
  });

  it('close() before Redis confirmed the subscription: the channel is unsubscribed once it is', async () => {
    const redis = new ScriptedRedis();
    const sub = new Subscriber();
    sub.confirmLater = true;
    const b = new RedisCircuitBreaker(redis.client, { name: 'early-close', subscriber: sub as never });
    await b.close();
    expect(sub.log).toEqual(['subscribe {bulwark:early-close}:breaker']);
    sub.confirmed();
    await vi.waitFor(() => expect(sub.log).toEqual(['subscribe {bulwark:early-close}:breaker', 'unsubscribe {bulwark:early-close}:breaker']));
  });
});

describe('RedisCircuitBreaker recoveryTimeout as a function', () => {
  /** The break duration each report tells the script (ARGV 9). */
  const breaks = (redis: ScriptedRedis) => redis.sent.map((argv) => argv[8]);

  it('is asked once per opening count, with the openings so far plus one; its answer is the break sent', async () => {
    const redis = new ScriptedRedis();
    const asked: number[] = [];
    const b = breaker(redis, { failureThreshold: 100, recoveryTimeout: (opens) => (asked.push(opens), opens * 1_000) });
    await b.execute(ok);
    for (let i = 0; i < 3; i++) {
      await settle(b.execute(boom));
      await b.flush();
    }
    // The circuit opened twice meanwhile: the next report after the one that tells it asks for the third break.
    redis.co = 2;
    for (let i = 0; i < 2; i++) {
      await settle(b.execute(boom));
      await b.flush();
    }
    expect(breaks(redis)).toEqual(['1000', '1000', '1000', '1000', '1000', '3000']);
    expect(asked).toEqual([1, 3]);
  });

  it('0 is a break of 0; beyond a timer\'s reach it is capped; a bad answer or a throw is reported and the break is 30 s', async () => {
    const reports: unknown[][] = [];
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void reports.push(args));
    const original = (globalThis as { reportError?: unknown }).reportError;
    (globalThis as { reportError?: unknown }).reportError = undefined;
    try {
      const thrown = new Error('no config');
      const answers: Record<number, () => unknown> = { 1: () => 0, 2: () => 2 ** 40, 3: () => -1, 4: () => '5', 5: () => { throw thrown; } };
      const redis = new ScriptedRedis();
      const b = breaker(redis, { recoveryTimeout: (opens) => answers[opens]!() as number });
      // Each report asks for the break after the openings the previous answer told.
      for (let co = 0; co < 6; co++) {
        redis.co = co;
        await settle(b.execute(boom));
        await b.flush();
      }
      expect(breaks(redis)).toEqual(['0', '0', '0', '2147483647', '30000', '30000', '30000']);
      const why = 'bulwark: RedisCircuitBreaker recoveryTimeout failed; the circuit stays open 30000 ms instead';
      expect(reports.map(([message, error]) => [message, (error as Error).constructor.name, (error as Error).message])).toEqual([
        [why, 'RangeError', 'RedisCircuitBreaker recoveryTimeout(3) must return a duration in ms ≥ 0, got -1'],
        [why, 'RangeError', 'RedisCircuitBreaker recoveryTimeout(4) must return a duration in ms ≥ 0, got 5'],
        [why, 'Error', 'no config'],
      ]);
    } finally {
      (globalThis as { reportError?: unknown }).reportError = original;
    }
  });
});
