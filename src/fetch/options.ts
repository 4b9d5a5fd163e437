/**
 * The options of `resilientFetch`, their defaults (those of Microsoft.Extensions.Http.Resilience's
 * standard handler), and their checks. Each policy's own options are checked by that policy,
 * built once here for the purpose; the keys resilientFetch sets itself are refused.
 */
import {
  Bulkhead,
  CircuitBreakerGroup,
  RateLimiter,
  hedge,
  retryWithBackoff,
  type BulkheadOptions,
  type CircuitBreakerOptions,
  type Clock,
  type HedgeOptions,
  type MetricsRegistry,
  type RateLimiterOptions,
  type RetryOptions,
} from 'bulwark';
import * as validate from '../shared/validate.js';
import { isTransientStatus, type FetchFunction, type FetchResponse } from './http.js';
import { isTransientResponse } from './transient.js';

/** Retry options of a resilient fetch: those of `retryWithBackoff`, but for what it sets itself. */
export type FetchRetryOptions = Omit<RetryOptions, 'retryOnResult' | 'delay' | 'name' | 'clock'>;
/** Breaker options of a resilient fetch: those of `CircuitBreaker`, but for what it sets itself. */
export type FetchBreakerOptions = Omit<CircuitBreakerOptions, 'isFailureResult' | 'name' | 'clock' | 'initialState'>;
/** Hedging options of a resilient fetch: those of `hedge`, but for what it sets itself. */
export type FetchHedgeOptions = Omit<HedgeOptions, 'hedgeOnResult' | 'name' | 'clock'>;
/** Rate limit options of a resilient fetch (one limiter per origin). */
export type FetchRateLimitOptions = Omit<RateLimiterOptions, 'name' | 'clock'>;
/** Bulkhead options of a resilient fetch (one bulkhead per origin). */
export type FetchBulkheadOptions = Omit<BulkheadOptions, 'name' | 'clock'>;

