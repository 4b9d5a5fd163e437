/**
 * A brand shared by every copy of bulwark loaded in one process: `Symbol.for` returns the
 * same symbol everywhere, so the `is…Error` guards recognise an error thrown by another copy
 * (two versions in one dependency tree), where `instanceof` fails. The brand, rather than
 * `name` alone, keeps a DOMException named "TimeoutError" from passing for bulwark's.
 */
const errorKind = Symbol.for('bulwark.errorKind');

/** The kinds of bulwark's own errors; a policy of the core with an error of its own adds its name here. */
export type ErrorKind = 'ResilienceError' | 'CircuitOpenError' | 'BulkheadRejectedError' | 'TimeoutError' | 'RateLimitedError';

/** The base of every error a bulwark policy creates itself. */
export class ResilienceError extends Error {
  /** `'ResilienceError'` here; each subclass has its own. Test with {@link isResilienceError}, which knows one from another copy of bulwark. */
  override name: string = 'ResilienceError';
}

/** Why a circuit breaker refused a call. */
export type CircuitOpenReason = 'open' | 'half-open' | 'isolated';

/**
 * A circuit breaker refused the call without running it.
 *
 * @example
 * ```ts
 * try { await breaker.execute(callInventory); }
 * catch (error) {
 *   if (isCircuitOpenError(error)) res.setHeader('Retry-After', Math.ceil(error.retryAfter / 1000));
 * }
 * ```
 */
export class CircuitOpenError extends ResilienceError {
  /** Always `'CircuitOpenError'`. Test with {@link isCircuitOpenError}, which knows one from another copy of bulwark. */
  override readonly name = 'CircuitOpenError' as const;
  /**
   * Milliseconds until the breaker lets a trial call through: exact while it is open, `0`
   * while it is half-open with every trial slot taken, `Infinity` while it is isolated.
   */
  readonly retryAfter: number;
  /** The breaker's state when it refused the call. */
  readonly state: CircuitOpenReason;

  constructor(retryAfter: number, state: CircuitOpenReason = 'open') {
    super(
      state === 'isolated'
        ? 'Circuit is isolated: calls are refused until reset()'
        : state === 'half-open'
          ? 'Circuit is half-open and every trial slot is taken'
          : `Circuit is open: next trial in ${Math.ceil(retryAfter)} ms`,
    );
    this.retryAfter = retryAfter;
    this.state = state;
  }
}

/** Why a bulkhead refused a call. */
export type BulkheadRejectionReason = 'full' | 'queue-timeout';

/** A bulkhead refused the call: every slot and queue place was taken, or the wait timed out. */
export class BulkheadRejectedError extends ResilienceError {
  /** Always `'BulkheadRejectedError'`. Test with {@link isBulkheadRejectedError}, which knows one from another copy of bulwark. */
  override readonly name = 'BulkheadRejectedError' as const;
  /** `'full'`: no slot and no queue place; `'queue-timeout'`: waited `queueTimeout` ms in the queue. */
  readonly reason: BulkheadRejectionReason;
  /** The bulkhead's `maxConcurrent`. */
  readonly maxConcurrent: number;
  /** The bulkhead's `maxQueue`. */
  readonly maxQueue: number;

  constructor(reason: BulkheadRejectionReason, maxConcurrent: number, maxQueue: number) {
    super(
      reason === 'full'
        ? `Bulkhead is full: ${maxConcurrent} running and ${maxQueue} queued`
        : 'Bulkhead queue timeout: no slot became free in time',
    );
    this.reason = reason;
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
  }
}

/** A `withTimeout` deadline passed before the call settled. */
export class TimeoutError extends ResilienceError {
  /** Always `'TimeoutError'`. Test with {@link isTimeoutError}, which knows one from another copy of bulwark. */
  override readonly name = 'TimeoutError' as const;
  /** The deadline that passed, in milliseconds. */
  readonly timeout: number;

  constructor(timeout: number) {
    super(`Operation timed out after ${timeout} ms`);
    this.timeout = timeout;
  }
}

