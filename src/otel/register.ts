import type { CallSample, MetricsSnapshot } from '../metrics.js';
import { options as checkOptions, show } from '../subpath-options.js';
import { CIRCUIT_STATES, COUNTERS } from '../subpath-metrics.js';
import type { OtelAttributes, OtelBatchObservableCallback, OtelMeter, OtelObservable } from './meter.js';

/**
 * Where metrics come from: a `MetricsRegistry`, or anything with the same `snapshot()` and
 * `onCall()`.
 */
export interface OpenTelemetryMetricsSource {
  snapshot(): MetricsSnapshot;
  onCall(listener: (sample: CallSample) => void): () => void;
  /** The registry's latency buckets in ms; the duration histogram's default boundaries come from them. */
  readonly buckets?: readonly number[] | undefined;
}

/** Options of {@link registerOpenTelemetryMetrics}. */
export interface OpenTelemetryMetricsOptions {
  /**
   * Bucket boundaries of the `bulwark.call.duration` histogram, in seconds: finite, ≥ 0 and
   * strictly ascending. Passed to the meter as advice; a View configured in the SDK wins.
   * @default the registry's `buckets` in seconds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
   */
  durationBuckets?: readonly number[] | undefined;
}

/** Attribute keys bulwark sets, namespaced as OpenTelemetry's naming guidance asks. */
const POLICY_NAME = 'bulwark.policy.name';
const POLICY_KIND = 'bulwark.policy.kind';
const CIRCUIT_STATE = 'bulwark.circuit.state';
const CALL_OUTCOME = 'bulwark.call.outcome';

/** `ValueType.INT` of `@opentelemetry/api`, written as its value so nothing is imported at run time. */
const INT = 0;

/** The registry's default latency buckets (ms), for a source that does not say its own. */
const DEFAULT_BUCKETS_MS: readonly number[] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

const OPTION_KEYS: readonly (keyof OpenTelemetryMetricsOptions)[] = ['durationBuckets'];
const METER_METHODS: readonly (keyof OtelMeter)[] = [
  'createHistogram',
  'createObservableCounter',
  'createObservableUpDownCounter',
  'createObservableGauge',
  'addBatchObservableCallback',
  'removeBatchObservableCallback',
];

function checkBoundaries(value: unknown): number[] {
  const name = 'registerOpenTelemetryMetrics() durationBuckets';
  if (!Array.isArray(value)) throw new TypeError(`${name} must be an array of numbers (seconds), got ${show(value)}`);
  const boundaries: number[] = [];
  value.forEach((bound: unknown, at) => {
    if (typeof bound !== 'number') throw new TypeError(`${name}[${at}] must be a number, got ${show(bound)}`);
    if (!Number.isFinite(bound) || bound < 0) throw new RangeError(`${name}[${at}] must be a finite number ≥ 0, got ${show(bound)}`);
    const previous = boundaries[at - 1];
    if (previous !== undefined && bound <= previous) {
      throw new RangeError(`${name} must be strictly ascending, got ${bound} after ${previous} at index ${at}`);
    }
    boundaries.push(bound);
  });
  return boundaries;
}

/** The histogram's default boundaries: the registry's own buckets, in seconds. */
function defaultBoundaries(source: OpenTelemetryMetricsSource): number[] {
  const buckets = Array.isArray(source.buckets) && source.buckets.every((bound) => typeof bound === 'number' && Number.isFinite(bound))
    ? source.buckets
    : DEFAULT_BUCKETS_MS;
  return buckets.map((ms) => ms / 1_000);
}

/**
 * Reports a registry's metrics through an OpenTelemetry `Meter`, named in the style of
 * OpenTelemetry's semantic conventions (dot-separated lowercase names, UCUM units, no `total`
 * suffix, namespaced attributes `bulwark.policy.name` and `bulwark.policy.kind`):
 *
 * - observable counters `bulwark.calls`, `bulwark.successes`, `bulwark.failures`,
 *   `bulwark.rejections`, `bulwark.timeouts`, `bulwark.retries`, `bulwark.fallbacks`, and
 *   observable gauges and up-down counters for breaker state and rates and bulkhead
 *   occupancy, all read from one `registry.snapshot()` per collection;
 * - the histogram `bulwark.call.duration` (unit `s`, with `bulwark.call.outcome`), recorded
 *   from `registry.onCall` for every call that finishes from now on.
 *
 * Returns the function that stops reporting: it removes the batch callback and stops
 * recording durations (OpenTelemetry has no way to delete an instrument, so they stay, silent).
 * Nothing of `@opentelemetry/api` is imported: the meter is typed by the methods used.
 *
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * import { MetricsRegistry } from 'bulwark';
 * import { registerOpenTelemetryMetrics } from 'bulwark/otel';
 *
 * const registry = new MetricsRegistry();
 * registry.track(paymentsStack);
 * const stop = registerOpenTelemetryMetrics(registry, metrics.getMeter('checkout'));
 * // on shutdown: stop();
 * ```
 */
