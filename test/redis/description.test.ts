/**
 * What the three shared policies tell observability (src/redis/description.ts): the counters and
 * gauges a MetricsRegistry snapshots, renderPrometheus prints and OpenTelemetry reports (names,
 * units, descriptions), and the lines logPolicyEvents writes (level, fields, message) — with Redis
 * up, down and back. Redis is a real server; "down" is a client whose every call fails at once.
 */
import { AggregationTemporality, DataPointType, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { BulkheadRejectedError, MetricsRegistry, RateLimitedError, logPolicyEvents, type PolicyLogger } from '../../src/index.js';
import { registerOpenTelemetryMetrics } from '../../src/otel/index.js';
import { renderPrometheus } from '../../src/prometheus/index.js';
import { RedisBulkhead, RedisCircuitBreaker, RedisRateLimiter } from '../../src/redis/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { settle, useRedisServer } from './clients.js';

const { client } = useRedisServer();
let unique = 0;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => Promise<boolean> | boolean, ms = 2_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(5);
  }
}

type Script = (...args: unknown[]) => Promise<unknown>;

/** An ioredis client of the test's server that can be made to fail every call at once, as a lost connection does. */
async function switchable() {
  const real = await client('ioredis');
  const io = real.client as unknown as { evalsha: Script; eval: Script };
  const state = { down: false };
  const lost = () => Promise.reject(new Error('connection lost'));
  const wrapped = {
    evalsha: (...args: unknown[]) => (state.down ? lost() : io.evalsha(...args)),
    eval: (...args: unknown[]) => (state.down ? lost() : io.eval(...args)),
  };
  return { client: wrapped, real, state };
}

type Line = [level: string, fields: Record<string, unknown>, message: string];

/** A logger that keeps its lines; summaries are timed by a clock the test moves. */
function logged(policy: Parameters<typeof logPolicyEvents>[0]) {
  const lines: Line[] = [];
  const logger: PolicyLogger = {
    info: (fields: Record<string, unknown>, message: string) => void lines.push(['info', fields, message]),
    warn: (fields: Record<string, unknown>, message: string) => void lines.push(['warn', fields, message]),
    error: (fields: Record<string, unknown>, message: string) => void lines.push(['error', fields, message]),
  };
  const clock = new CountingClock();
  const stop = logPolicyEvents(policy, logger, { summaryInterval: 1_000, clock });
  return { lines, clock, stop };
}

/** A reader the test drives: `collect()` reads every instrument at once, like a scrape. */
class CollectingReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const providers: MeterProvider[] = [];
afterEach(async () => {
  await Promise.all(providers.splice(0).map((provider) => provider.shutdown()));
});

/** The OpenTelemetry instruments a registry reports: for each, its type, unit, description and this policy's value. */
async function otelOf(registry: MetricsRegistry, names: readonly string[]) {
  const reader = new CollectingReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  const provider = new MeterProvider({ readers: [reader] });
  providers.push(provider);
  const stop = registerOpenTelemetryMetrics(registry, provider.getMeter('bulwark-test'));
  const { resourceMetrics } = await reader.collect();
  stop();
  const metrics = new Map<string, MetricData>();
  for (const scope of resourceMetrics.scopeMetrics) for (const metric of scope.metrics) metrics.set(metric.descriptor.name, metric);
  return names.map((name) => {
    const metric = metrics.get(name);
    if (metric === undefined) return { name, missing: true };
    const { unit, description } = metric.descriptor;
    const points = (metric.dataPoints as { value: unknown; attributes: Record<string, unknown> }[]).map((point) => ({ value: point.value, attributes: point.attributes }));
    const type = metric.dataPointType === DataPointType.GAUGE ? 'gauge' : metric.dataPointType === DataPointType.SUM ? (metric.isMonotonic ? 'counter' : 'up-down') : 'other';
    return { name, type, unit, description, points };
  });
}

