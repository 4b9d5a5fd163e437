import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  RateLimitedError,
  RateLimiter,
  ResilienceError,
  TimeoutError,
  compose,
  isRateLimitedError,
  isRefusal,
  isResilienceError,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type RateLimiterEvents,
  type RateLimiterOptions,
} from '../../src/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { flush, hang, rejectionOf, track } from '../fixtures/promises.js';

const MAX_TIMER = 2 ** 31 - 1;

afterEach(() => {
  vi.restoreAllMocks();
});

/** A limiter on a hand-driven clock, and a function that records when it ran (its permit's time). */
function setup(options: Omit<RateLimiterOptions, 'clock'>) {
  const clock = new CountingClock({ start: 0 });
  const limiter = new RateLimiter({ ...options, clock });
  const granted: { id: number; at: number }[] = [];
  const call = (id: number, signal?: AbortSignal) =>
    track(
      limiter.execute(
        () => {
          granted.push({ id, at: clock.now() });
          return id;
        },
        signal === undefined ? undefined : { signal },
      ),
    );
  return { clock, limiter, granted, call };
}

// ── Options ──────────────────────────────────────────────────────────────────────────────

describe('RateLimiter options', () => {
  it('has documented defaults', () => {
    const limiter = new RateLimiter({ rate: 5 });
    expect([limiter.rate, limiter.interval, limiter.algorithm, limiter.burst, limiter.maxWait, limiter.maxQueue, limiter.name]).toEqual([
      5,
      1_000,
      'token-bucket',
      5,
      0,
      Infinity,
      undefined,
    ]);
    expect(new RateLimiter({ rate: 5, algorithm: 'sliding-window' }).burst).toBeUndefined();
  });

  it.each<[string, unknown, ErrorConstructor, string]>([
    ['no options', undefined, TypeError, 'new RateLimiter(options): options with rate are required, got undefined'],
    ['null', null, TypeError, 'new RateLimiter(options): options with rate are required, got null'],
    ['no rate', {}, TypeError, 'new RateLimiter(options): rate is required'],
    ['rate 0', { rate: 0 }, RangeError, 'RateLimiter rate must be a whole number ≥ 1, got 0'],
    ['rate 1.5', { rate: 1.5 }, RangeError, 'RateLimiter rate must be a whole number ≥ 1, got 1.5'],
    ['rate Infinity', { rate: Infinity }, RangeError, 'RateLimiter rate must be a whole number ≥ 1, got Infinity'],
    ['rate NaN', { rate: NaN }, RangeError, 'RateLimiter rate must be a number, got NaN'],
    ['rate "10"', { rate: '10' }, TypeError, 'RateLimiter rate must be a number, got "10"'],
    ['interval 0', { rate: 1, interval: 0 }, RangeError, 'RateLimiter interval must be a finite duration in ms > 0, got 0'],
    ['interval -1', { rate: 1, interval: -1 }, RangeError, 'RateLimiter interval must be a finite duration in ms > 0, got -1'],
    ['interval Infinity', { rate: 1, interval: Infinity }, RangeError, 'RateLimiter interval must be a finite duration in ms > 0, got Infinity'],
    ['interval NaN', { rate: 1, interval: NaN }, RangeError, 'RateLimiter interval must be a finite duration in ms > 0, got NaN'],
    ['interval null', { rate: 1, interval: null }, TypeError, 'RateLimiter interval must be a number, got null'],
    ['algorithm "fixed-window"', { rate: 1, algorithm: 'fixed-window' }, RangeError, 'RateLimiter algorithm must be one of "token-bucket", "sliding-window", got "fixed-window"'],
    ['algorithm 1', { rate: 1, algorithm: 1 }, TypeError, 'RateLimiter algorithm must be one of "token-bucket", "sliding-window", got 1'],
    ['burst 0', { rate: 1, burst: 0 }, RangeError, 'RateLimiter burst must be a whole number ≥ 1, got 0'],
    ['burst Infinity', { rate: 1, burst: Infinity }, RangeError, 'RateLimiter burst must be a whole number ≥ 1, got Infinity'],
    [
      'burst with a sliding window',
      { rate: 1, algorithm: 'sliding-window', burst: 1 },
      TypeError,
      'RateLimiter burst applies to algorithm "token-bucket" only: a sliding window has none (it never grants more than rate per interval)',
    ],
    [
      'a sliding window over 100 000',
      { rate: 100_001, algorithm: 'sliding-window' },
      RangeError,
      'RateLimiter rate must be a whole number from 1 to 100000 with algorithm "sliding-window" (it keeps the time of each of the last rate permits), got 100001; use "token-bucket" beyond',
    ],
    ['maxWait -1', { rate: 1, maxWait: -1 }, RangeError, 'RateLimiter maxWait must be a duration in ms ≥ 0 or Infinity, got -1'],
    ['maxWait NaN', { rate: 1, maxWait: NaN }, RangeError, 'RateLimiter maxWait must be a number, got NaN'],
    ['maxQueue -1', { rate: 1, maxWait: 10, maxQueue: -1 }, RangeError, 'RateLimiter maxQueue must be a whole number ≥ 0 or Infinity, got -1'],
    ['maxQueue 0.5', { rate: 1, maxWait: 10, maxQueue: 0.5 }, RangeError, 'RateLimiter maxQueue must be a whole number ≥ 0 or Infinity, got 0.5'],
    ['maxQueue without maxWait', { rate: 1, maxQueue: 5 }, TypeError, 'RateLimiter maxQueue needs a maxWait > 0: with maxWait 0 (the default) no call ever waits, got maxQueue 5'],
    ['a clock without now', { rate: 1, clock: {} }, TypeError, 'RateLimiter clock must be a Clock with now(), setTimeout() and clearTimeout(), got an object'],
    ['name 1', { rate: 1, name: 1 }, TypeError, 'RateLimiter name must be a string, got 1'],
  ])('refuses %s', (_, options, type, message) => {
    expect(() => new RateLimiter(options as RateLimiterOptions)).toThrow(new type(message));
    expect(() => new RateLimiter(options as RateLimiterOptions)).toThrow(type);
  });

  it.each([
    ['maxConcurrent', 'none: calls at once are limited by a Bulkhead ("maxConcurrent"), composed with the limiter'],
    ['minTime', '"rate" and "interval" (minTime: 100 is rate: 1, interval: 100)'],
    ['reservoir', '"rate" (the permits of each "interval")'],
    ['limit', '"rate"'],
    ['tokensPerInterval', '"rate"'],
    ['bucketSize', '"burst"'],
    ['limitForPeriod', '"rate"'],
    ['limitRefreshPeriod', '"interval"'],
    ['timeoutDuration', '"maxWait"'],
    ['permitLimit', '"rate"'],
    ['tokenLimit', '"burst"'],
    ['queueLimit', '"maxQueue"'],
    ['replenishmentPeriod', '"interval"'],
    ['tokensPerPeriod', '"rate"'],
    ['window', '"interval"'],
    ['reservoirRefreshAmount', '"rate"'],
    ['reservoirRefreshInterval', '"interval"'],
    ['reservoirIncreaseAmount', '"rate"'],
    ['reservoirIncreaseInterval', '"interval"'],
    ['reservoirIncreaseMaximum', '"burst"'],
    ['highWater', '"maxQueue"'],
    ['strict', '"algorithm" ("sliding-window")'],
    ['segmentsPerWindow', '"algorithm" ("sliding-window" is exact, with no segments)'],
    ['capacity', '"burst"'],
    ['period', '"interval"'],
    ['duration', '"interval"'],
    ['points', '"rate"'],
  ])("names another library's option %s as bulwark's %s", (key, ours) => {
    expect(() => new RateLimiter({ rate: 1, [key]: 1 } as RateLimiterOptions)).toThrow(
      new TypeError(
        `RateLimiter has no option ${JSON.stringify(key)} (another library's name: bulwark's is ${ours}); known options: "rate", "interval", "algorithm", "burst", "maxWait", "maxQueue", "clock", "name"`,
      ),
    );
  });

  it('suggests the option a misspelt key is closest to', () => {
    expect(() => new RateLimiter({ rate: 1, maxWiat: 1 } as RateLimiterOptions)).toThrow(/has no option "maxWiat" \(did you mean "maxWait"\?\)/);
  });
});

