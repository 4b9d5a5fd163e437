import { describe, expect, it } from 'vitest';
import { MetricsRegistry, RateLimiter, RateLimiterGroup, logPolicyEvents, type LogLevel, type PolicyLogger } from '../../src/index.js';
import { registerOpenTelemetryMetrics, type OtelMeter } from '../../src/otel/index.js';
import { renderPrometheus } from '../../src/prometheus/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { track } from '../fixtures/promises.js';

function recordingLogger() {
  const lines: [LogLevel, ...unknown[]][] = [];
  const logger = {
    info: (...args: unknown[]) => void lines.push(['info', ...args]),
    warn: (...args: unknown[]) => void lines.push(['warn', ...args]),
    error: (...args: unknown[]) => void lines.push(['error', ...args]),
  } satisfies PolicyLogger;
  return { logger, lines };
}

/** 2 calls let in, 1 waiting (a delay), 1 refused: a bucket of 2 at 10 per second, 150 ms of patience. */
function scenario() {
  const clock = new CountingClock({ start: 0 });
  const limiter = new RateLimiter({ rate: 10, interval: 1_000, burst: 2, maxWait: 150, clock, name: 'partner' });
  const registry = new MetricsRegistry();
  registry.track(limiter);
  const calls = [1, 2, 3, 4].map((id) => track(limiter.execute(() => id)));
  return { clock, limiter, registry, calls };
}

