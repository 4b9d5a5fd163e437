/**
 * The part of OpenTelemetry's `Meter` (`@opentelemetry/api`) that `bulwark/otel` uses, declared
 * here so the entry imports nothing at run time: a `Meter` from `metrics.getMeter(…)` fits
 * these types as it is.
 */

/** Attributes of a measurement; bulwark's are all strings. */
export type OtelAttributes = Record<string, string>;

/** Options of an instrument, as `@opentelemetry/api`'s `MetricOptions`. */
export interface OtelInstrumentOptions {
  /** What the instrument measures, in a sentence. */
  description?: string;
  /** The unit of its values, as UCUM (`'s'`, `'{call}'`). */
  unit?: string;
  /** `0` is `ValueType.INT`, `1` is `ValueType.DOUBLE`. */
  valueType?: number;
  /** Hints to the SDK: a histogram's bucket bounds in `explicitBucketBoundaries`. */
  advice?: { explicitBucketBoundaries?: number[] };
}

/** An observable instrument; bulwark only hands it back to the meter. */
export interface OtelObservable {
  /** Adds a callback that reports the instrument's value on each collection. */
  addCallback(callback: (result: { observe(value: number, attributes?: OtelAttributes): void }) => void): void;
  /** Removes a callback added by `addCallback`. */
  removeCallback(callback: (result: { observe(value: number, attributes?: OtelAttributes): void }) => void): void;
}

/** A histogram, as `@opentelemetry/api`'s `Histogram`. */
export interface OtelHistogram {
  /** Records one value, with its attributes. */
  record(value: number, attributes?: OtelAttributes): void;
}

/** What a batch callback reports through, as `@opentelemetry/api`'s `BatchObservableResult`. */
export interface OtelBatchObservableResult {
  /** Reports `value` for one of the callback's observable instruments. */
  observe(observable: OtelObservable, value: number, attributes?: OtelAttributes): void;
}

/** A callback that reports several observable instruments from one reading. */
export type OtelBatchObservableCallback = (result: OtelBatchObservableResult) => void;

/**
 * The methods of OpenTelemetry's `Meter` that `bulwark/otel` calls. Any `Meter` from
 * `@opentelemetry/api` 1.x fits.
 *
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * const meter: OtelMeter = metrics.getMeter('checkout');
 * ```
 */
export interface OtelMeter {
  /** Creates a histogram (call durations). */
  createHistogram(name: string, options?: OtelInstrumentOptions): OtelHistogram;
  /** Creates a counter read on collection (calls, failures, retries). */
  createObservableCounter(name: string, options?: OtelInstrumentOptions): OtelObservable;
  /** Creates a sum that may go down, read on collection (calls active, calls queued, a breaker's state). */
  createObservableUpDownCounter(name: string, options?: OtelInstrumentOptions): OtelObservable;
  /** Creates a gauge read on collection (a breaker's failure and slow-call ratios). */
  createObservableGauge(name: string, options?: OtelInstrumentOptions): OtelObservable;
  /** Adds one callback that reports all of `observables` from one reading. */
  addBatchObservableCallback(callback: OtelBatchObservableCallback, observables: OtelObservable[]): void;
  /** Removes a callback added by `addBatchObservableCallback`. */
  removeBatchObservableCallback(callback: OtelBatchObservableCallback, observables: OtelObservable[]): void;
}