// ── Permits, refusals, the error ─────────────────────────────────────────────────────────

describe('RateLimiter: refusing at once (maxWait 0)', () => {
  it('a token bucket grants burst calls, then refuses with the exact retryAfter, arming no timer', async () => {
    const { clock, limiter, call, granted } = setup({ rate: 10, interval: 1_000, burst: 3 });
    const calls = [1, 2, 3, 4].map((id) => call(id));
    await flush();
    expect(calls.map((c) => c.state)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    const error = calls[3]?.error as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect([error.name, error.reason, error.retryAfter, error.rate, error.interval]).toEqual(['RateLimitedError', 'limit', 100, 10, 1_000]);
    expect(error.message).toBe('Rate limit of 10 per 1000 ms reached: the next permit is 100 ms away');
    expect(granted.map((g) => g.id)).toEqual([1, 2, 3]);
    expect(clock.created).toBe(0);
    expect(limiter.available).toBe(0);

    await clock.advance(99);
    const early = call(5);
    await flush();
    expect((early.error as RateLimitedError).retryAfter).toBe(1);
    await clock.advance(1);
    const onTime = call(6);
    await flush();
    expect(onTime.value).toBe(6);
    await clock.advance(1_000);
    expect(limiter.available).toBe(3);
    expect(clock.created).toBe(0);
  });

  it('its error is a stackless, branded refusal recognised across copies of bulwark', () => {
    const limiter = new RateLimiter({ rate: 1 });
    void limiter.execute(() => 'first');
    return limiter.execute(() => 'second').then(
      () => expect.unreachable(),
      (error: unknown) => {
        expect(error).toBeInstanceOf(ResilienceError);
        expect([isRefusal(error), isRateLimitedError(error), isResilienceError(error)]).toEqual([true, true, true]);
        expect((error as Error).stack).toBe(`RateLimitedError: ${(error as Error).message}`);
        // Another copy's error: not an instance of this RateLimitedError, but carries the shared brands.
        const foreign = Object.create(Object.getPrototypeOf(error) as object) as object;
        Object.setPrototypeOf(foreign, Object.create(Object.getPrototypeOf(Object.getPrototypeOf(error)) as object));
        for (const symbol of Object.getOwnPropertySymbols(RateLimitedError.prototype)) {
          Object.defineProperty(Object.getPrototypeOf(foreign), symbol, { value: (RateLimitedError.prototype as never)[symbol] });
        }
        expect(foreign instanceof RateLimitedError).toBe(false);
        expect([isRateLimitedError(foreign), isRefusal(foreign)]).toEqual([true, true]);
        expect(isRateLimitedError(new Error('RateLimitedError'))).toBe(false);
        expect(isRateLimitedError(null)).toBe(false);
      },
    );
  });

  it('a sliding window grants rate calls per window, then exactly when the oldest leaves it', async () => {
    const { clock, call, granted } = setup({ rate: 2, interval: 100, algorithm: 'sliding-window' });
    call(1);
    await clock.advance(30);
    call(2);
    const third = call(3);
    await flush();
    expect((third.error as RateLimitedError).retryAfter).toBe(70);
    await clock.advance(70);
    call(4);
    const fifth = call(5);
    await flush();
    expect((fifth.error as RateLimitedError).retryAfter).toBe(30);
    expect(granted).toEqual([
      { id: 1, at: 0 },
      { id: 2, at: 30 },
      { id: 4, at: 100 },
    ]);
  });

  it('a refused call is never run and consumes no permit', async () => {
    const { clock, call } = setup({ rate: 1, interval: 10 });
    call(1);
    for (let id = 2; id < 50; id++) call(id);
    await clock.advance(10);
    expect(call(50)).toBeDefined();
    await flush();
    const fn = vi.fn(() => 'never');
    const limiter = new RateLimiter({ rate: 1, clock });
    await limiter.execute(() => 'first');
    await expect(limiter.execute(fn)).rejects.toBeInstanceOf(RateLimitedError);
    expect(fn).not.toHaveBeenCalled();
  });
});

// ── Waiting ──────────────────────────────────────────────────────────────────────────────

describe('RateLimiter: waiting for a permit (maxWait > 0)', () => {
  it('reads 0 permits while a call waits, even once its permit came and a busy event loop has not run the timer yet', () => {
    vi.useFakeTimers();
    try {
      const limiter = new RateLimiter({ rate: 1, interval: 1_000, maxWait: 5_000 });
      void limiter.execute(() => 1);
      void limiter.execute(() => 2); // waits 1 s
      vi.setSystemTime(Date.now() + 1_500); // the clock moves, no timer runs
      expect([limiter.queued, limiter.available]).toEqual([1, 0]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a sliding window tells each queued call its exact wait, rounds of interval beyond the first', () => {
    const { limiter, call } = setup({ rate: 2, interval: 1_000, algorithm: 'sliding-window', maxWait: 10_000 });
    const delayed: RateLimiterEvents['delayed'][] = [];
    limiter.on('delayed', (event) => void delayed.push(event));
    [1, 2, 3, 4, 5, 6].map((id) => call(id)); // two permits now, then two per second
    expect(delayed.map(({ wait }) => wait)).toEqual([1_000, 1_000, 2_000, 2_000]);
  });

  it('queues first in first out, each call let in exactly at its permit, with one timer at a time', async () => {
    const { clock, limiter, call, granted } = setup({ rate: 10, interval: 1_000, burst: 2, maxWait: 1_000 });
    const delayed: RateLimiterEvents['delayed'][] = [];
    limiter.on('delayed', (event) => void delayed.push(event));
    const calls = [1, 2, 3, 4, 5].map((id) => call(id));
    expect(limiter.queued).toBe(3);
    expect(clock.armed).toBe(1);
    expect(delayed).toEqual([
      { wait: 100, queued: 1 },
      { wait: 200, queued: 2 },
      { wait: 300, queued: 3 },
    ]);
    await clock.advance(300);
    expect(granted).toEqual([
      { id: 1, at: 0 },
      { id: 2, at: 0 },
      { id: 3, at: 100 },
      { id: 4, at: 200 },
      { id: 5, at: 300 },
    ]);
    expect(calls.every((c) => c.state === 'fulfilled')).toBe(true);
    expect([limiter.queued, clock.armed, clock.created]).toEqual([0, 0, 3]);
  });

  it("refuses at once a call whose permit, after the queue's, is beyond maxWait, with retryAfter counting the queue", async () => {
    const { clock, limiter, call } = setup({ rate: 10, interval: 1_000, burst: 1, maxWait: 250 });
    const rejected: RateLimiterEvents['rejected'][] = [];
    limiter.on('rejected', (event) => void rejected.push(event));
    call(1);
    call(2);
    call(3);
    const fourth = call(4);
    await flush();
    expect(limiter.queued).toBe(2);
    expect(fourth.state).toBe('rejected');
    expect(fourth.error).toMatchObject({ reason: 'limit', retryAfter: 300 });
    expect(rejected).toEqual([{ error: fourth.error, reason: 'limit', retryAfter: 300 }]);
    // Coming back after retryAfter, with nothing else arrived, gets a permit at once.
    await clock.advance(300);
    const back = call(5);
    await flush();
    expect(back.value).toBe(5);
  });

  it("refuses with 'queue-full' once maxQueue calls wait", async () => {
    const { limiter, call } = setup({ rate: 10, interval: 1_000, burst: 1, maxWait: Infinity, maxQueue: 2 });
    call(1);
    call(2);
    call(3);
    const fourth = call(4);
    await flush();
    expect(fourth.error).toMatchObject({ name: 'RateLimitedError', reason: 'queue-full', retryAfter: 300 });
    expect((fourth.error as Error).message).toBe('Rate limiter queue is full: the next permit is 300 ms away');
    expect(limiter.queued).toBe(2);
  });

  it('maxQueue 0 with maxWait > 0 refuses every call that would wait', async () => {
    const { clock, call } = setup({ rate: 1, interval: 10, maxWait: 100, maxQueue: 0 });
    call(1);
    const second = call(2);
    await flush();
    expect(second.error).toMatchObject({ reason: 'queue-full', retryAfter: 10 });
    expect(clock.created).toBe(0);
  });

  it('an abort while queued answers at once; those behind move up; the timer stays for the next permit, and goes with the last waiter', async () => {
    const { clock, limiter, call, granted } = setup({ rate: 10, interval: 1_000, burst: 1, maxWait: Infinity });
    const controllers = [0, 1, 2, 3].map(() => new AbortController());
    call(0);
    const waiting = [1, 2, 3].map((id) => call(id, controllers[id]?.signal));
    expect([limiter.queued, clock.armed]).toEqual([3, 1]);
    const reason = new Error('client left');
    controllers[1]?.abort(reason); // the head
    await flush();
    expect(waiting[0]?.error).toBe(reason);
    expect([limiter.queued, clock.armed, clock.created]).toEqual([2, 1, 1]);
    await clock.advance(100); // the head's permit goes to the next in line
    expect(granted.at(-1)).toEqual({ id: 2, at: 100 });
    controllers[3]?.abort(reason);
    await flush();
    expect(waiting[2]?.error).toBe(reason);
    expect([limiter.queued, clock.armed]).toEqual([0, 0]);
    // The permit the aborted calls did not take is there for the next caller.
    await clock.advance(100);
    expect(call(4).state).toBe('pending');
    await flush();
    expect(granted.at(-1)).toEqual({ id: 4, at: 200 });
  });

  it('a call aborted from the middle of the queue lets those behind it in one permit sooner', async () => {
    const { clock, call, granted } = setup({ rate: 10, interval: 1_000, burst: 1, maxWait: Infinity });
    const controller = new AbortController();
    call(0);
    call(1);
    call(2, controller.signal);
    call(3);
    controller.abort();
    await clock.advance(200);
    expect(granted).toEqual([
      { id: 0, at: 0 },
      { id: 1, at: 100 },
      { id: 3, at: 200 },
    ]);
    expect(clock.armed).toBe(0);
  });

  it('a signal aborted before the call takes no permit', async () => {
    const { call, granted } = setup({ rate: 1 });
    const controller = new AbortController();
    controller.abort(new Error('already'));
    expect(call(1, controller.signal).state).toBe('pending');
    await flush();
    expect(call(2).state).toBe('pending');
    await flush();
    expect(granted).toEqual([{ id: 2, at: 0 }]);
  });

  it('an enclosing timeout ends a queued wait with its TimeoutError and clears the timer', async () => {
    const clock = new CountingClock({ start: 0 });
    const limiter = new RateLimiter({ rate: 1, interval: 1_000, maxWait: Infinity, clock });
    const stack = compose(withTimeout(50, { clock }), limiter);
    await stack.execute(() => 'first');
    const queued = track(stack.execute(() => 'second'));
    expect([limiter.queued, clock.armed]).toEqual([1, 2]);
    await clock.advance(50);
    expect(queued.error).toBeInstanceOf(TimeoutError);
    expect([limiter.queued, clock.armed]).toEqual([0, 0]);
  });

  it('a timer that fires late grants every permit that came meanwhile, first in first out, and a bucket keeps at most burst', async () => {
    let fire: (() => void) | undefined;
    let time = 0;
    const clock = {
      now: () => time,
      setTimeout: (callback: () => void) => ((fire = callback), 1),
      clearTimeout: () => (fire = undefined),
    };
    const fireTimer = (): void => {
      const callback = fire;
      fire = undefined;
      callback?.();
    };
    const limiter = new RateLimiter({ rate: 1_000, interval: 1_000, burst: 3, maxWait: Infinity, clock });
    const order: number[] = [];
    const calls = Array.from({ length: 10 }, (_, id) => limiter.execute(() => void order.push(id)));
    expect(limiter.queued).toBe(7);
    time = 2.5; // due at 1 ms, fired at 2.5 ms: the permits of 1 and 2 ms came
    fireTimer();
    await flush();
    expect(order).toEqual([0, 1, 2, 3, 4]);
    time = 100; // far too late: the bucket holds 3 permits, not 98
    fireTimer();
    await flush();
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(limiter.queued).toBe(2);
    time = 102;
    fireTimer();
    await Promise.all(calls);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(fire).toBeUndefined();
  });

  it('a new call does not barge past waiting calls when the timer is late', async () => {
    let time = 0;
    const clock = { now: () => time, setTimeout: () => 1, clearTimeout: () => undefined };
    const limiter = new RateLimiter({ rate: 1, interval: 10, maxWait: Infinity, clock });
    const order: string[] = [];
    void limiter.execute(() => void order.push('first'));
    const waiting = limiter.execute(() => void order.push('waiting'));
    time = 25; // the timer never fires: the next arrival grants the due permit first
    const late = track(limiter.execute(() => void order.push('late')));
    await waiting;
    await flush();
    expect(order).toEqual(['first', 'waiting']);
    expect(late.state).toBe('pending'); // queued for the permit at 30 (only the one of 20 was due)
    expect(limiter.queued).toBe(1);
  });

  it('waits longer than a timer can hold are waited in steps', async () => {
    const clock = new CountingClock({ start: 0 });
    const limiter = new RateLimiter({ rate: 1, interval: 3e9, maxWait: Infinity, clock });
    await limiter.execute(() => 'first');
    const second = track(limiter.execute(() => 'second'));
    await clock.advance(MAX_TIMER);
    expect([second.state, clock.armed, clock.created]).toEqual(['pending', 1, 2]);
    await clock.advance(3e9 - MAX_TIMER - 1);
    expect(second.state).toBe('pending');
    await clock.advance(1);
    expect([second.value, clock.armed]).toEqual(['second', 0]);
  });
});

// ── Composition ─────────────────────────────────────────────────────────────────────────

describe('RateLimiter composed', () => {
  it('a circuit breaker around it does not count its refusals', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const limiter = new RateLimiter({ rate: 1, interval: 60_000 });
    const stack = compose(breaker, limiter);
    await stack.execute(() => 'ok');
    for (let i = 0; i < 5; i++) await expect(stack.execute(() => 'refused')).rejects.toBeInstanceOf(RateLimitedError);
    expect(breaker.state).toBe('closed');
  });

  it('retryWithBackoff does not retry its refusal by default', async () => {
    const retry = retryWithBackoff({ maxRetries: 5, baseDelay: 0 });
    const retried = vi.fn();
    retry.on('retry', retried);
    const limiter = new RateLimiter({ rate: 1, interval: 60_000 });
    const fn = vi.fn(() => 'ok');
    const stack = compose(retry, limiter);
    await stack.execute(fn);
    await expect(stack.execute(fn)).rejects.toMatchObject({ name: 'RateLimitedError', reason: 'limit' });
    expect(fn).toHaveBeenCalledTimes(1);
    expect(retried).not.toHaveBeenCalled();
  });

  it('inside a retry, every attempt takes a permit', async () => {
    const clock = new CountingClock({ start: 0 });
    const limiter = new RateLimiter({ rate: 10, interval: 1_000, burst: 1, maxWait: Infinity, clock });
    const times: number[] = [];
    const stack = compose(retryWithBackoff({ maxRetries: 2, baseDelay: 0, clock }), limiter);
    const result = track(
      stack.execute(({ attempt }) => {
        times.push(clock.now());
        if (attempt < 3) throw new Error('flaky');
        return attempt;
      }),
    );
    await clock.advance(200);
    expect(result.value).toBe(3);
    expect(times).toEqual([0, 100, 200]);
  });

  it('stacks with the five: a fallback answers a refusal, and nothing is left behind', async () => {
    const clock = new CountingClock({ start: 0 });
    const limiter = new RateLimiter({ rate: 2, interval: 1_000, maxWait: 1_000, maxQueue: 1, clock });
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 10 });
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock });
    const stack = compose(
      withFallback((error: unknown) => (isRateLimitedError(error) ? `later (${error.reason})` : 'failed')),
      breaker,
      retryWithBackoff({ maxRetries: 1, baseDelay: 10, clock }),
      withTimeout(2_000, { clock }),
      limiter,
      bulkhead,
    );
    const calls = [1, 2, 3, 4].map((id) => track(stack.execute(() => `ok ${id}`)));
    await clock.advance(500);
    expect(calls.map((c) => c.value)).toEqual(['ok 1', 'ok 2', 'ok 3', 'later (queue-full)']);
    expect([limiter.queued, bulkhead.active, breaker.state, clock.armed]).toEqual([0, 0, 'closed', 0]);
    // A hanging call past the limiter is a timeout, counted by the breaker: the limiter holds nothing for it.
    await clock.advance(500);
    const hanging = track(stack.execute(hang));
    await clock.advance(2_000 + 100 + 2_000); // a timeout, the retry's backoff (jittered around 10 ms), a timeout again
    expect(hanging.value).toBe('failed');
    expect(limiter.queued).toBe(0);
  });
});