export function registerOpenTelemetryMetrics(
  registry: OpenTelemetryMetricsSource,
  meter: OtelMeter,
  options?: OpenTelemetryMetricsOptions,
): () => void {
  if (typeof registry !== 'object' || registry === null || typeof registry.snapshot !== 'function' || typeof registry.onCall !== 'function') {
    throw new TypeError(`registerOpenTelemetryMetrics(): expected a MetricsRegistry (with snapshot() and onCall()), got ${show(registry)}`);
  }
  if (typeof meter !== 'object' || meter === null) {
    throw new TypeError(`registerOpenTelemetryMetrics(): expected an OpenTelemetry Meter, got ${show(meter)}`);
  }
  const missing = METER_METHODS.filter((method) => typeof meter[method] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`registerOpenTelemetryMetrics(): the meter has no ${missing.join(', ')}; pass a Meter from @opentelemetry/api 1.x`);
  }
  const opts = checkOptions('registerOpenTelemetryMetrics()', options, OPTION_KEYS);
  const boundaries = opts.durationBuckets === undefined ? defaultBoundaries(registry) : checkBoundaries(opts.durationBuckets);

  // Named as the semantic conventions ask: no `total` suffix, a plural name, a singular `{annotation}` unit.
  const counters = COUNTERS.map((spec) => ({
    spec,
    instrument: meter.createObservableCounter(`bulwark.${spec.field}`, { description: spec.description, unit: spec.unit, valueType: INT }),
  }));
  const circuitState = meter.createObservableUpDownCounter('bulwark.circuit.status', {
    description: 'The state of the circuit breaker: 1 for the current state (bulwark.circuit.state), 0 for the others.',
    unit: '1',
    valueType: INT,
  });
  const failureRatio = meter.createObservableGauge('bulwark.circuit.failure_ratio', {
    description: 'Share of recent calls the circuit breaker counted as failures, from 0 to 1.',
    unit: '1',
  });
  const slowCallRatio = meter.createObservableGauge('bulwark.circuit.slow_call_ratio', {
    description: 'Share of recent calls the circuit breaker counted as slow, from 0 to 1.',
    unit: '1',
  });
  const bulkheadActive = meter.createObservableUpDownCounter('bulwark.bulkhead.call.active', {
    description: 'Calls running in the bulkhead.',
    unit: '{call}',
    valueType: INT,
  });
  const bulkheadQueued = meter.createObservableUpDownCounter('bulwark.bulkhead.call.queued', {
    description: 'Calls waiting in the bulkhead queue.',
    unit: '{call}',
    valueType: INT,
  });
  const duration = meter.createHistogram('bulwark.call.duration', {
    description: 'How long calls took in the policy, from entering it to its outcome.',
    unit: 's',
    advice: { explicitBucketBoundaries: boundaries },
  });

  const observables: OtelObservable[] = [
    ...counters.map(({ instrument }) => instrument),
    circuitState,
    failureRatio,
    slowCallRatio,
    bulkheadActive,
    bulkheadQueued,
  ];

  // One snapshot per collection, so every instrument reports the same moment.
  const observe: OtelBatchObservableCallback = (result) => {
    for (const policy of registry.snapshot().policies) {
      const attributes: OtelAttributes = { [POLICY_NAME]: policy.name, [POLICY_KIND]: policy.kind };
      for (const { spec, instrument } of counters) {
        if (spec.kinds === undefined || spec.kinds.includes(policy.kind)) result.observe(instrument, policy[spec.field], attributes);
      }
      const current = policy.state;
      if (current !== undefined) {
        for (const state of CIRCUIT_STATES) result.observe(circuitState, state === current ? 1 : 0, { ...attributes, [CIRCUIT_STATE]: state });
        // A state this version does not know still shows as current, rather than no state at all.
        if (!(CIRCUIT_STATES as readonly string[]).includes(current)) result.observe(circuitState, 1, { ...attributes, [CIRCUIT_STATE]: current });
      }
      if (policy.failureRate !== undefined) result.observe(failureRatio, policy.failureRate, attributes);
      if (policy.slowCallRate !== undefined) result.observe(slowCallRatio, policy.slowCallRate, attributes);
      if (policy.active !== undefined) result.observe(bulkheadActive, policy.active, attributes);
      if (policy.queued !== undefined) result.observe(bulkheadQueued, policy.queued, attributes);
    }
  };
  meter.addBatchObservableCallback(observe, observables);
  let unsubscribe: () => void;
  try {
    unsubscribe = registry.onCall((sample) => {
      duration.record(sample.durationMs / 1_000, { [POLICY_NAME]: sample.policy, [POLICY_KIND]: sample.kind, [CALL_OUTCOME]: sample.outcome });
    });
  } catch (error) {
    meter.removeBatchObservableCallback(observe, observables);
    throw error;
  }

  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    meter.removeBatchObservableCallback(observe, observables);
    unsubscribe();
  };
}
