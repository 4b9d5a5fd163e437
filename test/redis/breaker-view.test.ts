/**
 * A replica's view of the shared breaker, as its users see it through RedisCircuitBreaker:
 * `stateChange` told once per change, `stats()` exact (rates, retryAfter, openedAt, trials in
 * flight), a manual change in force at once, a refused trial not holding the replica back once
 * the circuit changed; then, with a scripted Redis, the break timed by the server's clock on a
 * replica whose own clock is off, and pushes older than the view ignored.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from '../../src/index.js';
import { RedisCircuitBreaker, type RedisCircuitBreakerOptions } from '../../src/redis/index.js';
import { settle, useRedisServer } from './clients.js';

const { client } = useRedisServer();
let unique = 0;
const boom = (): Promise<never> => Promise.reject(new Error('dependency down'));
const ok = (): string => 'ran';
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function replica(options: Partial<RedisCircuitBreakerOptions> & { name: string }): Promise<RedisCircuitBreaker> {
  return new RedisCircuitBreaker((await client('ioredis')).client, { subscriber: (await client('ioredis')).client, ...options });
}

function changes(breaker: RedisCircuitBreaker): string[] {
  const seen: string[] = [];
  breaker.on('stateChange', ({ from, to, reason }) => seen.push(`${from}→${to} ${reason}`));
  return seen;
}

describe('RedisCircuitBreaker: the replica\'s view of the shared state', () => {
  it('the end of a break is announced once, open→half-open recovery-timeout, however often the state is read', async () => {
    const a = await replica({ name: `view-announce-${unique++}`, failureThreshold: 1, recoveryTimeout: 30 });
    const seen = changes(a);
    await settle(a.execute(boom));
    await vi.waitFor(() => expect(seen).toEqual(['closed→open failure-threshold']), { interval: 2 });
    await tick(45);
    expect(a.state).toBe('half-open');
    expect(a.state).toBe('half-open');
    expect(a.stats().state).toBe('half-open');
    expect(seen).toEqual(['closed→open failure-threshold', 'open→half-open recovery-timeout']);
  });

  it('stats(): the exact failure rate, rates 0 on no calls; retryAfter 0 closed, what is left of the break open, Infinity isolated', async () => {
    const name = `view-stats-${unique++}`;
    const options = { name, failureThreshold: Infinity, failureRate: { threshold: 1, minimumCalls: 100, window: { calls: 100 } }, recoveryTimeout: 60_000, syncInterval: 60_000 };
    const a = await replica(options);
    expect(await a.execute(ok)).toBe('ran');
    expect(a.stats()).toMatchObject({ state: 'closed', calls: 0, failureRate: 0, slowCallRate: 0, retryAfter: 0, openedAt: undefined });
    for (let i = 0; i < 2; i++) await a.execute(ok);
    await settle(a.execute(boom));
    await a.flush();
    expect(a.stats()).toMatchObject({ calls: 4, failures: 1, slowCalls: 0, failureRate: 0.25, slowCallRate: 0, retryAfter: 0, trialsInFlight: 0 });
    await a.isolate();
    expect(a.stats()).toMatchObject({ state: 'isolated', retryAfter: Infinity });
    await a.reset();
    const opener = await replica({ name, failureThreshold: 1, recoveryTimeout: 60_000 });
    await opener.execute(ok);
    await settle(opener.execute(boom));
    await vi.waitFor(() => expect(a.state).toBe('open'), { interval: 2 });
    const { retryAfter, openedAt } = a.stats();
    expect(retryAfter).toBeGreaterThan(55_000);
    expect(retryAfter).toBeLessThanOrEqual(60_000);
    expect(Math.abs((openedAt as number) - Date.now())).toBeLessThan(1_000);
  });

  it('a pushed close forgets the failures and the opening the replica last read', async () => {
    const name = `view-pushed-close-${unique++}`;
    const a = await replica({ name, failureThreshold: 3, recoveryTimeout: 60_000, syncInterval: 60_000 });
    const b = await replica({ name, failureThreshold: 3, recoveryTimeout: 60_000, syncInterval: 60_000 });
    await a.execute(ok);
    await settle(a.execute(boom));
    await settle(a.execute(boom));
    await a.flush();
    await b.execute(ok); // reads 2 consecutive failures
    expect(b.stats().consecutiveFailures).toBe(2);
    const seen = changes(b);
    await a.isolate();
    await vi.waitFor(() => expect(seen).toEqual(['closed→isolated manual']), { interval: 2 });
    expect(b.stats()).toMatchObject({ state: 'isolated', consecutiveFailures: 2 });
    expect(b.stats().openedAt).toBeTypeOf('number');
    await a.reset();
    await vi.waitFor(() => expect(seen).toEqual(['closed→isolated manual', 'isolated→closed manual']), { interval: 2 });
    expect(b.stats()).toMatchObject({ state: 'closed', consecutiveFailures: 0, openedAt: undefined, retryAfter: 0 });
  });

  it('a trial in flight shows in stats() of the replica that holds it, and the lease ends with it', async () => {
    const a = await replica({ name: `view-trial-${unique++}`, failureThreshold: 1, recoveryTimeout: 20 });
    await settle(a.execute(boom));
    await vi.waitFor(() => expect(a.state).toBe('open'), { interval: 2 });
    await tick(30);
    let release!: () => void;
    const trial = a.execute(() => new Promise<string>((resolve) => (release = () => resolve('recovered'))));
    await vi.waitFor(() => expect(release).toBeTypeOf('function'), { interval: 2 });
    expect(a.stats()).toMatchObject({ state: 'half-open', trialsInFlight: 1, trialSuccesses: 0 });
    release();
    expect(await trial).toBe('recovered');
    await vi.waitFor(() => expect(a.state).toBe('closed'), { interval: 2 });
    expect(a.stats()).toMatchObject({ trialsInFlight: 0, trialSuccesses: 0 });
  });

  it('isolate() during a trial: stats() at once count no trial in flight (the isolated circuit has none)', async () => {
    const a = await replica({ name: `view-isolate-trial-${unique++}`, failureThreshold: 1, recoveryTimeout: 20 });
    await settle(a.execute(boom));
    await vi.waitFor(() => expect(a.state).toBe('open'), { interval: 2 });
    await tick(30);
    let release!: () => void;
    const trial = a.execute(() => new Promise<string>((resolve) => (release = () => resolve('late'))));
    await vi.waitFor(() => expect(release).toBeTypeOf('function'), { interval: 2 });
    expect(a.stats().trialsInFlight).toBe(1);
    const isolating = a.isolate();
    expect(a.stats()).toMatchObject({ state: 'isolated', trialsInFlight: 0, trialSuccesses: 0, retryAfter: Infinity });
    await isolating;
    release();
    expect(await trial).toBe('late');
    await a.reset();
  });

  it('isolate() and reset() are in force on this replica at once, before Redis answers', async () => {
    const a = await replica({ name: `view-manual-${unique++}` });
    await a.execute(ok);
    const isolating = a.isolate();
    expect(a.state).toBe('isolated');
    const refused = (await settle(a.execute(ok))) as { error: CircuitOpenError };
    expect(refused.error).toBeInstanceOf(CircuitOpenError);
    expect(refused.error.state).toBe('isolated');
    await isolating;
    const resetting = a.reset();
    expect(a.state).toBe('closed');
    expect(await a.execute(ok)).toBe('ran');
    await resetting;
  });

  it('a replica refused a trial asks for one again as soon as the circuit changed, not one sync interval later', async () => {
    const name = `view-trials-full-${unique++}`;
    const options = { name, failureThreshold: 1, recoveryTimeout: 25, syncInterval: 60_000 };
    const a = await replica(options);
    const b = await replica(options);
    await b.execute(ok);
    const seen = changes(b);
    await settle(a.execute(boom));
    await vi.waitFor(() => expect(seen).toEqual(['closed→open failure-threshold']), { interval: 2 });
    await tick(35);
    let fail!: () => void;
    const trial = a.execute(() => new Promise<string>((_, reject) => (fail = () => reject(new Error('still down')))));
    await vi.waitFor(() => expect(fail).toBeTypeOf('function'), { interval: 2 });
    const refused = (await settle(b.execute(ok))) as { error: CircuitOpenError };
    expect(refused.error).toBeInstanceOf(CircuitOpenError);
    expect(refused.error.state).toBe('half-open');
    fail();
    await settle(trial);
    await vi.waitFor(() => expect(seen).toContain('half-open→open trial-failure'), { interval: 2 });
    await tick(35);
    // A new half-open period: B asks Redis for the trial, and gets it.
    expect(await b.execute(ok)).toBe('ran');
  });

  it('a replica that found every trial taken refuses half-open calls without asking for one sync interval, even when its own trial ends meanwhile', async () => {
    const name = `view-trials-quiet-${unique++}`;
    const options = { name, failureThreshold: 1, recoveryTimeout: 25, halfOpenMaxCalls: 2, halfOpenSuccessThreshold: 3, syncInterval: 60_000 };
    const a = await replica(options);
    const b = await replica(options);
    await b.execute(ok);
    await settle(a.execute(boom));
    await vi.waitFor(() => expect(b.state).toBe('open'), { interval: 2 });
    await tick(35);
    const gates: (() => void)[] = [];
    const held = () => new Promise<string>((resolve) => gates.push(() => resolve('trial')));
    const first = a.execute(held);
    await vi.waitFor(() => expect(gates).toHaveLength(1), { interval: 2 });
    const second = b.execute(held);
    await vi.waitFor(() => expect(gates).toHaveLength(2), { interval: 2 });
    const full = (await settle(b.execute(ok))) as { error: CircuitOpenError };
    expect(full.error).toBeInstanceOf(CircuitOpenError);
    expect(full.error.state).toBe('half-open');
    gates[1]!();
    expect(await second).toBe('trial');
    await b.flush(); // Redis has B's trial success: one place is free, the period goes on
    expect(b.stats()).toMatchObject({ state: 'half-open', trialsInFlight: 1, trialSuccesses: 1 });
    const ran = vi.fn(ok);
    const quiet = (await settle(b.execute(ran))) as { error: CircuitOpenError };
    expect(quiet.error).toBeInstanceOf(CircuitOpenError);
    expect(quiet.error.state).toBe('half-open');
    expect(ran).not.toHaveBeenCalled();
    gates[0]!();
    expect(await first).toBe('trial');
  });
});

/** A scripted Redis: every script call answers the state `answer()` gives; calls are counted. */
function scripted(answer: () => unknown[]): { client: never; trips: () => number } {
  let trips = 0;
  const run = async () => {
    trips++;
    return answer();
  };
  return { client: { evalsha: run, eval: run } as never, trips: () => trips };
}