// ── Events ──────────────────────────────────────────────────────────────────────────────

describe('RateLimiter events', () => {
  it('on() returns the function that unsubscribes, and refuses unknown events', async () => {
    const limiter = new RateLimiter({ rate: 1, interval: 60_000 });
    const listener = vi.fn();
    const stop = limiter.on('rejected', listener);
    await limiter.execute(() => 'ok');
    await rejectionOf(limiter.execute(() => 'no'));
    stop();
    stop();
    await rejectionOf(limiter.execute(() => 'no'));
    expect(listener).toHaveBeenCalledTimes(1);
    expect(() => limiter.on('rejection' as never, listener)).toThrow(new TypeError('Unknown event "rejection": expected one of "rejected", "delayed"'));
  });

  it('a listener that throws or rejects is reported and never breaks the call', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const limiter = new RateLimiter({ rate: 1, interval: 60_000 });
    limiter.on('rejected', () => {
      throw new Error('listener bug');
    });
    limiter.on('rejected', async () => {
      throw new Error('async listener bug');
    });
    await limiter.execute(() => 'ok');
    await expect(limiter.execute(() => 'no')).rejects.toBeInstanceOf(RateLimitedError);
    await flush();
    expect(reported.mock.calls.map((call) => (call[1] as Error).message)).toEqual(['listener bug', 'async listener bug']);
  });
});

