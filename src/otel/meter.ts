/**
 * The part of OpenTelemetry's `Meter` (`@opentelemetry/api`) that `bulwark/otel` uses, declared
 * here so the entry imports nothing at run time: a `Meter` from `metrics.getMeter(…)` fits
 * these types as it is.
 */

/** Attributes of a measurement; bulwark's are all strings. */
export type OtelAttributes = Record<string, string>;

/** Options of an instrument, as `@opentelemetry/api`'s `MetricOptions`. */
export interface OtelInstrumentOptions {
  description?: string;
  unit?: string;
  /** `0` is `ValueType.INT`, `1` is `ValueType.DOUBLE`. */
  valueType?: number;
  advice?: { explicitBucketBoundaries?: number[] };
}

/** An observable instrument; bulwark only hands it back to the meter. */
export interface OtelObservable {
  addCallback(callback: (result: { observe(value: number, attributes?: OtelAttributes): void }) => void): void;
  removeCallback(callback: (result: { observe(value: number, attributes?: OtelAttributes): void }) => void): void;
}

/** A histogram, as `@opentelemetry/api`'s `Histogram`. */
export interface OtelHistogram {
  record(value: number, attributes?: OtelAttributes): void;
}

/** What a batch callback reports through, as `@opentelemetry/api`'s `BatchObservableResult`. */
export interface OtelBatchObservableResult {
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
  createHistogram(name: string, options?: OtelInstrumentOptions): OtelHistogram;
  createObservableCounter(name: string, options?: OtelInstrumentOptions): OtelObservable;
  createObservableUpDownCounter(name: string, options?: OtelInstrumentOptions): OtelObservable;
  createObservableGauge(name: string, options?: OtelInstrumentOptions): OtelObservable;
  addBatchObservableCallback(callback: OtelBatchObservableCallback, observables: OtelObservable[]): void;
  removeBatchObservableCallback(callback: OtelBatchObservableCallback, observables: OtelObservable[]): void;
}
