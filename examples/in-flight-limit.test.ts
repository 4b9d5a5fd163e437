/**
 * The policy of examples/in-flight-limit.ts, written only against bulwark's public exports, in
 * a stack with the five built-in policies, under racing callers, aborts and timeouts, and in
 * every observability output: MetricsRegistry, logPolicyEvents, Prometheus and OpenTelemetry.
 */
import { DataPointType, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  MetricsRegistry,
  ResilienceError,
  compose,
  isRefusal,
  isResilienceError,
  logPolicyEvents,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type Clock,
  type LogLevel,
  type PolicyLogger,
} from 'bulwark';
import { registerOpenTelemetryMetrics } from 'bulwark/otel';
import { renderPrometheus } from 'bulwark/prometheus';
import { InFlightLimit, InFlightLimitError, type InFlightLimitEvents } from './in-flight-limit.js';

// ── Helpers ───────────────────────────────────────────────────────────────────────────────

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise reaction run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Mulberry32: a seeded random, so the race replays the same. */
function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A clock whose timers fire only when the test says so (the log summaries). */
function handClock() {
  let time = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  let nextId = 1;
  const clock: Clock = {
    now: () => time,
    setTimeout: (callback, ms) => {
      timers.set(nextId, { at: time + ms, callback });
      return nextId++;
    },
    clearTimeout: (handle) => void timers.delete(handle as number),
  };
  const advance = (ms: number): void => {
    time += ms;
    for (const [id, timer] of [...timers]) {
      if (timer.at > time) continue;
      timers.delete(id);
      timer.callback();
    }
  };
  return { clock, advance, armed: () => timers.size };
}

function recordingLogger() {
  const lines: [LogLevel, ...unknown[]][] = [];
  const logger = {
    info: (...args: unknown[]) => void lines.push(['info', ...args]),
    warn: (...args: unknown[]) => void lines.push(['warn', ...args]),
    error: (...args: unknown[]) => void lines.push(['error', ...args]),
  } satisfies PolicyLogger;
  return { logger, lines };
}

/** The full stack in the order of docs/choosing-a-stack.md, with the limit of `key` where a per-tenant limit goes: inside the timeout, outside the bulkhead. */
function fullStack(limits: InFlightLimit, key: string) {
  const fallback = withFallback((error: unknown) => ({ refused: error }), { handles: (error) => error instanceof InFlightLimitError, name: 'reports' });
  const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 60_000, name: 'reports' });
  const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 0, name: 'reports' });
  const timeout = withTimeout(5_000, { name: 'reports' });
  const bulkhead = new Bulkhead({ maxConcurrent: 100, name: 'reports' });
  const stack = (k: string) => compose(fallback, breaker, retry, timeout, limits.forKey(k), bulkhead);
  return { fallback, breaker, retry, timeout, bulkhead, stack, policy: stack(key) };
}

afterEach(() => {
  vi.restoreAllMocks();
});

// ── Options ───────────────────────────────────────────────────────────────────────────────

describe('InFlightLimit options', () => {
  it.each([
    [undefined, TypeError, 'new InFlightLimit(options): options with maxPerKey are required, got undefined'],
    [[], TypeError, 'options with maxPerKey are required, got an array'],
    [{}, TypeError, 'maxPerKey is required'],
    [{ maxPerKey: '2' }, TypeError, 'InFlightLimit maxPerKey must be a number, got "2"'],
    [{ maxPerKey: 0 }, RangeError, 'InFlightLimit maxPerKey must be a whole number ≥ 1 or Infinity, got 0'],
    [{ maxPerKey: 1.5 }, RangeError, 'got 1.5'],
    [{ maxPerKey: Number.NaN }, RangeError, 'got NaN'],
    [{ maxPerKey: 2, name: 7 }, TypeError, 'InFlightLimit name must be a string, got 7'],
    [{ maxPerKey: 2, name: '' }, RangeError, 'InFlightLimit name must not be empty'],
    [{ concurrency: 2 }, TypeError, 'InFlightLimit has no option "concurrency" (another library\'s name: this one\'s is "maxPerKey"); known options: "maxPerKey", "name"'],
    [{ maxPerKey: 2, maxPerkey: 3 }, TypeError, 'has no option "maxPerkey"'],
  ])('refuses %j at build time, naming the option and the value', (options, type, message) => {
    expect(() => new InFlightLimit(options as never)).toThrow(type);
    expect(() => new InFlightLimit(options as never)).toThrow(message);
  });

  it('accepts Infinity (no limit) and keeps what it was given', () => {
    expect(new InFlightLimit({ maxPerKey: Infinity }).maxPerKey).toBe(Infinity);
    expect(new InFlightLimit({ maxPerKey: 3, name: 'tenants' })).toMatchObject({ maxPerKey: 3, name: 'tenants' });
  });

  it('refuses a key that is not a string, and execute rejects with that error', async () => {
    const limits = new InFlightLimit({ maxPerKey: 1 });
    expect(() => limits.forKey(42 as never)).toThrow(new TypeError('InFlightLimit forKey(key): key must be a string, got 42'));
    await expect(limits.execute(undefined as never, () => 'never')).rejects.toThrow('key must be a string, got undefined');
  });
});