// ── Racing callers ──────────────────────────────────────────────────────────────────────

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

describe('RateLimiter under 100 racing callers', () => {
  it.each(['token-bucket', 'sliding-window'] as const)('%s: every call settles once, grants are FIFO and within the limit, nothing is left', async (algorithm) => {
    const clock = new CountingClock({ start: 0 });
    const limiter = new RateLimiter({ rate: 10, interval: 100, algorithm, maxWait: 300, maxQueue: 20, clock });
    const random = seededRandom(algorithm.length);
    const grants: { id: number; at: number }[] = [];
    const arrivals: number[] = [];
    const outcomes = Array.from({ length: 100 }, (_, id) => {
      const at = Math.floor(random() * 500);
      const abortAfter = random() < 0.2 ? Math.floor(random() * 200) : undefined;
      return new Promise<unknown>((resolve) => {
        clock.setTimeout(() => {
          arrivals.push(id);
          const controller = new AbortController();
          if (abortAfter !== undefined) clock.setTimeout(() => controller.abort(new Error(`abort ${id}`)), abortAfter);
          limiter.execute(() => void grants.push({ id, at: clock.now() }), { signal: controller.signal }).then(
            () => resolve('granted'),
            (error: unknown) => resolve(error instanceof RateLimitedError ? error.reason : 'aborted'),
          );
        }, at);
      });
    });
    await clock.advance(1_500);
    const settled = await Promise.all(outcomes);
    expect(settled.filter((o) => o === 'granted')).toHaveLength(grants.length);
    expect(new Set(settled)).toEqual(new Set(['granted', 'limit', 'queue-full', 'aborted'].filter((o) => settled.includes(o))));
    expect(settled.filter((o) => o === 'limit' || o === 'queue-full').length).toBeGreaterThan(0); // the race did overflow
    expect(settled.filter((o) => o === 'aborted').length).toBeGreaterThan(0);
    // FIFO: grants in the order the calls arrived.
    const order = grants.map((g) => arrivals.indexOf(g.id));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    // Within the limit: the 11th grant after any grant comes at least 100 ms later (sliding window),
    // or no closed 100 ms window holds more than rate + burst (token bucket).
    const times = grants.map((g) => g.at);
    const most = algorithm === 'sliding-window' ? 10 : 20;
    for (let i = 0; i + most < times.length; i++) expect((times[i + most] as number) - (times[i] as number)).toBeGreaterThan(algorithm === 'sliding-window' ? 99.999 : 100);
    expect([limiter.queued, clock.armed]).toEqual([0, 0]);
  });
});