/** Options of {@link resilientFetch}. */
export interface ResilientFetchOptions<F extends FetchFunction = typeof fetch> {
  /**
   * The fetch to run: Node's global one, undici's, or any function of its shape. The global
   * `fetch` is looked up on every call, so a fetch installed later (a test's) is the one used.
   * @default globalThis.fetch
   */
  fetch?: F | undefined;
  /**
   * The longest a call may take, in ms, every attempt, wait and retry included; then it
   * rejects with a `TimeoutError`. A `Retry-After` that would outlast it is not waited for:
   * the response is returned at once. `Infinity`: none.
   * @default 30_000
   */
  totalTimeout?: number | undefined;
  /**
   * The longest one attempt may take, in ms, until its response headers arrive; then it is
   * aborted (its own signal) and counts as a transient failure. `Infinity`: none.
   * @default 10_000
   */
  attemptTimeout?: number | undefined;
  /**
   * The retry of transient failures (see `transient`), as `retryWithBackoff` takes it, or
   * `false` for none. Your options are laid over the defaults key by key.
   * @default { maxRetries: 3, baseDelay: 2_000 } (exponential, proportional jitter, at most 30 s)
   */
  retry?: FetchRetryOptions | false | undefined;
  /**
   * The circuit breaker of each origin, as `CircuitBreaker` takes it, or `false` for none. A
   * transient response counts as a failure. Your options are laid over the defaults key by key.
   * @default { failureRate: { threshold: 0.1, minimumCalls: 100, window: { duration: 30_000 } }, recoveryTimeout: 5_000 }
   */
  breaker?: FetchBreakerOptions | false | undefined;
  /**
   * Hedged reads: a GET, HEAD, OPTIONS or TRACE with no answer after `delay` ms is sent again,
   * and the first good answer wins (the others are aborted and their bodies cancelled). A
   * transient response starts the next hedge at once, unless it carries a `Retry-After`.
   * @default none: no request is hedged
   */
  hedge?: FetchHedgeOptions | undefined;
  /**
   * A rate limit per origin, on requests sent (each attempt and hedge takes a permit), as
   * `RateLimiter` takes it.
   * @default none
   */
  rateLimit?: FetchRateLimitOptions | undefined;
  /**
   * A bound on the calls in flight per origin, as `Bulkhead` takes it.
   * @default none
   */
  bulkhead?: FetchBulkheadOptions | undefined;
  /**
   * Which responses are transient (retried, hedged, counted by the breaker): a list of
   * statuses, or a function of the response that answers at once. Network errors and attempt
   * timeouts are always transient.
   * @default 408, 429 and every 5xx
   */
  transient?: readonly number[] | ((response: Awaited<ReturnType<F>>) => boolean) | undefined;
  /**
   * Retry POST, PATCH and other non-idempotent methods too. Without it they are retried only
   * when the request has an `Idempotency-Key` header (the server deduplicates them).
   * @default false
   */
  retryNonIdempotent?: boolean | undefined;
  /**
   * Throw an `HttpError` (carrying the status and the unread response) instead of returning a
   * transient response that is the call's answer. Other statuses are always returned.
   * @default false
   */
  throwOnTransient?: boolean | undefined;
  /**
   * The longest `Retry-After` waited for, in ms; a response asking for more is returned at
   * once, never retried earlier than it asks.
   * @default 60_000
   */
  maxRetryAfter?: number | undefined;
  /**
   * How many origins the client keeps a breaker and policies for (the metrics' label values).
   * Beyond it, the least recently used origin whose circuit is closed is forgotten; an origin
   * whose circuit is open is never forgotten. `Infinity`: no bound.
   * @default 100
   */
  maxOrigins?: number | undefined;
  /**
   * The client's name: each origin's policies are named `<name>:<origin>` in metrics and logs
   * (its timeouts `<name>:<origin>:total` and `<name>:<origin>:attempt`).
   * @default 'fetch'
   */
  name?: string | undefined;
  /**
   * A registry that tracks each origin's policies as the client first calls it, and forgets
   * them when the origin is forgotten. `logPolicyEvents(registry, logger)` then writes their
   * lines, those of the client included (method, origin, status).
   * @default none
   */
  metrics?: MetricsRegistry | undefined;
  /**
   * The source of time of every policy.
   * @default systemClock
   */
  clock?: Clock | undefined;
}

const OPTION_KEYS: readonly (keyof ResilientFetchOptions)[] = [
  'fetch', 'totalTimeout', 'attemptTimeout', 'retry', 'breaker', 'hedge', 'rateLimit', 'bulkhead', 'transient',
  'retryNonIdempotent', 'throwOnTransient', 'maxRetryAfter', 'maxOrigins', 'name', 'metrics', 'clock',
];

/** Polly's, Microsoft.Extensions.Http.Resilience's, ky's and got's names, by ours. */
const PEER_NAMES: validate.PeerNames = {
  TotalRequestTimeout: '"totalTimeout"',
  totalRequestTimeout: '"totalTimeout"',
  AttemptTimeout: '"attemptTimeout"',
  timeout: '"totalTimeout" (the whole call) or "attemptTimeout" (one attempt)',
  Retry: '"retry"',
  retries: '"retry": { maxRetries }',
  limit: '"retry": { maxRetries }',
  CircuitBreaker: '"breaker"',
  circuitBreaker: '"breaker"',
  Hedging: '"hedge"',
  hedging: '"hedge"',
  RateLimiter: '"rateLimit"',
  rateLimiter: '"rateLimit"',
  concurrency: '"bulkhead": { maxConcurrent }',
  statusCodes: '"transient" (a list of statuses)',
  shouldHandle: '"transient"',
  throwHttpErrors: '"throwOnTransient"',
  methods: '"retryNonIdempotent" (GET, HEAD, OPTIONS, TRACE, PUT and DELETE are retried)',
  maxRetryAfterDelay: '"maxRetryAfter"',
  ShouldRetryAfterHeader: 'none: Retry-After is always honoured, up to "maxRetryAfter"',
};