/**
 * Gives every error of `type` its kind, recognised across copies of bulwark by the `is…Error`
 * guards (see {@link hasKind}). On the prototype, not the instances: the brand stays out of
 * `console.log` and JSON.
 */
export function brandKind(type: abstract new (...args: never[]) => Error, kind: ErrorKind): void {
  Object.defineProperty(type.prototype, errorKind, { value: kind });
}

brandKind(ResilienceError, 'ResilienceError');
brandKind(CircuitOpenError, 'CircuitOpenError');
brandKind(BulkheadRejectedError, 'BulkheadRejectedError');
brandKind(TimeoutError, 'TimeoutError');

/**
 * The brand of a refusal: an error a policy answered with instead of running the call (an open
 * circuit, a full bulkhead, a rate limit). `Symbol.for`, so refusals of another copy of bulwark
 * (or of a policy written against another copy) are recognised too.
 */
const refusalBrand = Symbol.for('bulwark.refusal');

for (const type of [CircuitOpenError, BulkheadRejectedError]) {
  Object.defineProperty(type.prototype, refusalBrand, { value: true });
}

/**
 * Brands `error` as a refusal and returns it: the call never reached the dependency, so breakers
 * do not count it and retries do not repeat it by default. Throw it from a policy's `enter`
 * (or `refuse` a waiting call with it). The brand is a hidden property: the error is not
 * otherwise changed, and a frozen error is branded through its own prototype's copy.
 *
 * @example
 * ```ts
 * class TooManyInFlight extends Error {}
 * throw refusal(new TooManyInFlight('limit of 10 reached for tenant-a'));
 * ```
 */
export function refusal<E extends object>(error: E): E {
  if (Object.isExtensible(error)) Object.defineProperty(error, refusalBrand, { value: true, configurable: true });
  else refusedObjects.add(error);
  return error;
}

/** `refusal(error)` for an object; a primitive thrown as a refusal is passed on as it is (it cannot carry a brand). */
export function brandRefusal(error: unknown): unknown {
  if (isRefusal(error)) return error; // the usual case: a breaker's or a bulkhead's own refusal
  return (typeof error === 'object' && error !== null) || typeof error === 'function' ? refusal(error as object) : error;
}

/** Refusals that could not carry the brand themselves (frozen or sealed errors). */
const refusedObjects = new WeakSet<object>();

/**
 * True for a refusal — an error a policy answered with instead of running the call
 * (`CircuitOpenError`, `BulkheadRejectedError`, or one branded with {@link refusal}) — from
 * this copy of bulwark or another. Breakers do not count refusals and retries do not repeat
 * them by default.
 */
export function isRefusal(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  return (error as { [refusalBrand]?: unknown })[refusalBrand] === true || refusedObjects.has(error);
}

/** True for an error of `kind`, from this copy of bulwark or another. */
export function hasKind(error: unknown, kind: ErrorKind): boolean {
  return typeof error === 'object' && error !== null && (error as { [errorKind]?: unknown })[errorKind] === kind;
}

/** True for any error a bulwark policy created, from this copy of bulwark or another. */
export function isResilienceError(error: unknown): error is ResilienceError {
  return error instanceof ResilienceError || (typeof error === 'object' && error !== null && errorKind in error);
}

/** True for a {@link CircuitOpenError}, from this copy of bulwark or another. */
export function isCircuitOpenError(error: unknown): error is CircuitOpenError {
  return error instanceof CircuitOpenError || hasKind(error, 'CircuitOpenError');
}

/** True for a {@link BulkheadRejectedError}, from this copy of bulwark or another. */
export function isBulkheadRejectedError(error: unknown): error is BulkheadRejectedError {
  return error instanceof BulkheadRejectedError || hasKind(error, 'BulkheadRejectedError');
}

/** True for a bulwark {@link TimeoutError} (not a DOMException of the same name), from any copy of bulwark. */
export function isTimeoutError(error: unknown): error is TimeoutError {
  return error instanceof TimeoutError || hasKind(error, 'TimeoutError');
}

export { withoutStack } from './shared/stack.js';
