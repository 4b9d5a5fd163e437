/**
 * RedisCircuitBreaker while Redis is down: the local breaker that decides its calls, started
 * from the shared state this replica saw last (its state, counts, openedAt, retryAt, and the
 * break behind them), quietly; and the calls it decides — refused, admitted, left by their
 * caller at every moment. A scripted client stands in for Redis (it answers a state the test
 * sets, or fails like a lost connection); Date is faked, so every time is exact.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from '../../src/index.js';
import { RedisCircuitBreaker, type RedisCircuitBreakerOptions } from '../../src/redis/index.js';
import { settle } from './clients.js';

interface Shared {
  gen: number;
  state: 'closed' | 'open' | 'half-open' | 'isolated';
  retryAt: number;
  cf: number;
  co: number;
  openedAt: number;
}

/** An ioredis-shaped client answering every script call with `shared` (on the faked clock) until `down` is set. */
function scriptedRedis(shared: Partial<Shared> = {}, down = false): { client: never; calls: () => number; fail(): void } {
  const state: Shared = { gen: 1, state: 'closed', retryAt: 0, cf: 0, co: 0, openedAt: -1, ...shared };
  let calls = 0;
  let failing = down;
  const run = async (): Promise<unknown[]> => {
    calls++;
    if (failing) throw new Error('connection lost');
    const s = state;
    return [s.gen, s.state, s.retryAt, Date.now(), s.cf, s.co, 0, 0, 0, 0, 0, '', 0, s.openedAt];
  };
  return {
    client: { evalsha: run, eval: run } as never,
    calls: () => calls,
    fail: () => {
      failing = true;
    },
  };
}

const T = 1_000_000;
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const ok = (): string => 'ran';
const boom = (): Promise<never> => Promise.reject(new Error('dependency down'));
const at = (ms: number): void => {
  vi.setSystemTime(T + ms);
};

let unique = 0;
/** The store's timeout runs on the real clock: the default 100 ms can expire on a loaded machine before even the scripted client answers (the first SHA-1 is computed off the thread). */
const PATIENT = 2_000;
const open: RedisCircuitBreaker[] = [];

/** A replica with its stateChange and rejected events recorded. */
function replica(redis: { client: never }, options: Partial<RedisCircuitBreakerOptions> = {}): { breaker: RedisCircuitBreaker; changes: string[]; rejected: CircuitOpenError[] } {
  const breaker = new RedisCircuitBreaker(redis.client, { name: `local-${unique++}`, failureThreshold: 3, recoveryTimeout: 60_000, timeout: PATIENT, ...options });
  open.push(breaker);
  const changes: string[] = [];
  const rejected: CircuitOpenError[] = [];
  breaker.on('stateChange', ({ from, to, reason }) => changes.push(`${from}→${to} ${reason}`));
  breaker.on('rejected', ({ error }) => rejected.push(error));
  return { breaker, changes, rejected };
}

/** The refusal a call got. */
async function refusal(answer: Promise<unknown>): Promise<CircuitOpenError> {
  const settled = await settle(answer);
  expect('error' in settled && settled.error).toBeInstanceOf(CircuitOpenError);
  return (settled as { error: CircuitOpenError }).error;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] }); // the breakers' clock only: the store's timeout and the turns run for real
  at(0);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((breaker) => breaker.close()));
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('the local breaker starts from the shared state last seen', () => {
  it('an open circuit: refused until the shared retryAt, with the shared openedAt and counts, no change announced', async () => {
    // Opened 1 s before this replica's first read, for 41 s.
    const redis = scriptedRedis({ gen: 5, state: 'open', retryAt: T + 40_000, cf: 3, co: 2, openedAt: T - 1_000 });
    const { breaker, changes } = replica(redis);
    expect((await refusal(breaker.execute(ok))).retryAfter).toBe(40_000);
    redis.fail();
    at(250); // the view is older than two sync intervals: the next call reads, and finds Redis down
    const error = await refusal(breaker.execute(ok));
    expect(breaker.storeUp).toBe(false);
    expect(error).toMatchObject({ state: 'open', retryAfter: 39_750 });
    expect(breaker.stats()).toMatchObject({ state: 'open', openedAt: T - 1_000, consecutiveFailures: 3, consecutiveOpens: 2, retryAfter: 39_750 });
    // For the callers nothing changed: the local breaker took the state quietly.
    expect(changes).toEqual([]);
  });

  it('an open circuit: once its break ends, a trial that never ends holds the local half-open circuit for max(the shared break, 30 s), then it opens again', async () => {
    const redis = scriptedRedis({ gen: 5, state: 'open', retryAt: T + 40_000, cf: 3, co: 2, openedAt: T - 1_000 });
    const { breaker, changes } = replica(redis);
    await refusal(breaker.execute(ok));
    redis.fail();
    at(250);
    await refusal(breaker.execute(ok));
    at(40_000);
    const trial = breaker.execute(() => new Promise<string>(() => {}));
    await turn();
    expect(breaker.state).toBe('half-open');
    expect(changes).toEqual(['open→half-open recovery-timeout']);
    // The shared break was 41 s (openedAt to retryAt): the trial may run that long.
    at(40_000 + 40_999);
    expect(await refusal(breaker.execute(ok))).toMatchObject({ state: 'half-open', retryAfter: 0 });
    at(40_000 + 41_000);
    expect(await refusal(breaker.execute(ok))).toMatchObject({ state: 'open', retryAfter: 60_000 });
    expect(changes).toEqual(['open→half-open recovery-timeout', 'half-open→open half-open-timeout']);
    void trial;
  });

  it('a half-open circuit: the local breaker is half-open, its trial runs, and its success closes it', async () => {
    const redis = scriptedRedis({ gen: 5, state: 'open', retryAt: T + 100, cf: 3, co: 1, openedAt: T - 900 });
    const { breaker, changes } = replica(redis);
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    await refusal(breaker.execute(ok));
    redis.fail();
    at(250);
    expect(await breaker.execute(ok)).toBe('ran');
    expect(breaker.storeUp).toBe(false);
    expect(changes).toEqual(['open→half-open recovery-timeout', 'half-open→closed trial-success']);
    expect(error).not.toHaveBeenCalled();
  });

  it('a shared state the local breaker cannot take (a count edited by hand in Redis) is reported; the local breaker decides from its own', async () => {
    const redis = scriptedRedis({ cf: -1 });
    const { breaker, changes } = replica(redis);
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await breaker.execute(ok)).toBe('ran');
    redis.fail();
    at(250);
    expect(await breaker.execute(ok)).toBe('ran');
    expect(breaker.storeUp).toBe(false);
    expect(error).toHaveBeenCalledTimes(1);
    expect(error.mock.calls[0]?.[0]).toBe('bulwark: RedisCircuitBreaker could not hand its state to the local breaker');
    const thrown = error.mock.calls[0]?.[1] as Error;
    expect(thrown).toBeInstanceOf(RangeError);
    expect(thrown.message).toBe('CircuitBreaker restore(snapshot).consecutiveFailures must be a whole number ≥ 0, got -1');
    // Its own changes are announced again after the failed hand-over.
    for (let i = 0; i < 3; i++) await settle(breaker.execute(boom));
    expect(breaker.state).toBe('open');
    expect(changes).toEqual(['closed→open failure-threshold']);
  });
});

