export { MetricsRegistry } from './registry.js';
export type { MetricsRegistryOptions, MetricsSnapshot, PolicyMetricsSnapshot, TrackOptions } from './registry.js';
export type { LatencySnapshot } from './histogram.js';
export type { PolicyKind } from './named.js';
export type { CallSample } from './tracker.js';