/** What a call needs of the options, checked, with every default applied. */
export interface Settings {
  readonly fetch: FetchFunction | undefined;
  readonly totalTimeout: number;
  readonly attemptTimeout: number;
  readonly retry: FetchRetryOptions | undefined;
  readonly breakers: CircuitBreakerGroup | undefined;
  readonly hedge: FetchHedgeOptions | undefined;
  readonly rateLimit: FetchRateLimitOptions | undefined;
  readonly bulkhead: FetchBulkheadOptions | undefined;
  readonly isTransient: (response: FetchResponse) => boolean;
  /** True when `isTransient` is the user's own function (its answers are checked). */
  readonly customTransient: boolean;
  readonly retryNonIdempotent: boolean;
  readonly throwOnTransient: boolean;
  readonly maxRetryAfter: number;
  readonly maxOrigins: number;
  readonly name: string;
  readonly metrics: MetricsRegistry | undefined;
  readonly clock: Clock | undefined;
}

const DEFAULT_RETRY: FetchRetryOptions = { maxRetries: 3, baseDelay: 2_000 };
const DEFAULT_BREAKER: FetchBreakerOptions = { failureRate: { threshold: 0.1, minimumCalls: 100, window: { duration: 30_000 } }, recoveryTimeout: 5_000 };

/** Checks `options` and applies the defaults; throws a TypeError or RangeError naming the option. */
export function settingsOf(options: ResilientFetchOptions<FetchFunction> | undefined): Settings {
  const opts = validate.options('resilientFetch', options, OPTION_KEYS, PEER_NAMES);
  const clock = opts.clock === undefined ? undefined : validate.clock('resilientFetch clock', opts.clock);
  const retry = opts.retry === false ? undefined : { ...DEFAULT_RETRY, ...own('retry', opts.retry, ['retryOnResult', 'delay', 'name', 'clock']) };
  // Built once to check them: each origin gets policies of its own, built the same way.
  if (retry !== undefined) retryWithBackoff(retry);
  const hedgeOptions = opts.hedge === undefined ? undefined : own('hedge', opts.hedge, ['hedgeOnResult', 'name', 'clock']);
  if (hedgeOptions !== undefined) hedge(hedgeOptions);
  const rateLimit = opts.rateLimit === undefined ? undefined : own('rateLimit', opts.rateLimit, ['name', 'clock']);
  if (rateLimit !== undefined) new RateLimiter(rateLimit as RateLimiterOptions);
  const bulkhead = opts.bulkhead === undefined ? undefined : own('bulkhead', opts.bulkhead, ['name', 'clock']);
  if (bulkhead !== undefined) new Bulkhead(bulkhead as BulkheadOptions);
  const maxOrigins = opts.maxOrigins === undefined ? 100 : validate.count('resilientFetch maxOrigins', opts.maxOrigins, 1, true);
  const transient = transientOption(opts.transient);
  return {
    fetch: opts.fetch === undefined ? undefined : validate.fn('resilientFetch fetch', opts.fetch),
    totalTimeout: opts.totalTimeout === undefined ? 30_000 : validate.duration('resilientFetch totalTimeout', opts.totalTimeout, true),
    attemptTimeout: opts.attemptTimeout === undefined ? 10_000 : validate.duration('resilientFetch attemptTimeout', opts.attemptTimeout, true),
    retry,
    breakers: opts.breaker === false ? undefined : breakerGroup(opts.breaker, maxOrigins, clock),
    hedge: hedgeOptions,
    rateLimit,
    bulkhead,
    isTransient: transient.isTransient,
    customTransient: transient.custom,
    retryNonIdempotent: opts.retryNonIdempotent === undefined ? false : validate.boolean('resilientFetch retryNonIdempotent', opts.retryNonIdempotent),
    throwOnTransient: opts.throwOnTransient === undefined ? false : validate.boolean('resilientFetch throwOnTransient', opts.throwOnTransient),
    maxRetryAfter: opts.maxRetryAfter === undefined ? 60_000 : validate.span('resilientFetch maxRetryAfter', opts.maxRetryAfter),
    maxOrigins,
    name: opts.name === undefined ? 'fetch' : nonEmpty(validate.text('resilientFetch name', opts.name)),
    metrics: opts.metrics === undefined ? undefined : registryOption(opts.metrics),
    clock,
  };
}