const STORE_FAILURES_HELP = 'Calls to Redis of a shared policy that failed or timed out.';
const STORE_UP_HELP = 'Whether Redis answers the shared policy (1) or local state stands in (0).';

describe('a shared bulkhead observed', () => {
  it('its log lines: a rejection (warn, reason and error), a summary of more, Redis down (error, the failure), Redis back (info)', async () => {
    const { client: c, real, state } = await switchable();
    const name = `logged-bulkhead-${unique++}`;
    const b = new RedisBulkhead(c, { name, maxConcurrent: 1, timeout: 2_000, probeInterval: 0 });
    const { lines, clock, stop } = logged(b);
    let end!: () => void;
    const running = b.execute(() => new Promise<string>((resolve) => (end = () => resolve('ran'))));
    await eventually(() => b.active === 1);
    const refused = await settle(b.execute(() => 'no'));
    expect(await settle(b.execute(() => 'no'))).toMatchObject({ error: expect.any(BulkheadRejectedError) });
    const error = (refused as { error: BulkheadRejectedError }).error;
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    await clock.advance(1_000);
    end();
    expect(await running).toBe('ran');
    await eventually(async () => Number(await real.command('ZCARD', b.key)) === 0);
    // Two outages within one summary interval: each down and each return is a line of its own.
    for (let outage = 0; outage < 2; outage++) {
      state.down = true;
      expect(await b.execute(() => 'ran locally')).toBe('ran locally');
      state.down = false;
      expect(await b.execute(() => 'ran shared')).toBe('ran shared');
    }
    const label = `shared bulkhead ${JSON.stringify(name)}`;
    const base = { policy: name, kind: 'shared-bulkhead' };
    const failure = 'RedisBulkhead: Redis failed: connection lost';
    expect(lines).toEqual([
      ['warn', { ...base, event: 'rejected', reason: 'full', error: { name: 'BulkheadRejectedError', message: error.message } }, `${label} rejected a call: ${error.message}`],
      ['warn', { ...base, event: 'rejected', repeated: 1, intervalMs: 1_000 }, `${label}: 1 more rejections in the last 1000 ms`],
      ...Array.from({ length: 2 }, () => [
        ['error', { ...base, event: 'storeDown', error: { name: 'RedisStoreError', message: failure } }, `${label}: Redis is down, slots are local: ${failure}`],
        ['info', { ...base, event: 'storeUp' }, `${label}: Redis is back, the cap is shared again`],
      ]).flat(),
    ]);
    stop();
  });

  it('its counters and gauges in a snapshot, in Prometheus and in OpenTelemetry: slots held and waiting, rejections, store failures, store up', async () => {
    const { client: c, state } = await switchable();
    const name = `metered-bulkhead-${unique++}`;
    const b = new RedisBulkhead(c, { name, maxConcurrent: 1, maxQueue: 1, timeout: 2_000, probeInterval: 60_000 });
    const registry = new MetricsRegistry();
    registry.track(b);
    let end!: () => void;
    const running = b.execute(() => new Promise<string>((resolve) => (end = () => resolve('ran'))));
    await eventually(() => b.active === 1);
    const waiting = b.execute(() => 'waited');
    await eventually(() => b.queued === 1);
    expect(await settle(b.execute(() => 'no'))).toMatchObject({ error: { reason: 'full' } });
    const labels = `policy="${name}",kind="shared-bulkhead"`;
    let text = renderPrometheus(registry);
    expect(text).toContain(`# HELP bulwark_rejections_total `);
    expect(text).toContain(`bulwark_rejections_total{${labels}} 1\n`);
    expect(text).toContain(`# HELP bulwark_redis_store_failures_total ${STORE_FAILURES_HELP}\n# TYPE bulwark_redis_store_failures_total counter\nbulwark_redis_store_failures_total{${labels}} 0\n`);
    expect(text).toContain(`# HELP bulwark_bulkhead_active_calls Calls running in the bulkhead now.\n# TYPE bulwark_bulkhead_active_calls gauge\nbulwark_bulkhead_active_calls{${labels}} 1\n`);
    expect(text).toContain(`# HELP bulwark_bulkhead_queued_calls Calls waiting in the bulkhead queue now.\n# TYPE bulwark_bulkhead_queued_calls gauge\nbulwark_bulkhead_queued_calls{${labels}} 1\n`);
    expect(text).toContain(`# HELP bulwark_redis_store_up ${STORE_UP_HELP}\n# TYPE bulwark_redis_store_up gauge\nbulwark_redis_store_up{${labels}} 1\n`);
    const attributes = { 'bulwark.policy.name': name, 'bulwark.policy.kind': 'shared-bulkhead' };
    expect(await otelOf(registry, ['bulwark.redis_store_failures', 'bulwark.bulkhead.call.active', 'bulwark.bulkhead.call.queued', 'bulwark.redis_store.up'])).toEqual([
      { name: 'bulwark.redis_store_failures', type: 'counter', unit: '{failure}', description: STORE_FAILURES_HELP, points: [{ value: 0, attributes }] },
      { name: 'bulwark.bulkhead.call.active', type: 'up-down', unit: '{call}', description: 'Calls running in the bulkhead now.', points: [{ value: 1, attributes }] },
      { name: 'bulwark.bulkhead.call.queued', type: 'up-down', unit: '{call}', description: 'Calls waiting in the bulkhead queue now.', points: [{ value: 1, attributes }] },
      { name: 'bulwark.redis_store.up', type: 'gauge', unit: '1', description: STORE_UP_HELP, points: [{ value: 1, attributes }] },
    ]);
    end();
    expect(await running).toBe('ran');
    expect(await waiting).toBe('waited');
    state.down = true;
    expect(await b.execute(() => 'ran locally')).toBe('ran locally');
    expect(registry.snapshot().policies.find((policy) => policy.name === name)).toMatchObject({ kind: 'shared-bulkhead', rejections: 1, redisStoreFailures: 1, active: 0, queued: 0, redisStoreUp: 0 });
    text = renderPrometheus(registry);
    expect(text).toContain(`bulwark_redis_store_failures_total{${labels}} 1\n`);
    expect(text).toContain(`bulwark_redis_store_up{${labels}} 0\n`);
  });
});

