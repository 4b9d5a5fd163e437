import { ValueType, type Meter } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram as HistogramValue,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  MetricsRegistry,
  compose,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type CallSample,
  type MetricsSnapshot,
  type PolicyKind,
  type PolicyMetricsSnapshot,
} from '../../src/index.js';
import { registerOpenTelemetryMetrics, type OpenTelemetryMetricsOptions, type OtelMeter } from '../../src/otel/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { deferred, flush } from '../fixtures/promises.js';
import { policySnapshot } from '../fixtures/snapshots.js';

// The structural Meter accepts the real one as it is: this line fails to compile otherwise.
function acceptsTheRealMeter(meter: Meter): OtelMeter {
  return meter;
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

function sdk(temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE) {
  const reader = new CollectingReader({ aggregationTemporalitySelector: () => temporality });
  const provider = new MeterProvider({ readers: [reader] });
  providers.push(provider);
  const meter = acceptsTheRealMeter(provider.getMeter('bulwark-test'));
  const collect = async (): Promise<{ metrics: Map<string, MetricData>; errors: unknown[] }> => {
    const { resourceMetrics, errors } = await reader.collect();
    const metrics = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics) for (const metric of scope.metrics) metrics.set(metric.descriptor.name, metric);
    return { metrics, errors };
  };
  return { meter, collect };
}

function handMadeSnapshot(): MetricsSnapshot {
  return {
    timestamp: 1_700_000_000_000,
    policies: [
      policySnapshot('payments', 'fallback', { calls: 9, successes: 8, failures: 1, fallbacks: 3 }),
      policySnapshot('payments', 'circuit-breaker', { calls: 9, successes: 5, failures: 2, rejections: 2, state: 'half-open', failureRate: 0.25, slowCallRate: 0.125 }),
      policySnapshot('payments', 'retry', { calls: 7, successes: 5, failures: 2, retries: 4 }),
      policySnapshot('payments', 'timeout', { calls: 11, successes: 8, failures: 3, timeouts: 2 }),
      policySnapshot('search "eu"', 'bulkhead', { calls: 5, successes: 3, rejections: 1, active: 2, queued: 1 }),
    ],
  };
}

/** A source the test controls: a fixed snapshot, and onCall samples sent by hand. */
function handSource(snapshot: MetricsSnapshot = handMadeSnapshot(), buckets?: readonly number[]) {
  const listeners = new Set<(sample: CallSample) => void>();
  const source = {
    snapshot: () => snapshot,
    onCall(listener: (sample: CallSample) => void): () => void {
      const entry = (sample: CallSample): void => listener(sample);
      listeners.add(entry);
      return () => void listeners.delete(entry);
    },
    ...(buckets === undefined ? {} : { buckets }),
  };
  const emit = (sample: CallSample): void => {
    for (const listener of listeners) listener(sample);
  };
  return { source, listeners, emit };
}

type NumberPoint = DataPoint<number>;

function points(metric: MetricData | undefined): NumberPoint[] {
  if (metric === undefined || (metric.dataPointType !== DataPointType.SUM && metric.dataPointType !== DataPointType.GAUGE)) return [];
  return metric.dataPoints;
}

function histogramPoints(metric: MetricData | undefined): DataPoint<HistogramValue>[] {
  if (metric === undefined || metric.dataPointType !== DataPointType.HISTOGRAM) return [];
  return metric.dataPoints;
}

