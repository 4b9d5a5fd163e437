/**
 * `bulwark/otel`: a `MetricsRegistry` reported through an OpenTelemetry `Meter`. It takes only
 * types from the core and imports nothing of OpenTelemetry at run time: pass it the meter
 * your application already has.
 *
 * @module bulwark/otel
 */
export { registerOpenTelemetryMetrics } from './register.js';
export type { OpenTelemetryMetricsOptions, OpenTelemetryMetricsSource } from './register.js';
export type {
  OtelAttributes,
  OtelBatchObservableCallback,
  OtelBatchObservableResult,
  OtelHistogram,
  OtelInstrumentOptions,
  OtelMeter,
  OtelObservable,
} from './meter.js';
