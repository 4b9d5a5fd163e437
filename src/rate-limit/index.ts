export { RateLimiter } from './limiter.js';
export type { RateLimiterEvents } from './limiter.js';
export { RateLimiterGroup } from './group.js';
export type { RateLimiterGroupEvents, RateLimiterGroupOptions } from './group.js';
export { RateLimitedError, isRateLimitedError } from './error.js';
export type { RateLimitedReason } from './error.js';
export type { RateLimitAlgorithm, RateLimiterOptions } from './options.js';
