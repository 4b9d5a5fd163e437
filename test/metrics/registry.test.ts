import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  BulkheadRejectedError,
  CircuitBreaker,
  CircuitOpenError,
  LayerPolicy,
  MetricsRegistry,
  TimeoutError,
  compose,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type CallSample,
  type MetricsSnapshot,
  type Policy,
  type PolicyDescription,
  type PolicyKind,
  type PolicyMetricsSnapshot,
} from '../../src/index.js';
import { SUCCESS, type CallObserver } from '../../src/engine/observe.js';
import { PolicyBase, stepsOf } from '../../src/engine/policy.js';
import { estimateQuantile } from '../../src/metrics/histogram.js';
import { CountingClock, manualClock } from '../fixtures/clock.js';
import { deferred, flushMicrotasks, hang, rejectionOf } from '../fixtures/promises.js';
import { liveSubscriptions } from '../fixtures/subscriptions.js';

/** A time source moved by hand: `now()` reads it, `advance(ms)` moves it. */
function handTime(start = 1_000) {
  let time = start;
  return {
    now: () => time,
    advance(ms: number): void {
      time += ms;
    },
  };
}

function entry(snapshot: MetricsSnapshot, kind: PolicyKind, name: string): PolicyMetricsSnapshot {
  const found = snapshot.policies.find((policy) => policy.kind === kind && policy.name === name);
  if (found === undefined) throw new Error(`no ${kind} named ${name} in the snapshot`);
  return found;
}

/** The counters alone, for compact expectations. */
function counters(policy: PolicyMetricsSnapshot) {
  const { calls, successes, failures, rejections, timeouts, retries, fallbacks } = policy;
  return { calls, successes, failures, rejections, timeouts, retries, fallbacks };
}

const zero = { calls: 0, successes: 0, failures: 0, rejections: 0, timeouts: 0, retries: 0, fallbacks: 0 };

/** Installs an observer in a policy's slot by hand (internal), as another registry would. */
function setObserver(policy: object, observer: CallObserver): void {
  (stepsOf(policy as PolicyBase<unknown>)[0] as { observer: CallObserver | undefined }).observer = observer;
}

/** The observer slot every bulwark policy has (internal). */
function observerOf(policy: object): CallObserver | undefined {
  return stepsOf(policy as PolicyBase<unknown>)[0]?.observer;
}


/** A policy of one's own that describes itself as the test says (its events are never emitted here). */
function described(description: PolicyDescription): Policy {
  class Described extends LayerPolicy<void> {
    protected describe(): PolicyDescription {
      return description;
    }
  }
  return new Described();
}