// ── Extremes ────────────────────────────────────────────────────────────────────────────

describe('RateLimiter at the extremes of its options', () => {
  it('rate 1 per 1 ms: one call per ms', async () => {
    const { clock, call, granted } = setup({ rate: 1, interval: 1, maxWait: Infinity });
    const calls = [0, 1, 2, 3, 4].map((id) => call(id));
    await clock.advance(4);
    expect(granted.map((g) => g.at)).toEqual([0, 1, 2, 3, 4]);
    expect(calls.every((c) => c.state === 'fulfilled')).toBe(true);
    expect(clock.armed).toBe(0);
  });

  it('rate 1 per 0.5 ms: fractions of a ms', async () => {
    const { clock, call, granted } = setup({ rate: 1, interval: 0.5, maxWait: Infinity });
    [0, 1, 2].map((id) => call(id));
    await clock.advance(1);
    expect(granted.map((g) => g.at)).toEqual([0, 0.5, 1]);
  });

  it('rate 1 per 2³¹−1 ms: a wait of one timer, then of two in steps', async () => {
    const { clock, call, granted, limiter } = setup({ rate: 1, interval: MAX_TIMER, maxWait: Infinity });
    call(0);
    call(1);
    call(2);
    await clock.advance(MAX_TIMER);
    expect(granted.map((g) => g.at)).toEqual([0, MAX_TIMER]);
    await clock.advance(MAX_TIMER);
    expect(granted.map((g) => g.at)).toEqual([0, MAX_TIMER, 2 * MAX_TIMER]);
    expect([limiter.queued, clock.armed, clock.created]).toEqual([0, 0, 2]);
    const refused = new RateLimiter({ rate: 1, interval: MAX_TIMER, clock });
    await refused.execute(() => 'first');
    expect(((await rejectionOf(refused.execute(() => 'second'))) as RateLimitedError).retryAfter).toBe(MAX_TIMER);
  });

  it('burst 1: no burst at all after idling', async () => {
    const { clock, call, granted } = setup({ rate: 100, interval: 1_000, burst: 1 });
    await clock.advance(60_000);
    [0, 1, 2].map((id) => call(id));
    await flush();
    expect(granted).toHaveLength(1);
  });

  it('a huge burst and a huge rate grant everything at once, arming nothing', async () => {
    const { clock, limiter, call } = setup({ rate: Number.MAX_SAFE_INTEGER, burst: Number.MAX_SAFE_INTEGER });
    const calls = Array.from({ length: 10_000 }, (_, id) => call(id));
    await flush();
    expect(calls.every((c) => c.state === 'fulfilled')).toBe(true);
    expect(limiter.available).toBe(Number.MAX_SAFE_INTEGER - 10_000);
    expect(clock.created).toBe(0);
    const max = setup({ rate: Number.MAX_VALUE, interval: 1, burst: 1 });
    const many = Array.from({ length: 100 }, (_, id) => max.call(id));
    await flush();
    expect(many.every((c) => c.state === 'fulfilled')).toBe(true);
  });

  it('maxWait Infinity with an unbounded queue: 10 000 waiting calls, one timer', async () => {
    const { clock, limiter, call } = setup({ rate: 1_000, interval: 1_000, burst: 1, maxWait: Infinity });
    const calls = Array.from({ length: 10_001 }, (_, id) => call(id));
    expect([limiter.queued, clock.armed]).toEqual([10_000, 1]);
    await clock.advance(10_000);
    expect(calls.every((c) => c.state === 'fulfilled')).toBe(true);
    expect([limiter.queued, clock.armed]).toEqual([0, 0]);
  });

  it('a sliding window at its largest rate, 100 000: exact, and refuses the next with the whole interval to wait', async () => {
    const { limiter, call } = setup({ rate: 100_000, interval: 1_000, algorithm: 'sliding-window' });
    const calls = Array.from({ length: 100_001 }, (_, id) => call(id));
    await flush();
    expect(calls.filter((c) => c.state === 'fulfilled')).toHaveLength(100_000);
    expect(calls.at(-1)?.error).toMatchObject({ reason: 'limit', retryAfter: 1_000 });
    expect(limiter.available).toBe(0);
  });
});