describe('a shared rate limiter observed', () => {
  it('its log lines: a rejection (warn, retryAfter and error), a summary of more, Redis down (error, the failure), Redis back (info)', async () => {
    const { client: c, state } = await switchable();
    const name = `logged-limiter-${unique++}`;
    const l = new RedisRateLimiter(c, { name, rate: 1, interval: 60_000, timeout: 2_000, probeInterval: 0 });
    const { lines, clock, stop } = logged(l);
    expect(await l.execute(() => 'ran')).toBe('ran');
    const refused = await settle(l.execute(() => 'no'));
    expect(await settle(l.execute(() => 'no'))).toMatchObject({ error: expect.any(RateLimitedError) });
    const error = (refused as { error: RateLimitedError }).error;
    expect(error).toBeInstanceOf(RateLimitedError);
    await clock.advance(1_000);
    // Two outages within one summary interval: each down and each return is a line of its own.
    for (let outage = 0; outage < 2; outage++) {
      state.down = true;
      await settle(l.execute(() => 'ran locally'));
      expect(l.storeUp).toBe(false);
      state.down = false;
      await eventually(async () => {
        await settle(l.execute(() => 'ran'));
        return l.storeUp;
      });
    }
    const label = `shared rate limiter ${JSON.stringify(name)}`;
    const base = { policy: name, kind: 'shared-rate-limiter' };
    const failure = 'RedisRateLimiter: Redis failed: connection lost';
    expect(lines.slice(0, 2)).toEqual([
      ['warn', { ...base, event: 'rejected', retryAfter: error.retryAfter, error: { name: 'RateLimitedError', message: error.message } }, `${label} rejected a call: ${error.message}`],
      ['warn', { ...base, event: 'rejected', repeated: 1, intervalMs: 1_000 }, `${label}: 1 more rejections in the last 1000 ms`],
    ]);
    const store = lines.filter(([, fields]) => fields.event !== 'rejected');
    expect(store).toEqual(
      Array.from({ length: 2 }, () => [
        ['error', { ...base, event: 'storeDown', error: { name: 'RedisStoreError', message: failure } }, `${label}: Redis is down, deciding locally: ${failure}`],
        ['info', { ...base, event: 'storeUp' }, `${label}: Redis is back, the limit is shared again`],
      ]).flat(),
    );
    stop();
  });

  it('its counters and gauge in a snapshot, in Prometheus and in OpenTelemetry: delays, store failures, store up', async () => {
    const { client: c, state } = await switchable();
    const name = `metered-limiter-${unique++}`;
    // One permit per 100 ms: the second call waits for its reserved permit (a delay).
    const l = new RedisRateLimiter(c, { name, rate: 1, interval: 100, maxWait: 1_000, timeout: 2_000, probeInterval: 60_000 });
    const registry = new MetricsRegistry();
    registry.track(l);
    expect(await Promise.all([l.execute(() => 'first'), l.execute(() => 'second')])).toEqual(['first', 'second']);
    state.down = true;
    await settle(l.execute(() => 'ran locally'));
    expect(registry.snapshot().policies.find((policy) => policy.name === name)).toMatchObject({ kind: 'shared-rate-limiter', sharedRateLimitDelays: 1, redisStoreFailures: 1, redisStoreUp: 0 });
    const labels = `policy="${name}",kind="shared-rate-limiter"`;
    const text = renderPrometheus(registry);
    expect(text).toContain(`# HELP bulwark_redis_store_failures_total ${STORE_FAILURES_HELP}\n# TYPE bulwark_redis_store_failures_total counter\nbulwark_redis_store_failures_total{${labels}} 1\n`);
    expect(text).toContain(
      `# HELP bulwark_shared_rate_limit_delays_total Calls the shared rate limiter made wait for a reserved permit.\n# TYPE bulwark_shared_rate_limit_delays_total counter\nbulwark_shared_rate_limit_delays_total{${labels}} 1\n`,
    );
    expect(text).toContain(`# HELP bulwark_redis_store_up ${STORE_UP_HELP}\n# TYPE bulwark_redis_store_up gauge\nbulwark_redis_store_up{${labels}} 0\n`);
    const attributes = { 'bulwark.policy.name': name, 'bulwark.policy.kind': 'shared-rate-limiter' };
    expect(await otelOf(registry, ['bulwark.redis_store_failures', 'bulwark.shared_rate_limit_delays', 'bulwark.redis_store.up'])).toEqual([
      { name: 'bulwark.redis_store_failures', type: 'counter', unit: '{failure}', description: STORE_FAILURES_HELP, points: [{ value: 1, attributes }] },
      { name: 'bulwark.shared_rate_limit_delays', type: 'counter', unit: '{delay}', description: 'Calls the shared rate limiter made wait for a reserved permit.', points: [{ value: 1, attributes }] },
      { name: 'bulwark.redis_store.up', type: 'gauge', unit: '1', description: STORE_UP_HELP, points: [{ value: 0, attributes }] },
    ]);
  });
});