/** Makes `console.error` the place where reported errors go (no `reportError`), and returns its spy. */
function reportsOnConsole() {
  vi.stubGlobal('reportError', undefined);
  return vi.spyOn(console, 'error').mockImplementation(() => {});
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe('MetricsRegistry: counters', () => {
  it('counts successes and failures of one policy, with each call’s latency', async () => {
    const time = handTime();
    const registry = new MetricsRegistry({ now: time.now });
    const breaker = new CircuitBreaker({ name: 'payments', failureThreshold: 10 });
    registry.track(breaker);

    await breaker.execute(() => {
      time.advance(7);
      return 'ok';
    });
    const boom = new Error('down');
    await expect(
      breaker.execute(() => {
        time.advance(30);
        throw boom;
      }),
    ).rejects.toBe(boom);

    const payments = entry(registry.snapshot(), 'circuit-breaker', 'payments');
    expect(counters(payments)).toEqual({ ...zero, calls: 2, successes: 1, failures: 1 });
    expect(payments.latency.count).toBe(2);
    expect(payments.latency.sum).toBe(37);
  });

  it('counts every layer of a full stack through retries, a give-up and a fallback', async () => {
    const time = handTime();
    const registry = new MetricsRegistry({ now: time.now });
    const name = 'inventory';
    const stack = compose(
      withFallback('unknown', { name }),
      new CircuitBreaker({ name, failureThreshold: 10 }),
      retryWithBackoff({ name, maxRetries: 2, baseDelay: 0 }),
      withTimeout(1_000, { name }),
      new Bulkhead({ name, maxConcurrent: 5 }),
    );
    registry.track(stack);

    // 1: succeeds at once
    await expect(stack.execute(() => 'first')).resolves.toBe('first');
    // 2: fails once, then succeeds on the retry
    await expect(stack.execute(({ attempt }) => (attempt === 1 ? Promise.reject(new Error('blip')) : 'second'))).resolves.toBe('second');
    // 3: fails on all three attempts; the retry gives up, the breaker counts it, the fallback answers
    await expect(stack.execute(() => Promise.reject(new Error('down')))).resolves.toBe('unknown');

    const snapshot = registry.snapshot();
    expect(snapshot.policies.map((policy) => policy.kind)).toEqual(['fallback', 'circuit-breaker', 'retry', 'timeout', 'bulkhead']);
    expect(counters(entry(snapshot, 'fallback', name))).toEqual({ ...zero, calls: 3, successes: 3, fallbacks: 1 });
    expect(counters(entry(snapshot, 'circuit-breaker', name))).toEqual({ ...zero, calls: 3, successes: 2, failures: 1 });
    expect(counters(entry(snapshot, 'retry', name))).toEqual({ ...zero, calls: 3, successes: 2, failures: 1, retries: 3 });
    // inside the retry every attempt is a call: 1 + 2 + 3
    expect(counters(entry(snapshot, 'timeout', name))).toEqual({ ...zero, calls: 6, successes: 2, failures: 4 });
    expect(counters(entry(snapshot, 'bulkhead', name))).toEqual({ ...zero, calls: 6, successes: 2, failures: 4 });
  });

  it('counts a rejection where it happened: the bulkhead’s own, a failure for the breaker around it', async () => {
    const registry = new MetricsRegistry({ now: handTime().now });
    const bulkhead = new Bulkhead({ name: 'search', maxConcurrent: 1 });
    const breaker = new CircuitBreaker({ name: 'search', failureThreshold: 1 });
    const stack = compose(breaker, bulkhead);
    registry.track(stack);

    const holder = deferred<string>();
    const first = stack.execute(() => holder.promise);
    const refused = await rejectionOf(stack.execute(() => 'never runs'));
    expect(refused).toBeInstanceOf(BulkheadRejectedError);
    holder.resolve('done');
    await first;

    const snapshot = registry.snapshot();
    expect(counters(entry(snapshot, 'bulkhead', 'search'))).toEqual({ ...zero, calls: 2, successes: 1, rejections: 1 });
    expect(counters(entry(snapshot, 'circuit-breaker', 'search'))).toEqual({ ...zero, calls: 2, successes: 1, failures: 1 });
    // and the breaker itself did not count the inner refusal: still closed with a threshold of 1
    expect(entry(snapshot, 'circuit-breaker', 'search').state).toBe('closed');
  });

  it('counts an open breaker’s refusals as its rejections, and the fallback’s answers', async () => {
    const { clock } = manualClock();
    const registry = new MetricsRegistry({ now: handTime().now });
    const breaker = new CircuitBreaker({ name: 'prices', failureThreshold: 1, recoveryTimeout: 60_000, clock });
    const timeout = withTimeout(1_000, { name: 'prices' });
    const stack = compose(withFallback(0, { name: 'prices' }), breaker, timeout);
    registry.track(stack);

    await stack.execute(() => Promise.reject(new Error('down'))); // opens it
    for (let i = 0; i < 3; i++) await expect(stack.execute(() => 42)).resolves.toBe(0);
    const refusal = await rejectionOf(breaker.execute(() => 42));
    expect(refusal).toBeInstanceOf(CircuitOpenError);

    const snapshot = registry.snapshot();
    expect(counters(entry(snapshot, 'circuit-breaker', 'prices'))).toEqual({ ...zero, calls: 5, failures: 1, rejections: 4 });
    expect(counters(entry(snapshot, 'fallback', 'prices'))).toEqual({ ...zero, calls: 4, successes: 4, fallbacks: 4 });
    expect(counters(entry(snapshot, 'timeout', 'prices'))).toEqual({ ...zero, calls: 1, failures: 1 });
    expect(entry(snapshot, 'circuit-breaker', 'prices').state).toBe('open');
  });

  it('counts a timeout’s TimeoutErrors (as failures too), with the deadline as latency', async () => {
    const clock = new CountingClock();
    const registry = new MetricsRegistry({ now: () => clock.now() });
    const timeout = withTimeout(100, { name: 'slow', clock });
    registry.track(timeout);

    const call = rejectionOf(timeout.execute(hang));
    await clock.advance(100);
    expect(await call).toBeInstanceOf(TimeoutError);

    const slow = entry(registry.snapshot(), 'timeout', 'slow');
    expect(counters(slow)).toEqual({ ...zero, calls: 1, failures: 1, timeouts: 1 });
    expect(slow.latency.sum).toBe(100);
    expect(slow.latency.buckets.find((bucket) => bucket.le === 100)?.count).toBe(1);
    expect(slow.latency.buckets.find((bucket) => bucket.le === 50)?.count).toBe(0);
  });

  it('counts a bulkhead’s queue timeout as its rejection', async () => {
    const clock = new CountingClock();
    const registry = new MetricsRegistry({ now: () => clock.now() });
    const bulkhead = new Bulkhead({ name: 'db', maxConcurrent: 1, maxQueue: 1, queueTimeout: 50, clock });
    registry.track(bulkhead);

    const holder = deferred();
    const running = bulkhead.execute(() => holder.promise);
    const queued = rejectionOf(bulkhead.execute(() => 'never runs'));
    await clock.advance(50);
    expect(await queued).toMatchObject({ name: 'BulkheadRejectedError', reason: 'queue-timeout' });
    holder.resolve();
    await running;

    const db = entry(registry.snapshot(), 'bulkhead', 'db');
    expect(counters(db)).toEqual({ ...zero, calls: 2, successes: 1, rejections: 1 });
    expect(db.latency.sum).toBe(100); // the refused call waited 50 ms, the running one ran 50 ms
  });

  it('counts a caller’s abort as a failure of the call, not a rejection', async () => {
    const registry = new MetricsRegistry({ now: handTime().now });
    const bulkhead = new Bulkhead({ name: 'db', maxConcurrent: 1, maxQueue: 1 });
    registry.track(bulkhead);
    const holder = deferred();
    const running = bulkhead.execute(() => holder.promise);
    const caller = new AbortController();
    const queued = rejectionOf(bulkhead.execute(() => 'never runs', { signal: caller.signal }));
    caller.abort(new Error('user left'));
    expect(await queued).toMatchObject({ message: 'user left' });
    holder.resolve();
    await running;
    expect(counters(entry(registry.snapshot(), 'bulkhead', 'db'))).toEqual({ ...zero, calls: 2, successes: 1, failures: 1 });
  });
});

describe('MetricsRegistry: latency histogram', () => {
  it('puts each latency in the first bucket whose bound is ≥ it, and counts cumulatively up to +Infinity', async () => {
    const time = handTime();
    const registry = new MetricsRegistry({ now: time.now, buckets: [1, 5, 10] });
    const timeout = withTimeout(60_000, { name: 't' });
    registry.track(timeout);
    for (const ms of [0, 1, 3, 5, 7, 10, 20, 1e6]) {
      await timeout.execute(() => {
        time.advance(ms);
      });
    }
    const { latency } = entry(registry.snapshot(), 'timeout', 't');
    expect(latency.buckets).toEqual([
      { le: 1, count: 2 }, // 0 and 1 (a latency equal to a bound falls in its bucket)
      { le: 5, count: 4 }, // + 3, 5
      { le: 10, count: 6 }, // + 7, 10
      { le: Infinity, count: 8 }, // + 20, 1e6
    ]);
    expect(latency.count).toBe(8);
    expect(latency.sum).toBe(0 + 1 + 3 + 5 + 7 + 10 + 20 + 1e6);
  });

  it('places latencies the same way with a long bucket list', async () => {
    const bounds = [0.5, ...Array.from({ length: 39 }, (_, i) => i + 1)]; // 0.5, 1, 2, …, 39
    const latencies = [0, 0.5, 0.6, 1, 13, 13.5, 38.9, 39, 40, 1e9];
    const time = handTime();
    const registry = new MetricsRegistry({ now: time.now, buckets: bounds });
    const timeout = withTimeout(60_000, { name: 't' });
    registry.track(timeout);
    for (const ms of latencies) await timeout.execute(() => time.advance(ms));
    const { buckets } = entry(registry.snapshot(), 'timeout', 't').latency;
    const expected = [...bounds, Infinity].map((le) => ({ le, count: latencies.filter((ms) => ms <= le).length }));
    expect(buckets).toEqual(expected);
  });

  it('counts a call whose start the clock could not read, with a latency of 0', async () => {
    reportsOnConsole();
    let reads = 0;
    const registry = new MetricsRegistry({
      now: () => {
        if (++reads === 1) throw new Error('clock broke');
        return 1_000;
      },
    });
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    await expect(timeout.execute(() => 'ok')).resolves.toBe('ok');
    const t = entry(registry.snapshot(), 'timeout', 't');
    expect(counters(t)).toEqual({ ...zero, calls: 1, successes: 1 });
    expect([t.latency.count, t.latency.sum, t.latency.buckets[0]]).toEqual([1, 0, { le: 1, count: 1 }]);
  });

  it('counts a call whose clock read -Infinity at its start with a latency of 0, so the sum stays finite', async () => {
    const readings = [-Infinity, 5, 10, 14];
    const registry = new MetricsRegistry({ now: () => readings.shift() ?? NaN });
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    await timeout.execute(() => 1);
    await timeout.execute(() => 2);
    const { latency } = entry(registry.snapshot(), 'timeout', 't');
    expect([latency.count, latency.sum]).toEqual([2, 4]);
  });

  it('uses performance.now by default, read again when fake timers replace Date', async () => {
    let time = 0;
    vi.useFakeTimers({ toFake: ['Date'] }); // Date changes: the registry looks performance up again
    vi.stubGlobal('performance', { now: () => time });
    const registry = new MetricsRegistry();
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    await timeout.execute(() => {
      time += 7.25;
    });
    expect(entry(registry.snapshot(), 'timeout', 't').latency.sum).toBe(7.25);
  });

  it('uses Date.now where there is no performance', async () => {
    vi.stubGlobal('performance', undefined);
    vi.resetModules(); // a registry module that has not looked its default clock up yet
    const fresh = await import('../../src/index.js');
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000);
    const registry = new fresh.MetricsRegistry();
    const timeout = fresh.withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    await timeout.execute(() => {
      vi.setSystemTime(1_012);
    });
    expect(entry(registry.snapshot(), 'timeout', 't').latency.sum).toBe(12);
  });

  it('reads a clock that steps back as a latency of 0, never negative', async () => {
    const time = handTime();
    const registry = new MetricsRegistry({ now: time.now });
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    await timeout.execute(() => time.advance(-5));
    const { latency } = entry(registry.snapshot(), 'timeout', 't');
    expect(latency.sum).toBe(0);
    expect(latency.buckets[0]).toEqual({ le: 1, count: 1 });
  });

  it.each([
    // latencies, buckets, p50, p90, p99: Prometheus' histogram_quantile on the same buckets
    ['none', [], [10, 20], 0, 0, 0],
    ['four in the first bucket', [2, 4, 6, 8], [10, 20], 5, 9, 9.9],
    ['two buckets half and half', [5, 5, 15, 15], [10, 20], 10, 18, 19.8],
    ['a tail in the +Infinity bucket reads as the highest bound', [5, 5, 5, 5, 5, 5, 5, 5, 5, 500], [10, 20], 5.555555555555555, 10, 20],
    // ≤1: 1, ≤2.5: 1, ≤5: 3, ≤10: 4, ≤25: 4, ≤50: 10, so every estimate falls in (25, 50]
    ['the default buckets', [0.5, 3, 3, 7, 40, 40, 40, 40, 40, 40], undefined, 25 + (25 * 1) / 6, 25 + (25 * 5) / 6, 25 + (25 * 5.9) / 6],
  ] as const)('%s: p50 %s, p90 %s, p99 %s', async (_, latencies, buckets, p50, p90, p99) => {
    const time = handTime();
    const registry = new MetricsRegistry({ now: time.now, buckets });
    const timeout = withTimeout(60_000, { name: 't' });
    registry.track(timeout);
    for (const ms of latencies) await timeout.execute(() => time.advance(ms));
    const { latency } = entry(registry.snapshot(), 'timeout', 't');
    expect(latency.p50).toBeCloseTo(p50, 9);
    expect(latency.p90).toBeCloseTo(p90, 9);
    expect(latency.p99).toBeCloseTo(p99, 9);
  });

  it('estimates like histogram_quantile: interpolation inside the bucket, from 0 for the first, the bound for a bucket at 0', () => {
    // 10 calls: 2 in (0, 1], 3 in (1, 5], 5 in (5, 10]
    const bounds = [1, 5, 10];
    const cumulative = [2, 5, 10, 10];
    expect(estimateQuantile(0.1, bounds, cumulative)).toBeCloseTo(0.5, 12); // rank 1 of 2 in (0, 1]
    expect(estimateQuantile(0.5, bounds, cumulative)).toBeCloseTo(5, 12); // rank 5: the top of (1, 5]
    expect(estimateQuantile(0.8, bounds, cumulative)).toBeCloseTo(8, 12); // rank 8: 3 of 5 into (5, 10]
    expect(estimateQuantile(0.5, [0, 1], [4, 4, 4])).toBe(0);
  });

  it('rounds away the float noise of the interpolation: one of three calls in (250, 500] gives a p90 of exactly 425', () => {
    const bounds = [100, 250, 500, 1_000];
    expect(estimateQuantile(0.9, bounds, [0, 2, 3, 3, 3])).toBe(425); // 250 + 250 × (2.7 − 2) / 1, not 425.00000000000006
    expect(estimateQuantile(0.99, [1, 2.5], [0, 3, 3])).toBe(2.485);
  });

  it('uses performance.now by default, and fake timers installed after the registry was made drive it', async () => {
    const registry = new MetricsRegistry();
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    await timeout.execute(() => 1); // read the real clock first
    // That call took real time (more than a millisecond on a loaded machine): only what follows is compared.
    const before = entry(registry.snapshot(), 'timeout', 't').latency.sum;
    vi.useFakeTimers();
    const call = timeout.execute(() => new Promise((resolve) => setTimeout(resolve, 30)));
    await vi.advanceTimersByTimeAsync(30);
    await call;
    const { latency } = entry(registry.snapshot(), 'timeout', 't');
    expect(latency.count).toBe(2);
    expect(latency.sum - before).toBeGreaterThanOrEqual(30);
    expect(latency.sum - before).toBeLessThan(31);
  });

  it('uses performance.now by default, with fake timers installed before the registry was made', async () => {
    vi.useFakeTimers();
    const registry = new MetricsRegistry();
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    const call = timeout.execute(() => new Promise((resolve) => setTimeout(resolve, 30)));
    await vi.advanceTimersByTimeAsync(30);
    await call;
    expect(entry(registry.snapshot(), 'timeout', 't').latency.sum).toBe(30);
  });
});