describe('the calls the local breaker decides', () => {
  it('a caller that leaves before the local breaker\'s refusal reaches it gets its abort reason, and no rejected event is told', async () => {
    const redis = scriptedRedis({}, true);
    const { breaker, rejected } = replica(redis, { failureThreshold: 1 });
    await settle(breaker.execute(boom)); // Redis never answered: the local breaker decides, and opens
    await turn();
    expect(breaker.storeUp).toBe(false);
    expect(breaker.state).toBe('open');
    const controller = new AbortController();
    const reason = new Error('caller gone');
    const left = settle(breaker.execute(ok, { signal: controller.signal }));
    controller.abort(reason);
    expect(await left).toEqual({ error: reason });
    expect(rejected).toEqual([]);
    // A caller that stays is refused, and told.
    const error = await refusal(breaker.execute(ok));
    expect(rejected).toEqual([error]);
  });

  it('a caller that leaves while the local breaker decides (in a stateChange listener) holds no trial place: the next call is the trial', async () => {
    const redis = scriptedRedis({}, true);
    const { breaker, changes } = replica(redis, { failureThreshold: 1, recoveryTimeout: 1_000 });
    await settle(breaker.execute(boom));
    await turn();
    expect(breaker.state).toBe('open');
    at(1_000);
    const controller = new AbortController();
    const reason = new Error('caller gone');
    breaker.on('stateChange', ({ to }) => {
      if (to === 'half-open') controller.abort(reason);
    });
    const work = vi.fn(ok);
    expect(await settle(breaker.execute(work, { signal: controller.signal }))).toEqual({ error: reason });
    expect(work).not.toHaveBeenCalled();
    await turn();
    expect(await breaker.execute(ok)).toBe('ran');
    expect(changes).toEqual(['closed→open failure-threshold', 'open→half-open recovery-timeout', 'half-open→closed trial-success']);
  });

  it('a trial whose caller gave up keeps its place until its work ends; then the next call is the trial', async () => {
    const redis = scriptedRedis({}, true);
    const { breaker, changes } = replica(redis, { failureThreshold: 1, recoveryTimeout: 1_000 });
    await settle(breaker.execute(boom));
    await turn();
    at(1_000);
    const controller = new AbortController();
    const reason = new Error('caller gone');
    let finish: (value: string) => void = () => {};
    const left = settle(breaker.execute(() => new Promise<string>((resolve) => (finish = resolve)), { signal: controller.signal }));
    await turn();
    controller.abort(reason);
    expect(await left).toEqual({ error: reason });
    // Its work goes on: the one trial place is still taken.
    expect(await refusal(breaker.execute(ok))).toMatchObject({ state: 'half-open' });
    finish('ran late');
    await turn();
    expect(await breaker.execute(ok)).toBe('ran');
    expect(changes).toEqual(['closed→open failure-threshold', 'open→half-open recovery-timeout', 'half-open→closed trial-success']);
  });

  it('a call whose caller left while it ran is not counted, even once its work ends: failures around it stay consecutive', async () => {
    const redis = scriptedRedis({}, true);
    const { breaker } = replica(redis, { failureThreshold: 2 });
    await settle(breaker.execute(boom));
    await turn();
    expect(breaker.storeUp).toBe(false);
    const controller = new AbortController();
    let finish: (value: string) => void = () => {};
    const left = settle(breaker.execute(() => new Promise<string>((resolve) => (finish = resolve)), { signal: controller.signal }));
    await turn();
    controller.abort(new Error('caller gone'));
    await left;
    finish('ran late');
    await turn();
    expect(breaker.stats()).toMatchObject({ state: 'closed', consecutiveFailures: 1, calls: 0 });
    await settle(breaker.execute(boom));
    expect(breaker.stats()).toMatchObject({ state: 'open', consecutiveFailures: 2 });
  });
});