describe('a shared circuit breaker observed', () => {
  it('a circuit breaker to every exporter, plus the store: its state and rates, store failures, store up; its lines say "shared circuit breaker"', async () => {
    const { client: c, state } = await switchable();
    const name = `observed-breaker-${unique++}`;
    const breaker = new RedisCircuitBreaker(c, { name, failureThreshold: 1, timeout: 2_000, probeInterval: 20 });
    const registry = new MetricsRegistry();
    registry.track(breaker);
    const { lines, stop } = logged(breaker);
    expect(await settle(breaker.execute(() => Promise.reject(new Error('boom'))))).toMatchObject({ error: { message: 'boom' } });
    await eventually(() => breaker.state === 'open');
    const rejected = await settle(breaker.execute(() => 'no'));
    expect(rejected).toMatchObject({ error: { name: 'CircuitOpenError' } });
    const { failureRate, slowCallRate } = breaker.stats();
    expect(registry.snapshot().policies.find((policy) => policy.name === name)).toMatchObject({ kind: 'circuit-breaker', state: 'open', failureRate, slowCallRate, redisStoreUp: 1, redisStoreFailures: 0, rejections: 1 });
    const labels = `policy="${name}",kind="circuit-breaker"`;
    let text = renderPrometheus(registry);
    expect(text).toContain(`bulwark_circuit_state{${labels},state="open"} 1\n`);
    expect(text).toContain(`bulwark_rejections_total{${labels}} 1\n`);
    expect(text).toContain(`# HELP bulwark_redis_store_failures_total ${STORE_FAILURES_HELP}\n# TYPE bulwark_redis_store_failures_total counter\nbulwark_redis_store_failures_total{${labels}} 0\n`);
    expect(text).toContain(`# HELP bulwark_redis_store_up ${STORE_UP_HELP}\n# TYPE bulwark_redis_store_up gauge\nbulwark_redis_store_up{${labels}} 1\n`);
    const attributes = { 'bulwark.policy.name': name, 'bulwark.policy.kind': 'circuit-breaker' };
    expect(await otelOf(registry, ['bulwark.redis_store_failures', 'bulwark.redis_store.up'])).toEqual([
      { name: 'bulwark.redis_store_failures', type: 'counter', unit: '{failure}', description: STORE_FAILURES_HELP, points: [{ value: 0, attributes }] },
      { name: 'bulwark.redis_store.up', type: 'gauge', unit: '1', description: STORE_UP_HELP, points: [{ value: 1, attributes }] },
    ]);
    // Two outages within one summary interval: each down and each return is a line of its own.
    for (let outage = 0; outage < 2; outage++) {
      state.down = true;
      await eventually(async () => {
        await settle(breaker.execute(() => 'ran'));
        return !breaker.storeUp;
      });
      if (outage === 0) {
        expect(registry.snapshot().policies.find((policy) => policy.name === name)).toMatchObject({ redisStoreUp: 0 });
        text = renderPrometheus(registry);
        expect(text).toMatch(new RegExp(`bulwark_redis_store_failures_total\\{${labels}\\} [1-9]\\d*\\n`));
        expect(text).toContain(`bulwark_redis_store_up{${labels}} 0\n`);
      }
      state.down = false;
      await eventually(() => breaker.storeUp);
    }
    const label = `shared circuit breaker ${JSON.stringify(name)}`;
    const base = { policy: name, kind: 'circuit-breaker' };
    const failure = 'RedisCircuitBreaker: Redis failed: connection lost';
    expect(lines.find(([, fields]) => fields.event === 'stateChange')).toEqual(['warn', expect.objectContaining({ ...base, event: 'stateChange', from: 'closed', to: 'open' }), expect.stringMatching(new RegExp(`^${label} opened`))]);
    expect(lines.find(([, fields]) => fields.event === 'rejected')?.[2]).toMatch(new RegExp(`^${label} rejected a call: `));
    expect(lines.filter(([, fields]) => fields.event === 'storeDown' || fields.event === 'storeUp')).toEqual(
      Array.from({ length: 2 }, () => [
        ['error', { ...base, event: 'storeDown', error: { name: 'RedisStoreError', message: failure } }, `${label}: Redis is down, deciding with local state: ${failure}`],
        ['info', { ...base, event: 'storeUp' }, `${label}: Redis is back, the breaker is shared again`],
      ]).flat(),
    );
    stop();
  });
});