/** `[gen, state, retryAt, now, cf, co, wc, wf, ws, trials, ts, reason, granted, openedAt]`. */
function state(gen: number, name: string, serverNow: number, retryAt = 0, openedAt = -1, reason = ''): unknown[] {
  return [gen, name, retryAt, serverNow, 0, name === 'closed' ? 0 : 1, 0, 0, 0, 0, 0, reason, 0, openedAt];
}

class PushingSubscriber extends EventEmitter {
  channel = '';
  evalsha(): void {}
  async subscribe(channel: string): Promise<void> {
    this.channel = channel;
  }
  async unsubscribe(): Promise<void> {}
  push(text: string): void {
    this.emit('message', this.channel, text);
  }
}

describe('RedisCircuitBreaker view, with a scripted Redis', () => {
  it('a replica whose clock is off by 20 minutes times the break by the server\'s clock', async () => {
    const skew = 1_200_000;
    const redis = scripted(() => {
      const serverNow = Date.now() + skew;
      return state(serverNow, 'open', serverNow, serverNow + 60_000, serverNow - 1_000, 'failure-threshold');
    });
    const breaker = new RedisCircuitBreaker(redis.client, { name: 'skewed' });
    const refused = (await settle(breaker.execute(ok))) as { error: CircuitOpenError };
    expect(refused.error).toBeInstanceOf(CircuitOpenError);
    expect(refused.error.retryAfter).toBeGreaterThan(59_000);
    expect(refused.error.retryAfter).toBeLessThanOrEqual(60_100);
    const { openedAt, retryAfter } = breaker.stats();
    expect(Math.abs((openedAt as number) - (Date.now() - 1_000))).toBeLessThan(100);
    expect(retryAfter).toBeLessThanOrEqual(60_100);
  });

  it('a pushed change is taken only when newer than the view: a push of the same or an older generation is ignored', async () => {
    const gen = 1_000;
    const redis = scripted(() => state(gen, 'closed', Date.now()));
    const sub = new PushingSubscriber();
    const breaker = new RedisCircuitBreaker(redis.client, { name: 'pushed', subscriber: sub as never, syncInterval: 60_000 });
    const seen = changes(breaker);
    await vi.waitFor(() => expect(sub.channel).toBe(breaker.key));
    expect(await breaker.execute(ok)).toBe('ran');
    const retryAt = Date.now() + 60_000;
    sub.push(`${gen} open ${retryAt} failure-threshold 1 ${Date.now()}`);
    sub.push(`${gen - 1} isolated 0 manual 0 ${Date.now()}`);
    expect(breaker.state).toBe('closed');
    expect(seen).toEqual([]);
    sub.push(`${gen + 1} open ${retryAt} failure-threshold 1 ${Date.now()}`);
    expect(breaker.state).toBe('open');
    expect(seen).toEqual(['closed→open failure-threshold']);
    const trips = redis.trips();
    expect(await settle(breaker.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) });
    expect(redis.trips()).toBe(trips);
    await breaker.close();
  });
});