describe('MetricsRegistry: gauges', () => {
  it('reads the breaker’s state when the snapshot is taken, half-open included', async () => {
    const { clock, advance } = manualClock();
    const registry = new MetricsRegistry({ now: handTime().now });
    const breaker = new CircuitBreaker({ name: 'b', failureThreshold: 1, recoveryTimeout: 1_000, clock });
    registry.track(breaker);
    expect(entry(registry.snapshot(), 'circuit-breaker', 'b').state).toBe('closed');
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    expect(entry(registry.snapshot(), 'circuit-breaker', 'b').state).toBe('open');
    advance(1_000);
    expect(entry(registry.snapshot(), 'circuit-breaker', 'b').state).toBe('half-open');
    breaker.isolate();
    expect(entry(registry.snapshot(), 'circuit-breaker', 'b').state).toBe('isolated');
  });

  it('reports the rates of breaker.stats()', async () => {
    const { clock } = manualClock();
    const registry = new MetricsRegistry({ now: handTime().now });
    const breaker = new CircuitBreaker({ name: 'rated', failureRate: { threshold: 0.9, minimumCalls: 10, window: { calls: 10 } }, clock });
    registry.track(breaker);
    await breaker.execute(() => 'ok');
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    await breaker.execute(() => 'ok');
    const rated = entry(registry.snapshot(), 'circuit-breaker', 'rated');
    expect(rated.failureRate).toBe(breaker.stats().failureRate);
    expect(rated.failureRate).toBe(0.5);
    expect(rated.slowCallRate).toBe(breaker.stats().slowCallRate);
  });

  it('reads the bulkhead’s active and queued calls, and gives other kinds no gauge', async () => {
    const registry = new MetricsRegistry();
    const bulkhead = new Bulkhead({ name: 'pool', maxConcurrent: 2, maxQueue: 5 });
    const retry = retryWithBackoff({ name: 'pool' });
    registry.track(compose(retry, bulkhead));
    const holders = [deferred(), deferred(), deferred()];
    const calls = holders.map((holder) => bulkhead.execute(() => holder.promise));
    const busy = entry(registry.snapshot(), 'bulkhead', 'pool');
    expect([busy.active, busy.queued]).toEqual([2, 1]);
    for (const holder of holders) holder.resolve();
    await Promise.all(calls);
    const idle = entry(registry.snapshot(), 'bulkhead', 'pool');
    expect([idle.active, idle.queued]).toEqual([0, 0]);
    expect(Object.keys(entry(registry.snapshot(), 'retry', 'pool'))).toEqual(['name', 'kind', 'calls', 'successes', 'failures', 'rejections', 'timeouts', 'retries', 'fallbacks', 'latency']);
  });
});

