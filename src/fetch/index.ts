/**
 * `bulwark/fetch`: `resilientFetch`, a function with fetch's signature whose calls run through
 * bulwark's own policies, per origin: a total timeout, a retry of transient failures that
 * honours `Retry-After`, a circuit breaker and an attempt timeout, with an optional bulkhead,
 * rate limit and hedging of reads. It takes the core from the `bulwark` entry itself (one
 * engine in a process, never a copy).
 *
 * @module bulwark/fetch
 */
export { resilientFetch } from './client.js';
export type { ResilientFetch } from './client.js';
export { HttpError, isHttpError } from './error.js';
export type { ResilientFetchEvents } from './events.js';
export type { FetchFunction, FetchResponse } from './http.js';
export type {
  FetchBreakerOptions,
  FetchBulkheadOptions,
  FetchHedgeOptions,
  FetchRateLimitOptions,
  FetchRetryOptions,
  ResilientFetchOptions,
} from './options.js';