/** A policy's options for resilientFetch: an object without the keys resilientFetch sets itself. */
function own<T extends object>(option: string, value: T | undefined, reserved: readonly string[]): T {
  if (value === undefined) return {} as T;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`resilientFetch ${option} must be an object${option === 'retry' || option === 'breaker' ? ' or false' : ''}, got ${validate.show(value)}`);
  }
  for (const key of reserved) {
    if (Object.hasOwn(value, key)) throw new TypeError(`resilientFetch ${option}.${key} is set by resilientFetch itself (${RESERVED_WHY[key] ?? 'from its own options'})`);
  }
  return value;
}

const RESERVED_WHY: Readonly<Record<string, string>> = {
  name: 'each origin\'s policies are named "<name>:<origin>": give resilientFetch a "name"',
  clock: 'give resilientFetch a "clock"',
  retryOnResult: 'from "transient"',
  isFailureResult: 'from "transient"',
  hedgeOnResult: 'from "transient"',
  delay: 'from Retry-After; the backoff is "baseDelay", "maxDelay", "exponentialBase" and "jitter"',
  initialState: 'one breaker per origin: restore one with client.breakers.get(origin).restore(snapshot)',
};

function breakerGroup(options: FetchBreakerOptions | undefined, maxOrigins: number, clock: Clock | undefined): CircuitBreakerGroup {
  const merged: CircuitBreakerOptions = { ...DEFAULT_BREAKER, ...own('breaker', options, ['isFailureResult', 'name', 'clock', 'initialState']) };
  if (clock !== undefined) merged.clock = clock;
  return new CircuitBreakerGroup({ ...merged, isFailureResult: isTransientResponse }, { maxKeys: maxOrigins });
}

function transientOption(value: unknown): { isTransient: (response: FetchResponse) => boolean; custom: boolean } {
  // Stryker disable next-line BooleanLiteral: checking a boolean answer for a promise returns it as it is
  if (value === undefined) return { isTransient: defaultTransient, custom: false };
  if (typeof value === 'function') return { isTransient: value as (response: FetchResponse) => boolean, custom: true };
  if (Array.isArray(value)) {
    for (const status of value) {
      if (!Number.isInteger(status) || status < 100 || status > 999) throw new RangeError(`resilientFetch transient must list HTTP statuses (whole numbers from 100 to 999), got ${validate.show(status)}`);
    }
    const statuses = new Set<number>(value as number[]);
    // Stryker disable next-line BooleanLiteral: checking a boolean answer for a promise returns it as it is
    return { isTransient: (response) => statuses.has(response.status), custom: false };
  }
  throw new TypeError(`resilientFetch transient must be a list of statuses or a function of the response, got ${validate.show(value)}`);
}

function defaultTransient(response: FetchResponse): boolean {
  return isTransientStatus(response.status);
}

function nonEmpty(name: string): string {
  if (name === '') throw new RangeError('resilientFetch name must not be empty');
  return name;
}

/** A MetricsRegistry, from this copy of bulwark or another (checked by shape, so the registry's code stays out of a bundle that does not use it). */
function registryOption(value: unknown): MetricsRegistry {
  if (typeof (value as { track?: unknown } | null)?.track === 'function' && typeof (value as { snapshot?: unknown }).snapshot === 'function') return value as MetricsRegistry;
  throw new TypeError(`resilientFetch metrics must be a MetricsRegistry, got ${validate.show(value)}`);
}
