/**
 * `bulwark/redis`: a rate limit, a concurrency cap and a circuit breaker shared by every
 * replica through Redis (ioredis, iovalkey or node-redis). While Redis is down each decides
 * locally, or, for the limiter and the bulkhead with `failClosed`, refuses calls.
 *
 * @module bulwark/redis
 */
export { RedisRateLimiter } from './limiter.js';
export type { RedisRateLimiterEvents, RedisRateLimiterOptions } from './limiter.js';
export { RedisStoreError } from './store.js';
export type { RedisClientLike } from './store.js';
export { RedisBulkhead } from './bulkhead.js';
export type { RedisBulkheadEvents, RedisBulkheadOptions } from './bulkhead-options.js';
export { RedisCircuitBreaker } from './breaker.js';
export type { RedisCircuitBreakerEvents, RedisCircuitBreakerOptions } from './breaker-options.js';
export type { RedisSubscriberLike } from './subscriber.js';