describe('MetricsRegistry: gauges of a policy of your own', () => {
  it('reports gauges that cannot be read, and takes the snapshot without them', () => {
    const printed = reportsOnConsole();
    const broken = new Error('gauges broke');
    const registry = new MetricsRegistry();
    registry.track(
      described({
        kind: 'pool',
        name: 'p',
        gauges: [{ field: 'idle', prometheus: 'pool_idle', otel: 'pool.idle', description: 'Idle.', unit: '{conn}', type: 'count' }],
        readGauges: () => {
          throw broken;
        },
      }),
    );
    const pool = entry(registry.snapshot(), 'pool', 'p');
    expect(pool.idle).toBeUndefined();
    expect(counters(pool)).toEqual(zero);
    expect(printed.mock.calls).toEqual([['bulwark: the gauges of pool "p" failed', broken]]);
  });
});

describe('MetricsRegistry: snapshot', () => {
  it('is plain JSON: it round-trips through JSON.stringify, the +Infinity bound becoming null', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_700_000_000_000);
    const registry = new MetricsRegistry({ now: handTime().now });
    const stack = compose(withFallback(0, { name: 'a' }), new CircuitBreaker({ name: 'a' }), new Bulkhead({ name: 'a', maxConcurrent: 1 }), withTimeout(10, { name: 'a' }), retryWithBackoff({ name: 'a' }));
    registry.track(stack);
    await stack.execute(() => 1);
    const snapshot = registry.snapshot();
    expect(snapshot.timestamp).toBe(1_700_000_000_000);

    const parsed = JSON.parse(JSON.stringify(snapshot)) as MetricsSnapshot;
    const expected = {
      ...snapshot,
      policies: snapshot.policies.map((policy) => ({
        ...policy,
        latency: { ...policy.latency, buckets: policy.latency.buckets.map((bucket) => ({ ...bucket, le: bucket.le === Infinity ? null : bucket.le })) },
      })),
    };
    expect(parsed).toStrictEqual(expected);
    // only the last bound is Infinity, so a reader can restore it
    for (const policy of snapshot.policies) {
      expect(policy.latency.buckets.map((bucket) => bucket.le)).toEqual([...registry.buckets, Infinity]);
    }
  });

  it('is a copy: later calls do not change a snapshot already taken', async () => {
    const registry = new MetricsRegistry({ now: handTime().now });
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    const before = registry.snapshot();
    await timeout.execute(() => 1);
    expect(entry(before, 'timeout', 't').calls).toBe(0);
    expect(entry(before, 'timeout', 't').latency.count).toBe(0);
    expect(entry(registry.snapshot(), 'timeout', 't').calls).toBe(1);
  });
});