// ── Refusals and places ───────────────────────────────────────────────────────────────────

describe('InFlightLimit refusals', () => {
  it('refuses the call beyond maxPerKey at once with a branded refusal, without running it', async () => {
    const limits = new InFlightLimit({ maxPerKey: 2 });
    const work = deferred<string>();
    const held = [limits.execute('acme', () => work.promise), limits.execute('acme', () => work.promise)];
    const fn = vi.fn(() => 'never');
    const error = await limits.execute('acme', fn).catch((thrown: unknown) => thrown);
    expect(fn).not.toHaveBeenCalled();
    expect(error).toBeInstanceOf(InFlightLimitError);
    expect(error).toBeInstanceOf(ResilienceError);
    expect(isRefusal(error)).toBe(true);
    expect(isResilienceError(error)).toBe(true);
    expect(error).toMatchObject({ name: 'InFlightLimitError', key: 'acme', maxPerKey: 2, message: '2 calls already in flight for key "acme"' });
    expect((error as Error).stack).toBe('InFlightLimitError: 2 calls already in flight for key "acme"'); // no stack trace: refusals are cheap
    await expect(limits.execute('other', () => 'other')).resolves.toBe('other'); // keys are apart
    work.resolve('done');
    await expect(Promise.all(held)).resolves.toEqual(['done', 'done']);
    await expect(limits.execute('acme', () => 'again')).resolves.toBe('again');
  });

  it('keeps an entry only for keys with a call in flight', async () => {
    const limits = new InFlightLimit({ maxPerKey: 1 });
    const work = deferred();
    const calls = Array.from({ length: 1_000 }, (_, i) => limits.execute(`tenant-${i}`, () => work.promise));
    expect(limits.size).toBe(1_000);
    expect(limits.total).toBe(1_000);
    work.resolve();
    await Promise.all(calls);
    await Promise.all(Array.from({ length: 1_000 }, (_, i) => limits.execute(`tenant-${i}`, () => (i % 2 === 0 ? 'ok' : Promise.reject(new Error('down')))).catch(() => 'failed')));
    expect(limits.size).toBe(0);
    expect(limits.total).toBe(0);
  });
});

// ── In a stack with the five built-ins ───────────────────────────────────────────────────

