export { compose } from './policy.js';
export type { AlternativeOf, ExecuteOptions, ExecutionContext, Policy } from './policy.js';

export { CircuitBreaker } from './circuit-breaker.js';
export type { CircuitBreakerEvents, CircuitBreakerOptions, CircuitState } from './circuit-breaker.js';
export type {
  CircuitBreakerFailureRate,
  CircuitBreakerSlowCall,
  CircuitBreakerSnapshot,
  CircuitBreakerStats,
  CircuitBreakerWindow,
  CircuitBreakerWindowSnapshot,
  CircuitStateChangeReason,
} from './circuit-breaker.js';
export { CircuitBreakerGroup } from './circuit-breaker-group.js';
export type { CircuitBreakerGroupEvents, CircuitBreakerGroupOptions } from './circuit-breaker-group.js';

export { RetryPolicy, retryWithBackoff } from './retry.js';
export type { JitterMode, RetryEvents, RetryOptions } from './retry.js';

export { Bulkhead } from './bulkhead.js';
export type { BulkheadEvents, BulkheadOptions } from './bulkhead.js';

export { TimeoutPolicy, withTimeout } from './timeout.js';
export type { TimeoutEvents, TimeoutOptions } from './timeout.js';

export { FallbackPolicy, withFallback } from './fallback.js';
export type { FallbackEvents, FallbackFunction, FallbackOptions } from './fallback.js';

export { MemoryCache, withCacheFallback } from './cache.js';
export type { CacheFallbackOptions, CacheStore, MemoryCacheOptions } from './cache.js';

export {
  BulkheadRejectedError,
  CircuitOpenError,
  ResilienceError,
  TimeoutError,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isResilienceError,
  isTimeoutError,
} from './errors.js';
export type { BulkheadRejectionReason, CircuitOpenReason } from './errors.js';

export { systemClock } from './clock.js';
export type { Clock } from './clock.js';

export type { Listener, Unsubscribe } from './events.js';

export { MetricsRegistry } from './metrics.js';
export type { CallSample, LatencySnapshot, MetricsRegistryOptions, MetricsSnapshot, PolicyKind, PolicyMetricsSnapshot, TrackOptions } from './metrics.js';

export { logPolicyEvents } from './log.js';
export type { LogLevel, LogPolicyEventsOptions, LoggedEvent, PolicyLogFields, PolicyLogger } from './log.js';