describe('MetricsRegistry: tracking and untracking', () => {
  it('installs nothing on an untracked policy, and untrack restores it exactly', async () => {
    const registry = new MetricsRegistry();
    const breaker = new CircuitBreaker({ name: 'b' });
    const bulkhead = new Bulkhead({ name: 'b', maxConcurrent: 1 });
    const retry = retryWithBackoff({ name: 'b' });
    const timeout = withTimeout(10, { name: 'b' });
    const fallback = withFallback(0, { name: 'b' });
    const all = [fallback, breaker, retry, timeout, bulkhead];
    const live = all.map((policy) => liveSubscriptions(policy));
    const untrack = registry.track(compose(...all));
    for (const policy of all) expect(observerOf(policy)).toBeDefined();
    // A listener for each event that feeds a counter; refusals reach the registry from the engine, with no listener.
    expect(live.map((count) => count())).toEqual([1, 0, 1, 1, 0]);

    untrack();
    for (const policy of all) expect(observerOf(policy)).toBeUndefined();
    expect(live.map((count) => count())).toEqual([0, 0, 0, 0, 0]);
    expect(registry.snapshot().policies).toEqual([]);
    untrack(); // a second call does nothing
    expect(registry.snapshot().policies).toEqual([]);
  });

  it('stops counting a call in flight when its policy is untracked, and starts from zero when tracked again', async () => {
    const registry = new MetricsRegistry({ now: handTime().now });
    const samples: CallSample[] = [];
    registry.onCall((sample) => samples.push(sample));
    const timeout = withTimeout(1_000, { name: 't' });
    const untrack = registry.track(timeout);
    const holder = deferred();
    const call = timeout.execute(() => holder.promise);
    untrack();
    holder.resolve();
    await call;
    expect(samples).toEqual([]);
    registry.track(timeout);
    expect(counters(entry(registry.snapshot(), 'timeout', 't'))).toEqual(zero);
  });

  it('lets two registries track one policy, each counting every call, and untracks in any order', async () => {
    const first = new MetricsRegistry({ now: handTime().now });
    const second = new MetricsRegistry({ now: handTime(50).now });
    const breaker = new CircuitBreaker({ name: 'shared' });

    const untrackFirst = first.track(breaker);
    const firstObserver = observerOf(breaker);
    const untrackSecond = second.track(breaker);
    expect(observerOf(breaker)).not.toBe(firstObserver);
    await breaker.execute(() => 1);
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    expect(counters(entry(first.snapshot(), 'circuit-breaker', 'shared'))).toEqual({ ...zero, calls: 2, successes: 1, failures: 1 });
    expect(counters(entry(second.snapshot(), 'circuit-breaker', 'shared'))).toEqual({ ...zero, calls: 2, successes: 1, failures: 1 });

    untrackSecond();
    expect(observerOf(breaker)).toBe(firstObserver); // exactly as before the second registry came
    await breaker.execute(() => 1);
    expect(entry(first.snapshot(), 'circuit-breaker', 'shared').calls).toBe(3);
    untrackFirst();
    expect(observerOf(breaker)).toBeUndefined();

    // the other order
    const untrackA = first.track(breaker);
    const untrackB = second.track(breaker);
    untrackA();
    await breaker.execute(() => 1);
    expect(entry(second.snapshot(), 'circuit-breaker', 'shared').calls).toBe(1);
    expect(first.snapshot().policies).toEqual([]);
    untrackB();
    expect(observerOf(breaker)).toBeUndefined();
  });

  it('finishes a call in flight in every registry that saw it start, even when another untracks meanwhile', async () => {
    const first = new MetricsRegistry({ now: handTime().now });
    const second = new MetricsRegistry({ now: handTime().now });
    const timeout = withTimeout(1_000, { name: 't' });
    first.track(timeout);
    const untrackSecond = second.track(timeout);
    const holder = deferred();
    const call = timeout.execute(() => holder.promise);
    untrackSecond();
    holder.resolve();
    await call;
    expect(counters(entry(first.snapshot(), 'timeout', 't'))).toEqual({ ...zero, calls: 1, successes: 1 });
  });

  it('gives a call in flight to the registries it started in, with their own start times, when one leaves meanwhile', async () => {
    const times = [handTime(0), handTime(1_000), handTime(5_000)];
    const registries = times.map((time) => new MetricsRegistry({ now: time.now }));
    const timeout = withTimeout(1_000, { name: 't' });
    const untracks = registries.map((registry) => registry.track(timeout));
    const leftSamples: CallSample[] = [];
    registries[0]?.onCall((sample) => leftSamples.push(sample));
    const holder = deferred();
    const call = timeout.execute(() => holder.promise);
    untracks[0]?.();
    for (const time of times) time.advance(8);
    holder.resolve();
    await call;
    expect(leftSamples).toEqual([]); // the registry that left hears nothing more
    for (const registry of registries.slice(1)) {
      const { latency } = entry(registry.snapshot(), 'timeout', 't');
      expect([latency.count, latency.sum]).toEqual([1, 8]);
    }
  });

  it('keeps counting in every registry that stays when one of three leaves', async () => {
    const registries = [0, 1, 2].map(() => new MetricsRegistry({ now: handTime().now }));
    const timeout = withTimeout(1_000, { name: 't' });
    const untracks = registries.map((registry) => registry.track(timeout));
    untracks[1]?.();
    await timeout.execute(() => 1);
    expect(registries.map((registry) => registry.snapshot().policies.map((policy) => policy.calls))).toEqual([[1], [], [1]]);
    untracks[0]?.();
    await timeout.execute(() => 1);
    expect(registries.map((registry) => registry.snapshot().policies.map((policy) => policy.calls))).toEqual([[], [], [2]]);
    untracks[2]?.();
    expect(observerOf(timeout)).toBeUndefined();
  });

  it('gives two registries on one clock the same latency: the clock is read once per start and once per end', async () => {
    let reads = 0;
    const now = (): number => ++reads; // every read is 1 ms later
    const first = new MetricsRegistry({ now });
    const second = new MetricsRegistry({ now });
    const timeout = withTimeout(1_000, { name: 't' });
    first.track(timeout);
    second.track(timeout);
    await timeout.execute(() => 1);
    expect(reads).toBe(2);
    expect([first, second].map((registry) => entry(registry.snapshot(), 'timeout', 't').latency.sum)).toEqual([1, 1]);
  });

  it('tracks a policy composed twice into one stack once', async () => {
    const registry = new MetricsRegistry({ now: handTime().now });
    const timeout = withTimeout(1_000, { name: 't' });
    const stack = compose(timeout, timeout);
    registry.track(stack);
    await stack.execute(() => 1);
    expect(registry.snapshot().policies.map((policy) => `${policy.kind}:${policy.name}:${policy.calls}`)).toEqual(['timeout:t:2']);
  });

  it('ignores a call that started before its policy was tracked', async () => {
    const registry = new MetricsRegistry({ now: handTime().now });
    const timeout = withTimeout(1_000, { name: 't' });
    const holder = deferred();
    const call = timeout.execute(() => holder.promise);
    registry.track(timeout);
    holder.resolve();
    await call;
    const t = entry(registry.snapshot(), 'timeout', 't');
    expect(counters(t)).toEqual(zero);
    expect(t.latency.count).toBe(0);
  });

  it('shares the slot with an observer installed by someone else and gives it back exactly', async () => {
    const other = { now: () => 42, started: vi.fn(() => 5), finished: vi.fn() };
    const bulkhead = new Bulkhead({ name: 'x', maxConcurrent: 1 });
    setObserver(bulkhead, other);
    const registry = new MetricsRegistry({ now: handTime().now });
    const untrack = registry.track(bulkhead);
    await bulkhead.execute(() => 1);
    expect(other.started).toHaveBeenCalledTimes(1);
    expect(other.started).toHaveBeenCalledWith(42);
    expect(other.finished).toHaveBeenCalledWith(5, SUCCESS, undefined, 42);
    expect(entry(registry.snapshot(), 'bulkhead', 'x').calls).toBe(1);
    untrack();
    expect(observerOf(bulkhead)).toBe(other);
  });

  it('tracks a policy shared by two stacks once, until the last of its tracks is undone', async () => {
    const registry = new MetricsRegistry({ now: handTime().now });
    const shared = new Bulkhead({ name: 'pool', maxConcurrent: 4 });
    const reads = compose(withTimeout(100, { name: 'reads' }), shared);
    const writes = compose(withTimeout(500, { name: 'writes' }), shared);
    const untrackReads = registry.track(reads);
    const untrackWrites = registry.track(writes);
    await reads.execute(() => 1);
    await writes.execute(() => 2);
    expect(registry.snapshot().policies.map((policy) => `${policy.kind}:${policy.name}:${policy.calls}`)).toEqual(['timeout:reads:1', 'bulkhead:pool:2', 'timeout:writes:1']);
    untrackReads();
    untrackReads(); // a second call does nothing: it does not take the writes' hold on the shared bulkhead
    expect(registry.snapshot().policies.map((policy) => `${policy.kind}:${policy.name}`)).toEqual(['bulkhead:pool', 'timeout:writes']);
    untrackWrites();
    expect(registry.snapshot().policies).toEqual([]);
    expect(observerOf(shared)).toBeUndefined();
  });

  it('names a stack’s unnamed members with track’s name, keeps the others’ and skips foreign layers', () => {
    const registry = new MetricsRegistry();
    const foreign: Policy = { execute: (fn) => Promise.resolve(fn({ signal: new AbortController().signal, attempt: 1 })), wrap: (fn) => (...args) => Promise.resolve(fn(...args)) };
    registry.track(compose(new CircuitBreaker(), foreign, retryWithBackoff({ name: 'own' }), withTimeout(10)), { name: 'stack' });
    expect(registry.snapshot().policies.map((policy) => `${policy.kind}:${policy.name}`)).toEqual(['circuit-breaker:stack', 'retry:own', 'timeout:stack']);
  });

  it('skips a stack’s unnamed members when track has no name', () => {
    const registry = new MetricsRegistry();
    registry.track(compose(new CircuitBreaker(), withTimeout(10, { name: 'named' })));
    expect(registry.snapshot().policies.map((policy) => `${policy.kind}:${policy.name}`)).toEqual(['timeout:named']);
  });

  it('names a lone policy with track’s name over its own', () => {
    const registry = new MetricsRegistry();
    registry.track(new CircuitBreaker({ name: 'built' }), { name: 'given' });
    expect(registry.snapshot().policies.map((policy) => policy.name)).toEqual(['given']);
  });

  it('refuses two policies of one kind under one name, and tracks nothing of a stack it refuses', () => {
    const registry = new MetricsRegistry();
    registry.track(new CircuitBreaker({ name: 'dup' }));
    expect(() => registry.track(new CircuitBreaker({ name: 'dup' }))).toThrow(new RangeError('track: another circuit-breaker named "dup" is already tracked; give each one its own name'));
    // one kind, one name, also within a stack
    expect(() => registry.track(compose(withTimeout(1, { name: 'x' }), withTimeout(2, { name: 'x' })))).toThrow(RangeError);
    const timeout = withTimeout(10, { name: 'fresh' });
    expect(() => registry.track(compose(timeout, new CircuitBreaker({ name: 'dup' })))).toThrow(RangeError);
    expect(observerOf(timeout)).toBeUndefined();
    expect(registry.snapshot().policies.map((policy) => policy.name)).toEqual(['dup']);
    // the same name on another kind is fine: one stack per dependency, one name
    registry.track(withTimeout(10, { name: 'dup' }));
    expect(registry.snapshot().policies.map((policy) => policy.kind)).toEqual(['circuit-breaker', 'timeout']);
  });

  it('refuses to track one policy under two names', () => {
    const registry = new MetricsRegistry();
    const breaker = new CircuitBreaker({ name: 'a' });
    registry.track(breaker);
    expect(() => registry.track(breaker, { name: 'b' })).toThrow(new RangeError('track: this circuit-breaker is already tracked as "a", not "b"'));
  });
});