describe('InFlightLimit composed with the five built-in policies', () => {
  it('its refusals are answered by the fallback, not counted by the breaker, not repeated by the retry', async () => {
    const limits = new InFlightLimit({ maxPerKey: 2 });
    const { stack, breaker, retry, bulkhead } = fullStack(limits, 'acme');
    const retries = vi.fn();
    const giveUps = vi.fn();
    retry.on('retry', retries);
    retry.on('giveUp', giveUps);
    const gates = [deferred<string>(), deferred<string>()];
    const running = gates.map((gate) => stack('acme').execute(() => gate.promise));
    expect(limits.inFlight('acme')).toBe(2);
    expect(bulkhead.active).toBe(2);

    const fn = vi.fn(() => 'never');
    const answer = await stack('acme').execute(fn);
    expect(fn).not.toHaveBeenCalled();
    expect(answer).toEqual({ refused: expect.any(InFlightLimitError) });
    expect(retries).not.toHaveBeenCalled(); // a refusal is not retried by default …
    expect(giveUps).toHaveBeenCalledTimes(1); // … the retry gives it up at once
    // failureThreshold 1: a single counted failure would have opened the circuit.
    expect(breaker.stats()).toMatchObject({ state: 'closed', failures: 0, consecutiveFailures: 0 });
    await expect(stack('globex').execute(() => 'globex')).resolves.toBe('globex');

    // Without a fallback the caller gets the refusal itself.
    const bare = compose(breaker, retry, withTimeout(5_000), limits.forKey('acme'), bulkhead);
    await expect(bare.execute(fn)).rejects.toBeInstanceOf(InFlightLimitError);
    expect(breaker.state).toBe('closed');

    gates.forEach((gate, i) => gate.resolve(`report ${i}`));
    await expect(Promise.all(running)).resolves.toEqual(['report 0', 'report 1']);
    expect([limits.size, limits.total, bulkhead.active]).toEqual([0, 0, 0]);
  });

  it('a failure of the function still goes through the breaker and the retry as usual', async () => {
    const limits = new InFlightLimit({ maxPerKey: 1 });
    const { stack, breaker } = fullStack(limits, 'acme');
    let attempts = 0;
    const flaky = ({ attempt }: { attempt: number }) => {
      attempts++;
      expect(limits.inFlight('acme')).toBe(1); // every attempt holds the key's one place
      return attempt < 3 ? Promise.reject(new Error('flaky')) : 'third time';
    };
    await expect(stack('acme').execute(flaky)).resolves.toBe('third time');
    expect(attempts).toBe(3);
    expect(breaker.state).toBe('closed');
    expect(limits.size).toBe(0);
  });

  it('holds the per-key limit under 100 racing callers', async () => {
    const maxPerKey = 3;
    const limits = new InFlightLimit({ maxPerKey });
    const { stack, bulkhead } = fullStack(limits, 't0');
    const random = seededRandom(7);
    const keys = ['t0', 't1', 't2', 't3', 't4'];
    const running = new Map<string, number>();
    const most = new Map<string, number>();
    const rejectedEvents = vi.fn();
    limits.on('rejected', rejectedEvents);

    const calls = Array.from({ length: 100 }, async (_, i) => {
      const key = keys[Math.floor(random() * keys.length)] as string;
      const startIn = Math.floor(random() * 10);
      const duration = Math.floor(random() * 8);
      const fails = random() < 0.2;
      if (startIn > 0) await sleep(startIn);
      return stack(key).execute(async ({ attempt }) => {
        const now = (running.get(key) ?? 0) + 1;
        running.set(key, now);
        most.set(key, Math.max(most.get(key) ?? 0, now));
        try {
          await sleep(duration);
          if (fails && attempt === 1) throw new Error(`call ${i} failed once`);
          return 'ok';
        } finally {
          running.set(key, (running.get(key) ?? 0) - 1);
        }
      });
    });
    const outcomes = await Promise.all(calls);

    for (const key of keys) expect(most.get(key) ?? 0).toBeLessThanOrEqual(maxPerKey);
    expect(Math.max(...most.values())).toBe(maxPerKey); // the race did fill a key
    const refused = outcomes.filter((outcome) => outcome !== 'ok');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((outcome) => typeof outcome === 'object' && outcome.refused instanceof InFlightLimitError)).toBe(true);
    expect(rejectedEvents).toHaveBeenCalledTimes(refused.length);
    expect([limits.size, limits.total, bulkhead.active]).toEqual([0, 0, 0]);
  });

  it("a caller's abort answers at once, but the place is held until the function really settles", async () => {
    const limits = new InFlightLimit({ maxPerKey: 1 });
    const { stack } = fullStack(limits, 'acme');
    const work = deferred<string>();
    const controller = new AbortController();
    const reason = new Error('the client went away');
    const call = stack('acme').execute(() => work.promise, { signal: controller.signal }); // ignores its signal
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(limits.inFlight('acme')).toBe(1);
    await expect(limits.execute('acme', () => 'second')).rejects.toBeInstanceOf(InFlightLimitError);

    work.resolve('late');
    await flush();
    expect(limits.size).toBe(0);
    await expect(limits.execute('acme', () => 'second')).resolves.toBe('second');
  });

  it('an enclosing timeout answers on time, but the place is held until the function really settles', async () => {
    const limits = new InFlightLimit({ maxPerKey: 1 });
    const stack = compose(withTimeout(20), limits.forKey('acme'));
    const work = deferred<string>();
    await expect(stack.execute(() => work.promise)).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(limits.inFlight('acme')).toBe(1);
    await expect(stack.execute(() => 'second')).rejects.toBeInstanceOf(InFlightLimitError);
    work.resolve('late');
    await flush();
    expect(limits.size).toBe(0);
    await expect(stack.execute(() => 'second')).resolves.toBe('second');
  });
});

// ── Events ────────────────────────────────────────────────────────────────────────────────

