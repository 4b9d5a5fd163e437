export { CircuitBreaker } from './breaker.js';
export { CircuitBreakerGroup } from './group.js';
export type { CircuitBreakerGroupEvents, CircuitBreakerGroupOptions } from './group.js';
export type {
  CircuitBreakerEvents,
  CircuitBreakerFailureRate,
  CircuitBreakerOptions,
  CircuitBreakerSlowCall,
  CircuitBreakerSnapshot,
  CircuitBreakerStats,
  CircuitBreakerWindow,
  CircuitBreakerWindowSnapshot,
  CircuitState,
  CircuitStateChangeReason,
} from './types.js';