describe('MetricsRegistry: onCall', () => {
  it('reports one sample per tracked policy per call, with its outcome, until unsubscribed', async () => {
    const time = handTime();
    const registry = new MetricsRegistry({ now: time.now });
    const breaker = new CircuitBreaker({ name: 'b', failureThreshold: 1, clock: manualClock().clock });
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(compose(breaker, timeout));
    const samples: CallSample[] = [];
    const unsubscribe = registry.onCall((sample) => samples.push(sample));

    await breaker.execute(() => {
      time.advance(3);
      return 1;
    });
    const stack = compose(breaker, timeout);
    await stack.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
    await stack.execute(() => 1).catch(() => undefined);
    expect(samples).toEqual([
      { policy: 'b', kind: 'circuit-breaker', durationMs: 3, outcome: 'success' },
      { policy: 't', kind: 'timeout', durationMs: 0, outcome: 'failure' },
      { policy: 'b', kind: 'circuit-breaker', durationMs: 0, outcome: 'failure' },
      { policy: 'b', kind: 'circuit-breaker', durationMs: 0, outcome: 'rejection' },
    ]);
    unsubscribe();
    unsubscribe();
    breaker.reset();
    await breaker.execute(() => 1);
    expect(samples).toHaveLength(4);
  });

  it('a listener that throws is reported and neither the call nor the other listeners notice', async () => {
    const reported = vi.fn();
    vi.stubGlobal('reportError', reported);
    const registry = new MetricsRegistry({ now: handTime().now });
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    const broken = new Error('broken listener');
    registry.onCall(() => {
      throw broken;
    });
    const seen = vi.fn();
    registry.onCall(seen);
    await expect(timeout.execute(() => 'ok')).resolves.toBe('ok');
    expect(reported).toHaveBeenCalledWith(broken);
    expect(seen).toHaveBeenCalledTimes(1);
    expect(entry(registry.snapshot(), 'timeout', 't').successes).toBe(1);
  });

  it('an observer that throws beside the registry is reported, and the call and the registry go on', async () => {
    const reported = vi.fn();
    vi.stubGlobal('reportError', reported);
    const bulkhead = new Bulkhead({ name: 'x', maxConcurrent: 1 });
    const broken = new Error('broken observer');
    setObserver(bulkhead, {
      now: () => 0,
      started: () => {
        throw broken;
      },
      finished: () => {
        throw broken;
      },
    });
    const registry = new MetricsRegistry({ now: handTime().now });
    registry.track(bulkhead);
    await expect(bulkhead.execute(() => 'ok')).resolves.toBe('ok');
    expect(reported).toHaveBeenCalledWith(broken);
    expect(counters(entry(registry.snapshot(), 'bulkhead', 'x'))).toEqual({ ...zero, calls: 1, successes: 1 });
  });

  it('says on the console which callback failed: an onCall listener, an observer beside the registry', async () => {
    const printed = reportsOnConsole();
    const bulkhead = new Bulkhead({ name: 'x', maxConcurrent: 1 });
    const thrownAtEnd = new Error('observer broke at the end');
    setObserver(bulkhead, {
      now: () => 0,
      started: () => 1,
      finished: () => {
        throw thrownAtEnd;
      },
    });
    const registry = new MetricsRegistry({ now: handTime().now });
    registry.track(bulkhead);
    const thrown = new Error('listener broke');
    const rejected = new Error('async listener rejected');
    registry.onCall(() => {
      throw thrown;
    });
    registry.onCall(() => Promise.reject(rejected));
    await expect(bulkhead.execute(() => 'ok')).resolves.toBe('ok');
    await flushMicrotasks();
    expect(printed.mock.calls).toEqual([
      ['bulwark: a call observer failed', thrownAtEnd],
      ['bulwark: an "onCall" listener failed', thrown],
      ['bulwark: an "onCall" listener failed', rejected],
    ]);
    expect(counters(entry(registry.snapshot(), 'bulkhead', 'x'))).toEqual({ ...zero, calls: 1, successes: 1 });

    const startsBroken = new Bulkhead({ name: 'y', maxConcurrent: 1 });
    const thrownAtStart = new Error('observer broke at the start');
    setObserver(startsBroken, {
      now: () => 0,
      started: () => {
        throw thrownAtStart;
      },
      finished: () => undefined,
    });
    registry.track(startsBroken);
    printed.mockClear();
    await startsBroken.execute(() => 'ok');
    expect(printed.mock.calls[0]).toEqual(['bulwark: a call observer failed', thrownAtStart]);
  });

  it('keeps the other listeners when one unsubscribes', async () => {
    const registry = new MetricsRegistry({ now: handTime().now });
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    const kept = vi.fn();
    const dropped = vi.fn();
    registry.onCall(kept);
    const unsubscribe = registry.onCall(dropped);
    unsubscribe();
    await timeout.execute(() => 1);
    expect([kept.mock.calls.length, dropped.mock.calls.length]).toEqual([1, 0]);
  });

  it('a now() that throws is reported and the call goes on', async () => {
    const reported = vi.fn();
    vi.stubGlobal('reportError', reported);
    const broken = new Error('broken clock');
    const registry = new MetricsRegistry({
      now: () => {
        throw broken;
      },
    });
    const timeout = withTimeout(1_000, { name: 't' });
    registry.track(timeout);
    await expect(timeout.execute(() => 'ok')).resolves.toBe('ok');
    await expect(timeout.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(reported).toHaveBeenCalledWith(broken);
  });
});

describe('MetricsRegistry: bad input', () => {
  it.each([
    ['nothing', undefined, /expected a bulwark policy or a composed stack, got undefined/],
    ['null', null, /got null/],
    ['a number', 42, /got 42/],
    ['a plain object', {}, /got an object/],
    ['a foreign policy', { execute: () => Promise.resolve(1) }, /an object with execute\(\) that is neither/],
  ])('track(%s) throws a TypeError', (_, value, message) => {
    const registry = new MetricsRegistry();
    expect(() => registry.track(value as unknown as Policy)).toThrow(TypeError);
    expect(() => registry.track(value as unknown as Policy)).toThrow(message);
  });

  it('refuses an unnamed policy alone, a stack without a named member, and a bad name', () => {
    const registry = new MetricsRegistry();
    expect(() => registry.track(new CircuitBreaker())).toThrow(new TypeError('track: the circuit-breaker has no name; build it with { name } or pass { name } here'));
    expect(() => registry.track(compose(new CircuitBreaker(), withTimeout(5)))).toThrow(TypeError);
    expect(() => registry.track(compose())).toThrow(/the stack has no named bulwark policy/);
    expect(() => registry.track(new CircuitBreaker(), { name: '' })).toThrow(new RangeError('track name must not be empty'));
    expect(() => registry.track(new CircuitBreaker(), { name: 5 as unknown as string })).toThrow(new TypeError('track name must be a string, got 5'));
    expect(() => registry.track(new CircuitBreaker({ name: 'ok' }), 'name' as never)).toThrow(new TypeError('track options must be an object, got "name"'));
    // a name of '' is no name, nor one that is not a string (a policy of your own written in JavaScript)
    expect(() => registry.track(described({ kind: 'pool', name: 7 as never }))).toThrow(new TypeError('track: the pool has no name; build it with { name } or pass { name } here'));
    expect(() => registry.track(new CircuitBreaker({ name: '' }))).toThrow(new TypeError('track: the circuit-breaker has no name; build it with { name } or pass { name } here'));
    expect(() => registry.track(compose(new CircuitBreaker({ name: '' })))).toThrow(new TypeError('track: the stack has no named bulwark policy; build its policies with { name } or pass { name } here'));
    expect(registry.snapshot().policies).toEqual([]);
  });

  const reserved = '"name", "kind", "calls", "successes", "failures", "rejections", "latency"';
  const counter = (field: unknown) => ({ field, event: 'e', unit: '1', description: 'd' }) as never;
  const gauge = (field: unknown) => ({ field, prometheus: 'g', otel: 'g', description: 'd', unit: '1', type: 'count' }) as never;
  it.each([
    ...['name', 'kind', 'calls', 'successes', 'failures', 'rejections', 'latency'].map((field) => [`a counter named ${field}`, { counters: [counter(field)] }, `"${field}"`] as const),
    ['a gauge named latency', { gauges: [gauge('latency')] }, '"latency"'],
    ['an empty field', { counters: [counter('')] }, '""'],
    ['a field that is not a string', { gauges: [gauge(3)] }, '3'],
    ['a counter and a gauge on one field', { counters: [counter('drops')], gauges: [gauge('drops')] }, '"drops"'],
  ] as const)('refuses a policy whose description has %s, alone or in a stack', (_, metrics, shown) => {
    const registry = new MetricsRegistry();
    const message = `track: the pool describes a counter or gauge named ${shown}; each needs a field of its own, not one of ${reserved}`;
    expect(() => registry.track(described({ kind: 'pool', name: 'p', ...metrics }))).toThrow(new TypeError(message));
    expect(() => registry.track(compose(described({ kind: 'pool', name: 'p', ...metrics })))).toThrow(new TypeError(message));
    expect(registry.snapshot().policies).toEqual([]);
  });

  it('tracks a policy whose counters and gauges each have a field of their own', () => {
    const registry = new MetricsRegistry();
    registry.track(described({ kind: 'pool', name: 'p', counters: [counter('drops')], gauges: [gauge('idle')], readGauges: () => ({ idle: 3 }) }));
    const pool = entry(registry.snapshot(), 'pool', 'p');
    expect([pool.drops, pool.idle]).toEqual([0, 3]);
  });

  it.each([
    ['not an array', 5, TypeError, 'MetricsRegistry buckets must be an array of numbers, got 5'],
    ['empty', [], RangeError, 'MetricsRegistry buckets must hold at least one bound (+Infinity is implied), got an empty array'],
    ['not ascending', [1, 5, 5], RangeError, 'MetricsRegistry buckets must be strictly ascending, got 5 after 5 at index 2'],
    ['descending', [10, 2], RangeError, 'MetricsRegistry buckets must be strictly ascending, got 2 after 10 at index 1'],
    ['negative', [-1, 2], RangeError, 'MetricsRegistry buckets[0] must be a finite number ≥ 0, got -1'],
    ['NaN', [1, NaN], RangeError, 'MetricsRegistry buckets[1] must be a number, got NaN'],
    ['Infinity listed', [1, Infinity], RangeError, 'MetricsRegistry buckets[1] must be finite: the +Infinity bucket is implied, do not list it'],
    ['a string', [1, '2'], TypeError, 'MetricsRegistry buckets[1] must be a number, got "2"'],
  ])('buckets %s: %s', (_, buckets, type, message) => {
    expect(() => new MetricsRegistry({ buckets: buckets as number[] })).toThrow(new type(message));
  });

  it('refuses a now that is not a function, options that are not an object, and an onCall listener that is not a function', () => {
    expect(() => new MetricsRegistry({ now: 5 as unknown as () => number })).toThrow(new TypeError('MetricsRegistry now must be a function, got 5'));
    expect(() => new MetricsRegistry('fast' as never)).toThrow(new TypeError('MetricsRegistry options must be an object, got "fast"'));
    expect(() => new MetricsRegistry().onCall('x' as never)).toThrow(new TypeError('onCall listener must be a function, got "x"'));
  });

  it('copies the buckets, so changing the array later changes nothing', async () => {
    const buckets = [1, 2, 3];
    const registry = new MetricsRegistry({ buckets });
    buckets[0] = 100;
    expect(registry.buckets).toEqual([1, 2, 3]);
    expect(Object.isFrozen(registry.buckets)).toBe(true);
  });
});

describe('MetricsRegistry: nothing left behind', () => {
  it('arms no timer of its own, tracked or not', async () => {
    // The registry takes no Clock: a timer of its own would go through the globals, which
    // fake timers count. Microtask flushes only, as setImmediate is faked too.
    vi.useFakeTimers();
    const clock = new CountingClock();
    const registry = new MetricsRegistry({ now: () => clock.now() });
    const bulkhead = new Bulkhead({ name: 'b', maxConcurrent: 1, clock });
    const untrack = registry.track(bulkhead);
    expect(vi.getTimerCount()).toBe(0);
    await bulkhead.execute(() => 1);
    await flushMicrotasks();
    expect(vi.getTimerCount()).toBe(0);
    registry.snapshot();
    untrack();
    await flushMicrotasks();
    expect(vi.getTimerCount()).toBe(0);
    expect(clock.created).toBe(0);
  });
});