describe('InFlightLimit events', () => {
  it('on() returns the function that unsubscribes; a policy hears its own key only', async () => {
    const limits = new InFlightLimit({ maxPerKey: 1 });
    const all = vi.fn();
    const acmeOnly = vi.fn();
    const stop = limits.on('saturated', all);
    limits.forKey('acme').on('saturated', acmeOnly);
    await limits.execute('acme', () => 'a');
    await limits.execute('globex', () => 'g');
    expect(all.mock.calls.map((call) => (call[0] as InFlightLimitEvents['saturated']).key)).toEqual(['acme', 'globex']);
    expect(acmeOnly).toHaveBeenCalledTimes(1);
    stop();
    stop();
    await limits.execute('acme', () => 'a');
    expect(all).toHaveBeenCalledTimes(2);
    expect(() => limits.on('rejection' as never, all)).toThrow(new TypeError('Unknown event "rejection": expected one of "rejected", "saturated"'));
    expect(() => limits.on('rejected', 'not a function' as never)).toThrow(TypeError);
  });

  it('a listener that throws or rejects is reported and never breaks the call', async () => {
    const reported = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const limits = new InFlightLimit({ maxPerKey: 1 });
    limits.on('saturated', () => {
      throw new Error('listener bug');
    });
    limits.on('saturated', async () => {
      throw new Error('async listener bug');
    });
    await expect(limits.execute('acme', () => 'still answered')).resolves.toBe('still answered');
    await flush();
    expect(reported.mock.calls.map((call) => (call[1] as Error).message)).toEqual(['listener bug', 'async listener bug']);
  });
});

// ── Observability ─────────────────────────────────────────────────────────────────────────

/** A per-host limit, in one stack built once and tracked: 1 success, 1 failure, 2 held (the second saturates the key), 1 refused. */
async function trackedScenario() {
  const limits = new InFlightLimit({ maxPerKey: 2, name: 'hosts' });
  const inventory = compose(withTimeout(5_000, { name: 'inventory' }), limits.forKey('inventory.internal'));
  const registry = new MetricsRegistry();
  registry.track(inventory);
  await inventory.execute(() => 'ok');
  await inventory.execute(() => Promise.reject(new Error('down'))).catch(() => undefined);
  const gates = [deferred(), deferred()];
  const held = gates.map((gate) => inventory.execute(() => gate.promise));
  await inventory.execute(() => 'refused').catch(() => undefined);
  const release = async (): Promise<void> => {
    for (const gate of gates) gate.resolve();
    await Promise.all(held);
  };
  return { limits, inventory, registry, release };
}

