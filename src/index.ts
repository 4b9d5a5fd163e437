/**
 * `bulwark`: the policies (circuit breaker, retry, bulkhead, timeout, fallback and cache
 * fallback, rate limiter, hedging, retry budget), `compose` to stack them, their errors and
 * events, the metrics registry and `logPolicyEvents`, and `LayerPolicy` to write a policy of
 * your own.
 *
 * @module bulwark
 */
export { LayerPolicy, compose } from './engine/policy.js';
export type { AlternativeOf } from './engine/policy.js';
export type {
  AbortScope,
  Admission,
  CounterDescription,
  ExecuteOptions,
  ExecutionContext,
  GaugeDescription,
  InnerLayers,
  InnerRun,
  LayerCall,
  LogDescription,
  Policy,
  PolicyDescription,
} from './engine/contract.js';

export { CircuitBreaker, CircuitBreakerGroup } from './circuit-breaker/index.js';
export type {
  CircuitBreakerEvents,
  CircuitBreakerFailureRate,
  CircuitBreakerGroupEvents,
  CircuitBreakerGroupOptions,
  CircuitBreakerOptions,
  CircuitBreakerSlowCall,
  CircuitBreakerSnapshot,
  CircuitBreakerStats,
  CircuitBreakerWindow,
  CircuitBreakerWindowSnapshot,
  CircuitState,
  CircuitStateChangeReason,
} from './circuit-breaker/index.js';

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
  isRefusal,
  isResilienceError,
  isTimeoutError,
  refusal,
} from './errors.js';
export type { BulkheadRejectionReason, CircuitOpenReason } from './errors.js';

export { systemClock } from './shared/clock.js';
export type { Clock } from './shared/clock.js';

export type { Listener, Unsubscribe } from './events.js';

export { MetricsRegistry } from './metrics/index.js';
export type { CallSample, LatencySnapshot, MetricsRegistryOptions, MetricsSnapshot, PolicyKind, PolicyMetricsSnapshot, TrackOptions } from './metrics/index.js';

export { logPolicyEvents } from './log.js';
export type { LogLevel, LogPolicyEventsOptions, LoggedEvent, PolicyLogFields, PolicyLogger } from './log.js';

export { RetryBudget } from './retry-budget.js';
export type { RetryBudgetEvents, RetryBudgetOptions } from './retry-budget.js';
export type { RetryGiveUpReason } from './retry.js';

export { HedgeLostError, HedgePolicy, hedge } from './hedge/index.js';
export type { HedgeBudget, HedgeDelay, HedgeDelayInfo, HedgeEvents, HedgeOptions } from './hedge/index.js';

export { RateLimitedError, RateLimiter, RateLimiterGroup, isRateLimitedError } from './rate-limit/index.js';
export type { RateLimitAlgorithm, RateLimitedReason, RateLimiterEvents, RateLimiterGroupEvents, RateLimiterGroupOptions, RateLimiterOptions } from './rate-limit/index.js';

export type { Outcome } from './outcome.js';