/** The value at exactly these attributes, or undefined when there is no such point. */
function valueAt(metric: MetricData | undefined, attributes: Record<string, string>): number | undefined {
  const found = points(metric).filter((point) => JSON.stringify(Object.entries(point.attributes).sort()) === JSON.stringify(Object.entries(attributes).sort()));
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

const COUNTERS: readonly [name: string, unit: string, field: keyof PolicyMetricsSnapshot, kinds: readonly PolicyKind[] | 'all'][] = [
  ['bulwark.calls', '{call}', 'calls', 'all'],
  ['bulwark.successes', '{success}', 'successes', 'all'],
  ['bulwark.failures', '{failure}', 'failures', 'all'],
  ['bulwark.rejections', '{rejection}', 'rejections', ['circuit-breaker', 'bulkhead']],
  ['bulwark.timeouts', '{timeout}', 'timeouts', ['timeout']],
  ['bulwark.retries', '{retry}', 'retries', ['retry']],
  ['bulwark.fallbacks', '{fallback}', 'fallbacks', ['fallback']],
];

/** Every observable instrument against the snapshot: each expected point present with its value, nothing extra. */
function expectMatchesSnapshot(metrics: Map<string, MetricData>, snapshot: MetricsSnapshot): void {
  const expected = new Map<string, { attributes: Record<string, string>; value: number }[]>();
  const add = (name: string, attributes: Record<string, string>, value: number): void => {
    expected.set(name, [...(expected.get(name) ?? []), { attributes, value }]);
  };
  for (const policy of snapshot.policies) {
    const attributes = { 'bulwark.policy.name': policy.name, 'bulwark.policy.kind': policy.kind };
    for (const [name, , field, kinds] of COUNTERS) {
      if (kinds === 'all' || kinds.includes(policy.kind)) add(name, attributes, policy[field] as number);
    }
    if (policy.state !== undefined) {
      for (const state of ['closed', 'open', 'half-open', 'isolated']) add('bulwark.circuit.status', { ...attributes, 'bulwark.circuit.state': state }, state === policy.state ? 1 : 0);
    }
    if (policy.failureRate !== undefined) add('bulwark.circuit.failure_ratio', attributes, policy.failureRate);
    if (policy.slowCallRate !== undefined) add('bulwark.circuit.slow_call_ratio', attributes, policy.slowCallRate);
    if (policy.active !== undefined) add('bulwark.bulkhead.call.active', attributes, policy.active);
    if (policy.queued !== undefined) add('bulwark.bulkhead.call.queued', attributes, policy.queued);
  }
  const sortPoints = (list: { attributes: Record<string, string | number | boolean | unknown>; value: number }[]) =>
    list.map(({ attributes, value }) => ({ attributes: { ...attributes }, value })).sort((a, b) => (JSON.stringify(a.attributes) < JSON.stringify(b.attributes) ? -1 : 1));
  for (const [name, list] of expected) {
    expect(sortPoints(points(metrics.get(name)).map(({ attributes, value }) => ({ attributes, value }))), name).toEqual(sortPoints(list));
  }
  // Instruments with no expected point report none.
  for (const [name, metric] of metrics) {
    if (!expected.has(name) && name !== 'bulwark.call.duration') expect(points(metric), name).toEqual([]);
  }
}

describe('registerOpenTelemetryMetrics', () => {
  it('creates each instrument with its semantic-convention name, unit, description and type', async () => {
    const { meter, collect } = sdk();
    const { source, emit } = handSource();
    registerOpenTelemetryMetrics(source, meter);
    emit({ policy: 'payments', kind: 'timeout', durationMs: 12, outcome: 'success' });
    const { metrics } = await collect();
    const described = [...metrics.values()]
      .map((metric) => ({
        name: metric.descriptor.name,
        unit: metric.descriptor.unit,
        type: DataPointType[metric.dataPointType],
        monotonic: metric.dataPointType === DataPointType.SUM ? metric.isMonotonic : undefined,
        valueType: ValueType[metric.descriptor.valueType],
      }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(described).toEqual([
      { name: 'bulwark.bulkhead.call.active', unit: '{call}', type: 'SUM', monotonic: false, valueType: 'INT' },
      { name: 'bulwark.bulkhead.call.queued', unit: '{call}', type: 'SUM', monotonic: false, valueType: 'INT' },
      { name: 'bulwark.call.duration', unit: 's', type: 'HISTOGRAM', monotonic: undefined, valueType: 'DOUBLE' },
      { name: 'bulwark.calls', unit: '{call}', type: 'SUM', monotonic: true, valueType: 'INT' },
      { name: 'bulwark.circuit.failure_ratio', unit: '1', type: 'GAUGE', monotonic: undefined, valueType: 'DOUBLE' },
      { name: 'bulwark.circuit.slow_call_ratio', unit: '1', type: 'GAUGE', monotonic: undefined, valueType: 'DOUBLE' },
      { name: 'bulwark.circuit.status', unit: '1', type: 'SUM', monotonic: false, valueType: 'INT' },
      { name: 'bulwark.failures', unit: '{failure}', type: 'SUM', monotonic: true, valueType: 'INT' },
      { name: 'bulwark.fallbacks', unit: '{fallback}', type: 'SUM', monotonic: true, valueType: 'INT' },
      { name: 'bulwark.rejections', unit: '{rejection}', type: 'SUM', monotonic: true, valueType: 'INT' },
      { name: 'bulwark.retries', unit: '{retry}', type: 'SUM', monotonic: true, valueType: 'INT' },
      { name: 'bulwark.successes', unit: '{success}', type: 'SUM', monotonic: true, valueType: 'INT' },
      { name: 'bulwark.timeouts', unit: '{timeout}', type: 'SUM', monotonic: true, valueType: 'INT' },
    ]);
    for (const metric of metrics.values()) expect(metric.descriptor.description, metric.descriptor.name).toMatch(/^[A-Z].{10,}\.$/);
  });

  it('follows the naming guidance: dotted lowercase names, no total, UCUM units, namespaced attributes', async () => {
    const { meter, collect } = sdk();
    const { source, emit } = handSource();
    registerOpenTelemetryMetrics(source, meter);
    for (const outcome of ['success', 'failure', 'rejection'] as const) emit({ policy: 'payments', kind: 'circuit-breaker', durationMs: 3, outcome });
    const { metrics } = await collect();
    expect(metrics.size).toBe(13);
    for (const metric of metrics.values()) {
      const { name, unit } = metric.descriptor;
      expect(name).toMatch(/^bulwark(\.[a-z][a-z0-9]*(_[a-z0-9]+)*)+$/); // lowercase, dot namespaces, snake_case words
      expect(name).not.toMatch(/total|_count$|seconds|millis/); // no total suffix, no unit in the name
      // UCUM: seconds for durations, 1 for ratios and states, a singular {annotation} for counts
      expect(unit === 's' || unit === '1' || /^\{[a-z]+\}$/.test(unit), `${name} ${unit}`).toBe(true);
      if (/^\{.*\}$/.test(unit)) expect(unit, name).not.toMatch(/[^s]s\}$/); // {call}, not {calls}
      const attributeKeys = new Set([...points(metric), ...histogramPoints(metric)].flatMap((point) => Object.keys(point.attributes)));
      for (const key of attributeKeys) expect(key, name).toMatch(/^bulwark\.[a-z]+\.[a-z_]+$/);
      for (const point of [...points(metric), ...histogramPoints(metric)]) {
        for (const value of Object.values(point.attributes)) expect(typeof value).toBe('string');
      }
    }
  });

  it('reports every value of the snapshot, on every collection', async () => {
    const { meter, collect } = sdk();
    let snapshot = handMadeSnapshot();
    const source = { snapshot: () => snapshot, onCall: () => () => {} };
    registerOpenTelemetryMetrics(source, meter);
    expectMatchesSnapshot((await collect()).metrics, snapshot);
    const metrics = (await collect()).metrics;
    expect(valueAt(metrics.get('bulwark.rejections'), { 'bulwark.policy.name': 'search "eu"', 'bulwark.policy.kind': 'bulkhead' })).toBe(1);
    expect(valueAt(metrics.get('bulwark.circuit.status'), { 'bulwark.policy.name': 'payments', 'bulwark.policy.kind': 'circuit-breaker', 'bulwark.circuit.state': 'half-open' })).toBe(1);
    expect(valueAt(metrics.get('bulwark.timeouts'), { 'bulwark.policy.name': 'payments', 'bulwark.policy.kind': 'retry' })).toBeUndefined();
    // The next collection reads the registry again.
    snapshot = {
      ...snapshot,
      policies: snapshot.policies.map((policy) => (policy.kind === 'circuit-breaker' ? { ...policy, calls: 12, state: 'open' as const } : policy)),
    };
    const later = (await collect()).metrics;
    expectMatchesSnapshot(later, snapshot);
    expect(valueAt(later.get('bulwark.calls'), { 'bulwark.policy.name': 'payments', 'bulwark.policy.kind': 'circuit-breaker' })).toBe(12);
  });

  it('reads one snapshot per collection for every instrument', async () => {
    const { meter, collect } = sdk();
    let reads = 0;
    registerOpenTelemetryMetrics({ snapshot: () => (reads++, handMadeSnapshot()), onCall: () => () => {} }, meter);
    reads = 0; // registering reads one, to make the instruments of the kinds tracked already
    await collect();
    expect(reads).toBe(1);
    await collect();
    expect(reads).toBe(2);
  });

  it('reads one snapshot per collection even once a kind the snapshot shows later has added instruments of its own', async () => {
    const { meter, collect } = sdk();
    let reads = 0;
    let snapshot: MetricsSnapshot = handMadeSnapshot();
    registerOpenTelemetryMetrics({ snapshot: () => (reads++, snapshot), onCall: () => () => {} }, meter);
    snapshot = { ...guardSnapshot(), policies: [...snapshot.policies, ...guardSnapshot().policies] };
    await collect(); // shows the new kind: its instruments report from the next collection
    reads = 0;
    const { metrics } = await collect();
    expect(reads).toBe(1);
    expect(valueAt(metrics.get('bulwark.queue_guard.call.queued'), guardAttributes)).toBe(7);
    await collect();
    expect(reads).toBe(2);
  });

  it('records call durations in seconds from onCall, by policy, kind and outcome, in the default buckets', async () => {
    const { meter, collect } = sdk();
    const { source, emit } = handSource();
    registerOpenTelemetryMetrics(source, meter);
    const durations = [0.5, 1, 1.0001, 250, 1_000, 20_000]; // 1 ms and 1 000 ms exactly sit in the buckets they bound
    for (const durationMs of durations) emit({ policy: 'payments', kind: 'timeout', durationMs, outcome: 'success' });
    emit({ policy: 'payments', kind: 'timeout', durationMs: 1_000, outcome: 'failure' });
    const histogram = (await collect()).metrics.get('bulwark.call.duration');
    const [success, failure, ...others] = histogramPoints(histogram).sort((a, b) => (String(a.attributes['bulwark.call.outcome']) > String(b.attributes['bulwark.call.outcome']) ? -1 : 1));
    expect(others).toEqual([]);
    expect(success?.attributes).toEqual({ 'bulwark.policy.name': 'payments', 'bulwark.policy.kind': 'timeout', 'bulwark.call.outcome': 'success' });
    expect(success?.value.buckets.boundaries).toEqual([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    expect(success?.value.buckets.counts).toEqual([2, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1]);
    expect(success?.value.count).toBe(6);
    expect(success?.value.sum).toBeCloseTo(durations.reduce((a, b) => a + b, 0) / 1000, 9);
    expect(success?.value.max).toBe(20);
    expect(failure?.attributes['bulwark.call.outcome']).toBe('failure');
    expect(failure?.value.count).toBe(1);
  });

  it('takes the histogram boundaries from the registry, or from durationBuckets', async () => {
    const first = sdk();
    const { source, emit } = handSource(handMadeSnapshot(), [10, 100, 1_000]);
    registerOpenTelemetryMetrics(source, first.meter);
    emit({ policy: 'p', kind: 'retry', durationMs: 50, outcome: 'success' });
    expect(histogramPoints((await first.collect()).metrics.get('bulwark.call.duration'))[0]?.value.buckets.boundaries).toEqual([0.01, 0.1, 1]);

    const second = sdk();
    const hand = handSource(handMadeSnapshot(), [10, 100, 1_000]);
    registerOpenTelemetryMetrics(hand.source, second.meter, { durationBuckets: [0, 0.05, 0.2] });
    hand.emit({ policy: 'p', kind: 'retry', durationMs: 50, outcome: 'success' });
    const point = histogramPoints((await second.collect()).metrics.get('bulwark.call.duration'))[0];
    expect(point?.value.buckets.boundaries).toEqual([0, 0.05, 0.2]);
    expect(point?.value.buckets.counts).toEqual([0, 1, 0, 0]);
  });

  it.each([
    ['Infinity', [10, Infinity]],
    ['NaN', [10, Number.NaN]],
    ['a string', [10, '100']],
  ])('falls back to the default boundaries when the registry’s buckets hold %s', async (_what, buckets) => {
    const { meter, collect } = sdk();
    const { source, emit } = handSource(handMadeSnapshot(), buckets as number[]);
    registerOpenTelemetryMetrics(source, meter);
    emit({ policy: 'p', kind: 'retry', durationMs: 50, outcome: 'success' });
    const point = histogramPoints((await collect()).metrics.get('bulwark.call.duration'))[0];
    expect(point?.value.buckets.boundaries).toEqual([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  });

  it('stops reporting when the returned function is called, and calling it twice is harmless: the source is unsubscribed once', async () => {
    const { meter, collect } = sdk(AggregationTemporality.DELTA);
    const { source: hand, listeners, emit } = handSource();
    let unsubscribed = 0;
    const source = { ...hand, onCall: (listener: (sample: CallSample) => void) => { const off = hand.onCall(listener); return () => (unsubscribed++, off()); } };
    const stop = registerOpenTelemetryMetrics(source, meter);
    expect(listeners.size).toBe(1);
    emit({ policy: 'payments', kind: 'retry', durationMs: 5, outcome: 'success' });
    const before = (await collect()).metrics;
    expect(points(before.get('bulwark.calls')).length).toBe(5);
    expect(histogramPoints(before.get('bulwark.call.duration')).length).toBe(1);
    stop();
    stop();
    expect(listeners.size).toBe(0);
    expect(unsubscribed).toBe(1);
    emit({ policy: 'payments', kind: 'retry', durationMs: 5, outcome: 'success' });
    const after = (await collect()).metrics;
    for (const metric of after.values()) {
      expect([...points(metric), ...histogramPoints(metric)], metric.descriptor.name).toEqual([]);
    }
  });

  it('leaves other registrations running when one stops', async () => {
    const { meter, collect } = sdk();
    const one = handSource({ timestamp: 0, policies: [policySnapshot('one', 'retry', { calls: 1 })] });
    const two = handSource({ timestamp: 0, policies: [policySnapshot('two', 'retry', { calls: 2 })] });
    const stopOne = registerOpenTelemetryMetrics(one.source, meter);
    registerOpenTelemetryMetrics(two.source, meter);
    stopOne();
    const calls = (await collect()).metrics.get('bulwark.calls');
    expect(points(calls).map((point) => [point.attributes['bulwark.policy.name'], point.value])).toEqual([['two', 2]]);
    expect(two.listeners.size).toBe(1);
  });

  it('lets the SDK report a snapshot that throws, and keeps recording durations', async () => {
    const { meter, collect } = sdk();
    const error = new Error('snapshot broke');
    const { source, emit } = handSource();
    registerOpenTelemetryMetrics({ ...source, snapshot: () => { throw error; } }, meter);
    emit({ policy: 'p', kind: 'timeout', durationMs: 2, outcome: 'failure' });
    const { metrics, errors } = await collect();
    expect(errors).toContain(error);
    expect(histogramPoints(metrics.get('bulwark.call.duration'))[0]?.value.count).toBe(1);
  });

  it('undoes its callback when onCall throws, and throws that error', () => {
    const removed: unknown[] = [];
    const { meter } = sdk();
    const spy: OtelMeter = {
      ...meterMethods(meter),
      removeBatchObservableCallback: (callback, observables) => {
        removed.push(callback);
        meter.removeBatchObservableCallback(callback, observables);
      },
    };
    const error = new Error('no listeners today');
    expect(() => registerOpenTelemetryMetrics({ snapshot: handMadeSnapshot, onCall: () => { throw error; } }, spy)).toThrow(error);
    expect(removed).toHaveLength(1);
  });

  it.each([
    [{ durationBuckets: 'fast' }, TypeError, /durationBuckets must be an array of numbers \(seconds\), got "fast"/],
    [{ durationBuckets: [0.1, '1'] }, TypeError, /durationBuckets\[1\] must be a number, got "1"/],
    [{ durationBuckets: [0.1, NaN] }, RangeError, /durationBuckets\[1\] must be a finite number ≥ 0, got NaN/],
    [{ durationBuckets: [-1] }, RangeError, /durationBuckets\[0\] must be a finite number ≥ 0, got -1/],
    [{ durationBuckets: [1, Infinity] }, RangeError, /durationBuckets\[1\] must be a finite number/],
    [{ durationBuckets: [1, 0.5] }, RangeError, /strictly ascending, got 0.5 after 1 at index 1/],
    [{ durationBuckets: [1, 1] }, RangeError, /strictly ascending/],
    [{ buckets: [1] }, TypeError, /^registerOpenTelemetryMetrics\(\) has no option "buckets"; known options: "durationBuckets"$/],
    [[], TypeError, /options must be an object, got an array/],
  ])('refuses bad options: %j', (options, type, message) => {
    const { meter } = sdk();
    const call = () => registerOpenTelemetryMetrics(handSource().source, meter, options as OpenTelemetryMetricsOptions);
    expect(call).toThrow(type);
    expect(call).toThrow(message);
  });

  it('refuses a source or a meter that lacks what it needs, naming what is missing', () => {
    const { meter } = sdk();
    expect(() => registerOpenTelemetryMetrics(null as never, meter)).toThrow(/expected a MetricsRegistry \(with snapshot\(\) and onCall\(\)\), got null/);
    expect(() => registerOpenTelemetryMetrics({ snapshot: handMadeSnapshot } as never, meter)).toThrow(
      new TypeError('registerOpenTelemetryMetrics(): expected a MetricsRegistry (with snapshot() and onCall()), got an object'),
    );
    expect(() => registerOpenTelemetryMetrics({ onCall: () => () => {} } as never, meter)).toThrow(
      new TypeError('registerOpenTelemetryMetrics(): expected a MetricsRegistry (with snapshot() and onCall()), got an object'),
    );
    expect(() => registerOpenTelemetryMetrics(Object.assign(() => {}, handSource().source) as never, meter)).toThrow(
      new TypeError('registerOpenTelemetryMetrics(): expected a MetricsRegistry (with snapshot() and onCall()), got a function'),
    );
    expect(() => registerOpenTelemetryMetrics(handSource().source, null as never)).toThrow(new TypeError('registerOpenTelemetryMetrics(): expected an OpenTelemetry Meter, got null'));
    expect(() => registerOpenTelemetryMetrics(handSource().source, undefined as never)).toThrow(/expected an OpenTelemetry Meter, got undefined/);
    const { addBatchObservableCallback: _a, removeBatchObservableCallback: _r, ...old } = meterMethods(meter);
    expect(() => registerOpenTelemetryMetrics(handSource().source, old as never)).toThrow(
      /the meter has no addBatchObservableCallback, removeBatchObservableCallback; pass a Meter from @opentelemetry\/api 1.x/,
    );
  });
});

const guardAttributes = { 'bulwark.policy.name': 'guard', 'bulwark.policy.kind': 'queue-guard' };

/** A policy of a kind bulwark does not know, as its description tells the registry: a gauge named like the bulkhead's, and two state gauges. */
function guardSnapshot(fields: Record<string, unknown> = { queued: 7, mode: 'draining', power: 'broken' }): MetricsSnapshot {
  const kinds = {
    'queue-guard': {
      refuses: false,
      counters: [],
      gauges: [
        { field: 'queued', prometheus: 'queue_guard_queued_calls', otel: 'bulwark.queue_guard.call.queued', description: 'Calls the guard holds.', unit: '{call}', type: 'count' },
        // a state gauge without its list of states nor its attribute's name
        { field: 'mode', prometheus: 'queue_guard_mode', otel: 'bulwark.queue_guard.mode', description: 'The guard’s mode.', unit: '1', type: 'state' },
        { field: 'power', prometheus: 'queue_guard_power', otel: 'bulwark.queue_guard.power', description: 'The guard’s power.', unit: '1', type: 'state', states: ['on', 'off'], stateLabel: { prometheus: 'power', otel: 'bulwark.queue_guard.power_state' } },
      ],
    },
  } as const;
  return { timestamp: 0, kinds, policies: [{ ...policySnapshot('guard', 'queue-guard' as PolicyKind), ...fields } as PolicyMetricsSnapshot] };
}

describe('registerOpenTelemetryMetrics: kinds the snapshot describes', () => {
  it('reports a gauge of another kind only for policies of that kind, even when a bulkhead has a field of the same name', async () => {
    const { meter, collect } = sdk();
    const guard = guardSnapshot();
    const snapshot: MetricsSnapshot = { ...guard, policies: [...guard.policies, policySnapshot('search', 'bulkhead', { active: 1, queued: 2 })] };
    registerOpenTelemetryMetrics({ snapshot: () => snapshot, onCall: () => () => {} }, meter);
    const { metrics } = await collect();
    expect(points(metrics.get('bulwark.queue_guard.call.queued')).map((point) => [point.attributes, point.value])).toEqual([[guardAttributes, 7]]);
    expect(points(metrics.get('bulwark.bulkhead.call.queued')).map((point) => [point.attributes['bulwark.policy.name'], point.value])).toEqual([['search', 2]]);
  });

  it('reports the current state of a state gauge: 1 under the attribute "state" when it lists no states, and an unknown state beside the known ones', async () => {
    const { meter, collect } = sdk();
    registerOpenTelemetryMetrics({ snapshot: () => guardSnapshot(), onCall: () => () => {} }, meter);
    const { metrics } = await collect();
    expect(points(metrics.get('bulwark.queue_guard.mode')).map((point) => [point.attributes, point.value])).toEqual([[{ ...guardAttributes, state: 'draining' }, 1]]);
    const power = points(metrics.get('bulwark.queue_guard.power')).map((point) => [point.attributes['bulwark.queue_guard.power_state'], point.value]);
    expect(power).toEqual([['on', 0], ['off', 0], ['broken', 1]]);
  });

  it('reports no point for a gauge whose value a policy’s snapshot lacks', async () => {
    const { meter, collect } = sdk();
    const snapshot: MetricsSnapshot = { ...guardSnapshot({}), policies: [...guardSnapshot({}).policies, policySnapshot('payments', 'circuit-breaker')] };
    registerOpenTelemetryMetrics({ snapshot: () => snapshot, onCall: () => () => {} }, meter);
    const { metrics } = await collect();
    for (const name of ['bulwark.queue_guard.call.queued', 'bulwark.queue_guard.mode', 'bulwark.queue_guard.power', 'bulwark.circuit.status', 'bulwark.circuit.failure_ratio']) {
      expect(points(metrics.get(name)), name).toEqual([]);
    }
    expect(valueAt(metrics.get('bulwark.calls'), guardAttributes)).toBe(0);
  });
});

/** The meter's methods as own properties bound to it, to build a partial or spying meter. */
function meterMethods(meter: OtelMeter): OtelMeter {
  return {
    createHistogram: (name, options) => meter.createHistogram(name, options),
    createObservableCounter: (name, options) => meter.createObservableCounter(name, options),
    createObservableUpDownCounter: (name, options) => meter.createObservableUpDownCounter(name, options),
    createObservableGauge: (name, options) => meter.createObservableGauge(name, options),
    addBatchObservableCallback: (callback, observables) => meter.addBatchObservableCallback(callback, observables),
    removeBatchObservableCallback: (callback, observables) => meter.removeBatchObservableCallback(callback, observables),
  };
}

describe('registerOpenTelemetryMetrics with a real registry', () => {
  it('reports what real policies counted, and their call durations', async () => {
    const clock = new CountingClock();
    let extra = 0;
    const registry = new MetricsRegistry({ now: () => clock.now() + extra });
    const breaker = new CircuitBreaker({ name: 'payments', failureThreshold: 1, recoveryTimeout: 60_000, clock });
    const bulkhead = new Bulkhead({ name: 'payments', maxConcurrent: 1, maxQueue: 1, clock });
    const stack = compose(
      withFallback('queued' as const, { name: 'payments' }),
      breaker,
      retryWithBackoff({ name: 'payments', maxRetries: 1, baseDelay: 0, jitter: 'none', clock }),
      withTimeout(500, { name: 'payments', clock }),
      bulkhead,
    );
    registry.track(stack);
    const { meter, collect } = sdk();
    registerOpenTelemetryMetrics(registry, meter);

    await stack.execute(() => ((extra += 20), 'ok'));
    let attempt = 0;
    await stack.execute(() => (++attempt === 1 ? ((extra += 5), Promise.reject(new Error('blip'))) : 'ok'));
    const held = deferred<string>();
    const running = stack.execute(() => held.promise);
    const waiting = stack.execute(() => 'second');
    await flush();
    // at the moment of collection: one call runs in the bulkhead, one waits
    let { metrics } = await collect();
    expectMatchesSnapshot(metrics, registry.snapshot());
    const bulkheadAttributes = { 'bulwark.policy.name': 'payments', 'bulwark.policy.kind': 'bulkhead' };
    expect(valueAt(metrics.get('bulwark.bulkhead.call.active'), bulkheadAttributes)).toBe(1);
    expect(valueAt(metrics.get('bulwark.bulkhead.call.queued'), bulkheadAttributes)).toBe(1);
    held.resolve('first');
    await expect(running).resolves.toBe('first');
    await expect(waiting).resolves.toBe('second');
    // a call that hangs past its deadline twice opens the breaker; the next is refused
    const hanging = stack.execute(({ signal }) => new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))));
    await clock.advance(500);
    await clock.advance(500);
    await expect(hanging).resolves.toBe('queued');
    await expect(stack.execute(() => 'refused')).resolves.toBe('queued');

    ({ metrics } = await collect());
    const snapshot = registry.snapshot();
    expectMatchesSnapshot(metrics, snapshot);
    const breakerAttributes = { 'bulwark.policy.name': 'payments', 'bulwark.policy.kind': 'circuit-breaker' };
    expect(valueAt(metrics.get('bulwark.circuit.status'), { ...breakerAttributes, 'bulwark.circuit.state': 'open' })).toBe(1);
    expect(valueAt(metrics.get('bulwark.rejections'), breakerAttributes)).toBe(1);
    expect(valueAt(metrics.get('bulwark.failures'), breakerAttributes)).toBe(1);
    expect(valueAt(metrics.get('bulwark.timeouts'), { 'bulwark.policy.name': 'payments', 'bulwark.policy.kind': 'timeout' })).toBe(2);
    expect(valueAt(metrics.get('bulwark.fallbacks'), { 'bulwark.policy.name': 'payments', 'bulwark.policy.kind': 'fallback' })).toBe(2);

    // The histogram saw every call the registry measured, in seconds, with the same bucket counts.
    const histogram = histogramPoints(metrics.get('bulwark.call.duration'));
    for (const policy of snapshot.policies) {
      const mine = histogram.filter((point) => point.attributes['bulwark.policy.name'] === policy.name && point.attributes['bulwark.policy.kind'] === policy.kind);
      const count = mine.reduce((total, point) => total + point.value.count, 0);
      const sum = mine.reduce((total, point) => total + (point.value.sum ?? 0), 0);
      expect(count, policy.kind).toBe(policy.latency.count);
      expect(sum, policy.kind).toBeCloseTo(policy.latency.sum / 1000, 9);
      const perBucket = policy.latency.buckets.map((bucket, at) => bucket.count - (policy.latency.buckets[at - 1]?.count ?? 0));
      const summed = perBucket.map((_, at) => mine.reduce((total, point) => total + (point.value.buckets.counts[at] ?? 0), 0));
      expect(summed, policy.kind).toEqual(perBucket);
    }
    const timeoutOutcomes = histogram.filter((point) => point.attributes['bulwark.policy.kind'] === 'timeout').map((point) => [point.attributes['bulwark.call.outcome'], point.value.count]);
    expect(timeoutOutcomes.sort()).toEqual([['failure', 3], ['success', 4]]);
  });
});

it('names no instrument like an attribute (the state metric is bulwark.circuit.status, its attribute bulwark.circuit.state)', () => {
  const names: string[] = [];
  const attributeKeys = new Set<string>();
  const observable = () => ({ addCallback() {}, removeCallback() {} });
  const meter = {
    createHistogram: (n: string) => { names.push(n); return { record() {} }; },
    createObservableCounter: (n: string) => { names.push(n); return observable(); },
    createObservableUpDownCounter: (n: string) => { names.push(n); return observable(); },
    createObservableGauge: (n: string) => { names.push(n); return observable(); },
    addBatchObservableCallback: (cb: (r: { observe(o: unknown, v: number, a?: Record<string, string>): void }) => void) => {
      cb({ observe: (_o, _v, a) => { for (const k of Object.keys(a ?? {})) attributeKeys.add(k); } });
    },
    removeBatchObservableCallback() {},
  };
  const registry = new MetricsRegistry();
  registry.track(new CircuitBreaker({ name: 'payments' }));
  registerOpenTelemetryMetrics(registry, meter as unknown as Parameters<typeof registerOpenTelemetryMetrics>[1]);
  const clashes = names.filter((n) => attributeKeys.has(n));
  expect(clashes).toEqual([]);
});