describe('InFlightLimit observed', () => {
  it('MetricsRegistry counts its calls, successes, failures and rejections, reads its gauge and counts its counter', async () => {
    const { registry, release } = await trackedScenario();
    const snapshot = registry.snapshot();
    const mine = snapshot.policies.find((policy) => policy.kind === 'in-flight-limit');
    expect(mine).toMatchObject({ name: 'hosts:inventory.internal', calls: 5, successes: 1, failures: 1, rejections: 1, inFlight: 2, saturations: 1 });
    expect(snapshot.kinds?.['in-flight-limit']).toMatchObject({ refuses: true, counters: [{ field: 'saturations' }], gauges: [{ field: 'inFlight' }] });
    await release();
    expect(registry.snapshot().policies.find((policy) => policy.kind === 'in-flight-limit')).toMatchObject({ successes: 3, inFlight: 0 });
  });

  it('logPolicyEvents writes its refusal, then summarises the repeats', async () => {
    const { clock, advance, armed } = handClock();
    const { logger, lines } = recordingLogger();
    const limits = new InFlightLimit({ maxPerKey: 1, name: 'hosts' });
    const policy = limits.forKey('inventory.internal');
    const stop = logPolicyEvents(policy, logger, { summaryInterval: 1_000, clock });
    const work = deferred();
    const held = policy.execute(() => work.promise);
    for (let i = 0; i < 3; i++) await policy.execute(() => 'refused').catch(() => undefined);
    const fields = { policy: 'hosts:inventory.internal', kind: 'in-flight-limit', event: 'rejected' };
    expect(lines).toEqual([
      [
        'warn',
        { ...fields, key: 'inventory.internal', maxPerKey: 1, error: { name: 'InFlightLimitError', message: '1 call already in flight for key "inventory.internal"' } },
        'in-flight limit "hosts:inventory.internal" rejected a call: 1 call already in flight for key "inventory.internal"',
      ],
    ]);
    advance(1_000);
    expect(lines[1]).toEqual(['warn', { ...fields, repeated: 2, intervalMs: 1_000 }, 'in-flight limit "hosts:inventory.internal": 2 more rejections in the last 1000 ms']);
    stop();
    expect(armed()).toBe(0);
    work.resolve();
    await held;
    // Its other event is described too, off by default, and can be turned on like a built-in one.
    const saturations = recordingLogger();
    logPolicyEvents(policy, saturations.logger, { levels: { saturated: 'info', rejected: 'off' }, summaryInterval: 0 });
    await policy.execute(() => 'ok');
    expect(saturations.lines).toEqual([['info', { policy: 'hosts:inventory.internal', kind: 'in-flight-limit', event: 'saturated', key: 'inventory.internal', maxPerKey: 1 }, 'in-flight limit "hosts:inventory.internal": key "inventory.internal" took its last place of 1']]);
  });

  it('renderPrometheus exports its gauge and its counter with HELP and TYPE lines, and its rejections', async () => {
    const { registry, release } = await trackedScenario();
    const text = renderPrometheus(registry);
    const labels = '{policy="hosts:inventory.internal",kind="in-flight-limit"}';
    expect(text).toContain(
      '# HELP bulwark_in_flight_limit_active_calls Calls holding a place of the in-flight limit for its key now (until their work really settles).\n' +
        '# TYPE bulwark_in_flight_limit_active_calls gauge\n' +
        `bulwark_in_flight_limit_active_calls${labels} 2\n`,
    );
    expect(text).toContain(
      '# HELP bulwark_saturations_total Times a key of the in-flight limit took its last place, so its next calls were refused until one settled.\n' +
        '# TYPE bulwark_saturations_total counter\n' +
        `bulwark_saturations_total${labels} 1\n`,
    );
    expect(text).toContain(`bulwark_rejections_total${labels} 1\n`);
    // The timeout of the stack is not a kind that refuses: no rejections series for it, no saturations either.
    expect(text).not.toContain('bulwark_rejections_total{policy="inventory",kind="timeout"}');
    expect(text).not.toContain('bulwark_saturations_total{policy="inventory"');
    await release();
    expect(renderPrometheus(registry)).toContain(`bulwark_in_flight_limit_active_calls${labels} 0\n`);
  });

  it('registerOpenTelemetryMetrics exports them through a real MeterProvider, from the first collection on', async () => {
    class CollectingReader extends MetricReader {
      protected override onForceFlush(): Promise<void> {
        return Promise.resolve();
      }
      protected override onShutdown(): Promise<void> {
        return Promise.resolve();
      }
    }
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    const { registry, release } = await trackedScenario();
    const stop = registerOpenTelemetryMetrics(registry, provider.getMeter('in-flight-limit-test'));
    const collect = async (): Promise<Map<string, MetricData>> => {
      const { resourceMetrics, errors } = await reader.collect();
      expect(errors).toEqual([]);
      return new Map(resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => [metric.descriptor.name, metric] as const)));
    };
    const valueOf = (metric: MetricData | undefined): number | undefined => {
      if (metric === undefined || (metric.dataPointType !== DataPointType.SUM && metric.dataPointType !== DataPointType.GAUGE)) return undefined;
      return metric.dataPoints.find((point) => point.attributes['bulwark.policy.kind'] === 'in-flight-limit')?.value;
    };

    const first = await collect();
    expect(valueOf(first.get('bulwark.rejections'))).toBe(1);
    expect(valueOf(first.get('bulwark.calls'))).toBe(5);
    // The kind was tracked before the registration: its own instruments report from the first collection.
    const second = first;
    const gauge = second.get('bulwark.in_flight_limit.call.active');
    expect(gauge?.descriptor).toMatchObject({ unit: '{call}', description: 'Calls holding a place of the in-flight limit for its key now (until their work really settles).' });
    expect(valueOf(gauge)).toBe(2);
    expect(second.get('bulwark.saturations')?.descriptor.unit).toBe('{saturation}');
    expect(valueOf(second.get('bulwark.saturations'))).toBe(1);
    expect(gauge?.dataPoints.map((point) => point.attributes)).toEqual([{ 'bulwark.policy.name': 'hosts:inventory.internal', 'bulwark.policy.kind': 'in-flight-limit' }]);

    await release();
    expect(valueOf((await collect()).get('bulwark.in_flight_limit.call.active'))).toBe(0);
    stop();
    await provider.shutdown();
  });
});