/** A scripted Redis whose answers the test sets, and can hold until released. */
class HeldRedis {
  trips = 0;
  hold = false;
  private readonly held: (() => void)[] = [];
  next: () => unknown[] = () => state(1_000, 'closed', Date.now());
  readonly client = { evalsha: () => this.run(), eval: () => this.run() } as never;
  private run(): Promise<unknown> {
    this.trips++;
    const answer = this.next();
    if (!this.hold) return Promise.resolve(answer);
    return new Promise((resolve) => this.held.push(() => resolve(answer)));
  }
  release(): void {
    for (const answer of this.held.splice(0)) answer();
  }
}

describe('RedisCircuitBreaker view, with a scripted Redis and a fake clock', () => {
  beforeAll(async () => {
    // The script's SHA-1 is computed once, by Web Crypto: before the clock is faked.
    await new RedisCircuitBreaker(new HeldRedis().client, { name: 'warm' }).execute(ok);
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const fakeTime = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });

  it('the open circuit turns half-open at the very ms of retryAt, as the script does', async () => {
    fakeTime();
    const redis = new HeldRedis();
    const retryAt = Date.now() + 1_000;
    redis.next = () => state(1_000, 'open', Date.now(), retryAt, Date.now(), 'failure-threshold');
    const breaker = new RedisCircuitBreaker(redis.client, { name: 'edge', syncInterval: 60_000, timeout: 10_000 });
    expect(await settle(breaker.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) });
    await vi.advanceTimersByTimeAsync(999);
    expect(breaker.state).toBe('open');
    expect(breaker.stats().retryAfter).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(breaker.state).toBe('half-open');
  });

  it('a cold replica that finds the circuit open announces no change: it opened before this replica knew', async () => {
    fakeTime();
    const redis = new HeldRedis();
    redis.next = () => state(1_000, 'open', Date.now(), Date.now() + 60_000, Date.now(), 'failure-threshold');
    const breaker = new RedisCircuitBreaker(redis.client, { name: 'cold-open', timeout: 10_000 });
    const seen = changes(breaker);
    expect(await settle(breaker.execute(ok))).toMatchObject({ error: expect.any(CircuitOpenError) });
    expect(breaker.state).toBe('open');
    expect(seen).toEqual([]);
  });

  it('an answer older than a change already pushed is not taken: the pushed state stands', async () => {
    fakeTime();
    const redis = new HeldRedis();
    const sub = new PushingSubscriber();
    const breaker = new RedisCircuitBreaker(redis.client, { name: 'late-answer', subscriber: sub as never, failureThreshold: 5, timeout: 10_000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(await breaker.execute(ok)).toBe('ran');
    const seen = changes(breaker);
    redis.hold = true;
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    const flushing = breaker.flush(); // its answer: closed, generation 1000
    sub.push(`1001 isolated 0 manual 0 ${Date.now()}`);
    expect(breaker.state).toBe('isolated');
    redis.release();
    await flushing;
    expect(breaker.state).toBe('isolated');
    expect(seen).toEqual(['closed→isolated manual']);
  });

  it('a read sent before the subscription was confirmed does not make the view trusted: the replica polls until a read follows it', async () => {
    fakeTime();
    const redis = new HeldRedis();
    const sub = new PushingSubscriber();
    let confirm!: () => void;
    sub.subscribe = (channel: string) => {
      sub.channel = channel;
      return new Promise<void>((resolve) => (confirm = resolve));
    };
    const breaker = new RedisCircuitBreaker(redis.client, { name: 'late-confirm', subscriber: sub as never, syncInterval: 1_000, timeout: 10_000 });
    redis.hold = true;
    const first = breaker.execute(ok); // reads the state: sent now
    await vi.advanceTimersByTimeAsync(1);
    confirm(); // pushes flow from now on; a change made before may have been missed
    await vi.advanceTimersByTimeAsync(0);
    redis.hold = false;
    redis.release();
    expect(await first).toBe('ran');
    expect(redis.trips).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000); // the success is reported: a read sent after the confirmation
    expect(redis.trips).toBe(2);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await breaker.execute(ok)).toBe('ran');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(redis.trips).toBe(2);
  });

  it('without a subscriber, a call on a view older than two sync intervals reads the state first; a fresher view decides alone', async () => {
    fakeTime();
    const redis = new HeldRedis();
    const breaker = new RedisCircuitBreaker(redis.client, { name: 'polling', syncInterval: 1_000, timeout: 10_000 });
    expect(await breaker.execute(ok)).toBe('ran');
    await vi.advanceTimersByTimeAsync(1_000); // the success is reported
    expect(redis.trips).toBe(2);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(await breaker.execute(ok)).toBe('ran');
    expect(redis.trips).toBe(2);
    await vi.advanceTimersByTimeAsync(1_000); // that success is reported too
    expect(redis.trips).toBe(3);
    await vi.advanceTimersByTimeAsync(2_500);
    redis.hold = true;
    const call = breaker.execute(ok);
    await vi.advanceTimersByTimeAsync(0);
    expect(redis.trips).toBe(4);
    redis.release();
    expect(await call).toBe('ran');
  });
});