describe('RateLimiter observed', () => {
  it('MetricsRegistry counts its calls and rejections, its delays, and reads its gauges', async () => {
    const { clock, registry, calls } = scenario();
    const mine = () => registry.snapshot().policies.find((policy) => policy.kind === 'rate-limiter');
    expect(mine()).toMatchObject({ name: 'partner', calls: 4, rejections: 1, rateLimitDelays: 1, permits: 0, queued: 1 });
    expect(registry.snapshot().kinds?.['rate-limiter']).toMatchObject({
      refuses: true,
      counters: [{ field: 'rateLimitDelays', event: 'delayed' }],
      gauges: [{ field: 'permits' }, { field: 'queued' }],
    });
    await clock.advance(100);
    expect(calls.map((c) => c.state)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect(mine()).toMatchObject({ successes: 3, rejections: 1, permits: 0, queued: 0 });
    await clock.advance(1_000);
    expect(mine()).toMatchObject({ permits: 2 });
  });

  it('renderPrometheus writes its gauges, its counter and its rejections', async () => {
    const { clock, registry } = scenario();
    const text = renderPrometheus(registry);
    const labels = '{policy="partner",kind="rate-limiter"}';
    expect(text).toContain(
      '# HELP bulwark_rate_limiter_available_permits Permits of the rate limiter a burst of calls arriving now could take at once (0 while calls wait).\n' +
        '# TYPE bulwark_rate_limiter_available_permits gauge\n' +
        `bulwark_rate_limiter_available_permits${labels} 0\n`,
    );
    expect(text).toContain(
      '# HELP bulwark_rate_limiter_queued_calls Calls waiting for a permit of the rate limiter now.\n' +
        '# TYPE bulwark_rate_limiter_queued_calls gauge\n' +
        `bulwark_rate_limiter_queued_calls${labels} 1\n`,
    );
    expect(text).toContain(
      '# HELP bulwark_rate_limit_delays_total Calls the rate limiter made wait for their permit (a wait later aborted included).\n' +
        '# TYPE bulwark_rate_limit_delays_total counter\n' +
        `bulwark_rate_limit_delays_total${labels} 1\n`,
    );
    expect(text).toContain(`bulwark_rejections_total${labels} 1\n`);
    await clock.advance(100);
  });

  it('logPolicyEvents writes its refusals (and its delays once turned on)', async () => {
    const clock = new CountingClock({ start: 0 });
    const limiter = new RateLimiter({ rate: 1, interval: 1_000, maxWait: 1_000, clock, name: 'partner' });
    const { logger, lines } = recordingLogger();
    const stop = logPolicyEvents(limiter, logger, { summaryInterval: 0, levels: { delayed: 'info' } });
    void limiter.execute(() => 1);
    const waiting = track(limiter.execute(() => 2));
    const refused = track(limiter.execute(() => 3));
    await clock.advance(0);
    const fields = { policy: 'partner', kind: 'rate-limiter' };
    expect(lines).toEqual([
      ['info', { ...fields, event: 'delayed', wait: 1_000, queued: 1 }, 'rate limiter "partner" made a call wait 1000 ms for its permit'],
      [
        'warn',
        {
          ...fields,
          event: 'rejected',
          reason: 'limit',
          retryAfter: 2_000,
          error: { name: 'RateLimitedError', message: 'Rate limit of 1 per 1000 ms reached: the next permit is 2000 ms away' },
        },
        'rate limiter "partner" rejected a call: Rate limit of 1 per 1000 ms reached: the next permit is 2000 ms away',
      ],
    ]);
    expect(refused.state).toBe('rejected');
    stop();
    await clock.advance(1_000);
    expect(waiting.value).toBe(2);
  });

  it('logPolicyEvents writes the delayed line once per summary window, and counts the other delays in its summary', async () => {
    const clock = new CountingClock({ start: 0 });
    const limiter = new RateLimiter({ rate: 1, interval: 1_000, maxWait: 5_000, clock, name: 'partner' });
    const { logger, lines } = recordingLogger();
    const stop = logPolicyEvents(limiter, logger, { summaryInterval: 1_000, clock, levels: { delayed: 'info' } });
    const calls = [1, 2, 3].map((id) => track(limiter.execute(() => id)));
    await clock.advance(0);
    const fields = { policy: 'partner', kind: 'rate-limiter' };
    expect(lines).toEqual([['info', { ...fields, event: 'delayed', wait: 1_000, queued: 1 }, 'rate limiter "partner" made a call wait 1000 ms for its permit']]);
    await clock.advance(1_000);
    expect(lines.slice(1)).toEqual([['info', { ...fields, event: 'delayed', repeated: 1, intervalMs: 1_000 }, 'rate limiter "partner": 1 more delays in the last 1000 ms']]);
    stop();
    await clock.advance(1_000);
    expect(calls.map((c) => c.value)).toEqual([1, 2, 3]);
  });

  it('logPolicyEvents writes the rejected line once per summary window, and counts the other refusals in its summary', async () => {
    const clock = new CountingClock({ start: 0 });
    const limiter = new RateLimiter({ rate: 1, interval: 1_000, clock, name: 'partner' });
    const { logger, lines } = recordingLogger();
    const stop = logPolicyEvents(limiter, logger, { summaryInterval: 1_000, clock });
    const calls = [1, 2, 3].map((id) => track(limiter.execute(() => id)));
    await clock.advance(0);
    expect(calls.map((c) => c.state)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect(lines.map(([level, , message]) => [level, message])).toEqual([['warn', 'rate limiter "partner" rejected a call: Rate limit of 1 per 1000 ms reached: the next permit is 1000 ms away']]);
    await clock.advance(1_000);
    expect(lines.slice(1)).toEqual([['warn', { policy: 'partner', kind: 'rate-limiter', event: 'rejected', repeated: 1, intervalMs: 1_000 }, 'rate limiter "partner": 1 more rejections in the last 1000 ms']]);
    stop();
  });

  it('registerOpenTelemetryMetrics reports its permits and waiting calls as bulwark.rate_limiter.permit.available and bulwark.rate_limiter.call.queued', async () => {
    const { clock, registry } = scenario();
    const instruments = new Map<unknown, string>();
    const units = new Map<string, unknown>();
    const observed: [name: string | undefined, value: number, attributes: unknown][] = [];
    const instrument = (name: string, options?: { unit?: string }) => {
      const made = { addCallback() {}, removeCallback() {} };
      instruments.set(made, name);
      units.set(name, options?.unit);
      return made;
    };
    const callbacks: ((result: { observe(observable: unknown, value: number, attributes?: unknown): void }) => void)[] = [];
    const meter = {
      createHistogram: () => ({ record() {} }),
      createObservableCounter: instrument,
      createObservableUpDownCounter: instrument,
      createObservableGauge: instrument,
      addBatchObservableCallback: (callback: (typeof callbacks)[number]) => void callbacks.push(callback),
      removeBatchObservableCallback() {},
    } as unknown as OtelMeter;
    registerOpenTelemetryMetrics(registry, meter);
    for (const callback of callbacks) callback({ observe: (observable, value, attributes) => void observed.push([instruments.get(observable), value, attributes]) });
    const attributes = { 'bulwark.policy.name': 'partner', 'bulwark.policy.kind': 'rate-limiter' };
    const gauges = observed.filter(([name]) => name?.startsWith('bulwark.rate_limiter.'));
    expect(gauges).toEqual([
      ['bulwark.rate_limiter.permit.available', 0, attributes],
      ['bulwark.rate_limiter.call.queued', 1, attributes],
    ]);
    expect([...units].filter(([name]) => name.startsWith('bulwark.rate_limit'))).toEqual([
      ['bulwark.rate_limit_delays', '{delay}'],
      ['bulwark.rate_limiter.permit.available', '{permit}'],
      ['bulwark.rate_limiter.call.queued', '{call}'],
    ]);
    await clock.advance(100);
  });

  it('each limiter of a group is tracked under <group>:<key>', async () => {
    const limiters = new RateLimiterGroup({ rate: 1, name: 'clients' });
    const registry = new MetricsRegistry();
    registry.track(limiters.get('acme'));
    await limiters.execute('acme', () => 1);
    await limiters.execute('acme', () => 2).catch(() => undefined);
    expect(registry.snapshot().policies).toMatchObject([{ name: 'clients:acme', kind: 'rate-limiter', calls: 2, rejections: 1, permits: 0 }]);
  });
});
