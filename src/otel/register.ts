import type { CallSample, MetricsSnapshot, PolicyMetricsSnapshot } from '../metrics/index.js';
import { options as checkOptions, show } from '../shared/validate.js';
import { CORE_COUNTERS, catalogOf, snakeCase, type KindMetrics } from '../shared/metric-catalog.js';
import type { GaugeDescription } from '../engine/contract.js';
import type { OtelAttributes, OtelBatchObservableCallback, OtelBatchObservableResult, OtelMeter, OtelObservable } from './meter.js';

/**
 * Where metrics come from: a `MetricsRegistry`, or anything with the same `snapshot()` and
 * `onCall()`.
 */
export interface OpenTelemetryMetricsSource {
  /** The counters and gauges now, read on each collection. */
  snapshot(): MetricsSnapshot;
  /** Subscribes to every call's sample (for the duration histogram); returns the function that unsubscribes. */
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

  const duration = meter.createHistogram('bulwark.call.duration', {
    description: 'How long calls took in the policy, from entering it to its outcome.',
    unit: 's',
    advice: { explicitBucketBoundaries: boundaries },
  });

  // Counters and gauges are made at once for bulwark's kinds and for the kinds the registry
  // tracks now, and for any other kind when a snapshot first shows it (reported from the next
  // collection on). Every batch of a
  // collection reads the same snapshot, taken once: the SDK runs them in one turn.
  let current: MetricsSnapshot | undefined;
  const snapshotOfThisCollection = (): MetricsSnapshot => {
    if (current === undefined) {
      current = registry.snapshot();
      queueMicrotask(() => {
        current = undefined;
      });
    }
    return current;
  };
  const instruments = new Map<string, Instrument>();
  const batches: { readonly callback: OtelBatchObservableCallback; readonly observables: OtelObservable[] }[] = [];
  const addInstruments = (catalog: Readonly<Record<string, KindMetrics>>): void => {
    const fresh: Instrument[] = [];
    const add = (name: string, make: () => Instrument): void => {
      if (instruments.has(name)) return;
      const instrument = make();
      instruments.set(name, instrument);
      fresh.push(instrument);
    };
    // Named as the semantic conventions ask: no `total` suffix, a plural name, a singular `{annotation}` unit.
    for (const core of CORE_COUNTERS) {
      add(`bulwark.${snakeCase(core.field)}`, () => counterInstrument(meter, core.field, core.unit, core.description, (kind) => core.field !== 'rejections' || kind?.refuses === true));
    }
    for (const kind of Object.values(catalog)) {
      for (const spec of kind.counters) {
        add(`bulwark.${snakeCase(spec.field)}`, () => counterInstrument(meter, spec.field, spec.unit, spec.description, (policyKind) => policyKind?.counters.some((other) => other.field === spec.field) === true));
      }
      for (const gauge of kind.gauges) add(gauge.otel, () => gaugeInstrument(meter, gauge));
    }
    if (fresh.length === 0) return;
    const observables = fresh.map((instrument) => instrument.observable);
    const callback: OtelBatchObservableCallback = (result) => {
      const snapshot = snapshotOfThisCollection();
      const kinds = catalogOf(snapshot.kinds);
      for (const policy of snapshot.policies) {
        const attributes: OtelAttributes = { [POLICY_NAME]: policy.name, [POLICY_KIND]: policy.kind };
        for (const instrument of fresh) instrument.observe(result, policy, kinds[String(policy.kind)], attributes);
      }
      if (snapshot.kinds !== undefined) addInstruments(snapshot.kinds);
    };
    meter.addBatchObservableCallback(callback, observables);
    batches.push({ callback, observables });
  };
  const removeBatches = (): void => {
    for (const { callback, observables } of batches.splice(0)) meter.removeBatchObservableCallback(callback, observables);
  };
  addInstruments(catalogOf(kindsTrackedNow(registry)));

  let unsubscribe: () => void;
  try {
    unsubscribe = registry.onCall((sample) => {
      duration.record(sample.durationMs / 1_000, { [POLICY_NAME]: sample.policy, [POLICY_KIND]: sample.kind, [CALL_OUTCOME]: sample.outcome });
    });
  } catch (error) {
    removeBatches();
    throw error;
  }

  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    removeBatches();
    unsubscribe();
  };
}

/** One observable instrument, and how it reports a policy of a snapshot. */
interface Instrument {
  readonly observable: OtelObservable;
  observe(result: OtelBatchObservableResult, policy: PolicyMetricsSnapshot, kind: KindMetrics | undefined, attributes: OtelAttributes): void;
}

function counterInstrument(meter: OtelMeter, field: string, unit: string, description: string, exportsFor: (kind: KindMetrics | undefined) => boolean): Instrument {
  const observable = meter.createObservableCounter(`bulwark.${snakeCase(field)}`, { description, unit, valueType: INT });
  return {
    observable,
    observe(result, policy, kind, attributes) {
      const value = policy[field];
      if (typeof value === 'number' && exportsFor(kind)) result.observe(observable, value, attributes);
    },
  };
}

function gaugeInstrument(meter: OtelMeter, gauge: GaugeDescription): Instrument {
  const options = { description: gauge.description, unit: gauge.unit };
  // A count goes up and down by whole calls; a state is 1 for the current one (an up-down counter); a ratio is a gauge.
  const observable =
    gauge.type === 'ratio' ? meter.createObservableGauge(gauge.otel, options) : meter.createObservableUpDownCounter(gauge.otel, { ...options, valueType: INT });
  const states = gauge.states ?? [];
  const stateAttribute = gauge.stateLabel?.otel ?? 'state';
  return {
    observable,
    observe(result, policy, kind, attributes) {
      const value = policy[gauge.field];
      if (value === undefined || kind?.gauges.some((spec) => spec.otel === gauge.otel) !== true) return;
      if (gauge.type !== 'state') {
        if (typeof value === 'number') result.observe(observable, value, attributes);
        return;
      }
      for (const state of states) result.observe(observable, state === value ? 1 : 0, { ...attributes, [stateAttribute]: state });
      // A state this version does not know still shows as current, rather than no state at all.
      if (!states.includes(String(value))) result.observe(observable, 1, { ...attributes, [stateAttribute]: String(value) });
    },
  };
}

/** The kinds a registry tracks now, for their instruments to report from the first collection; none when its snapshot fails (the SDK reports that at collection). */
function kindsTrackedNow(registry: OpenTelemetryMetricsSource): MetricsSnapshot['kinds'] {
  try {
    return registry.snapshot().kinds;
  } catch {
    return undefined;
  }
}
