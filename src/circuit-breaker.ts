import { systemClock, type Clock } from './clock.js';
import { CircuitOpenError, isBulkheadRejectedError, isCircuitOpenError } from './errors.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { SingleLayerPolicy, type Call, type Scope } from './policy.js';
import * as validate from './validate.js';

const isLocalRejection = (error: unknown): boolean => isBulkheadRejectedError(error) || isCircuitOpenError(error);

/** The state of a {@link CircuitBreaker}. */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated';

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /**
   * Consecutive failures that open the circuit; a success resets the count.
   * @default 5
   */
  failureThreshold?: number | undefined;
  /**
   * How long, in ms, the circuit stays open before it lets trial calls through.
   * @default 30_000
   */
  recoveryTimeout?: number | undefined;
  /**
   * How many trial calls run at once while half-open; every other caller is rejected at once.
   * @default 1
   */
  halfOpenMaxCalls?: number | undefined;
  /**
   * Decides whether an error counts as a failure of the dependency. An error it declines
   * (a 404, a validation error) counts as a success: the dependency answered. Never asked
   * about, and never counted: a caller's abort, and a `BulkheadRejectedError` or
   * `CircuitOpenError` from a policy inside this breaker (the call never reached the
   * dependency). If it throws, the call rejects with what it threw and the outcome counts as a
   * failure.
   * @default every error
   */
  isFailure?: ((error: unknown) => boolean) | undefined;
  /**
   * The source of time. The breaker arms no timer: it reads the clock when asked.
   * @default systemClock
   */
  clock?: Clock | undefined;
  /** A name for logs and metrics. */
  name?: string | undefined;
}

/** Events of a {@link CircuitBreaker}. */
export interface CircuitBreakerEvents {
  /** The state changed; listeners see the events in the order the changes happened. */
  stateChange: { readonly from: CircuitState; readonly to: CircuitState };
  /** A call through the breaker succeeded (or failed with an error `isFailure` declined). */
  success: { readonly state: CircuitState };
  /** A call through the breaker failed and was counted. */
  failure: { readonly error: unknown; readonly state: CircuitState; readonly consecutiveFailures: number };
  /** The breaker refused a call without running it. */
  rejected: { readonly error: CircuitOpenError };
}

/**
 * Stops calling a dependency that keeps failing, so it can recover and callers fail fast.
 *
 * Closed, it counts consecutive failures; at `failureThreshold` it opens. Open, it rejects
 * every call with {@link CircuitOpenError} without running it. After `recoveryTimeout` ms it
 * turns half-open and lets `halfOpenMaxCalls` trial calls through, rejecting every other
 * caller at once; a trial success closes it, a trial failure opens it again for another
 * `recoveryTimeout`. Outcomes of calls admitted before a state change are ignored after it.
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 30_000 });
 * breaker.on('stateChange', ({ from, to }) => log.warn({ from, to }, 'payments circuit'));
 * const receipt = await breaker.execute(() => payments.charge(order));
 * ```
 */
export class CircuitBreaker extends SingleLayerPolicy {
  readonly failureThreshold: number;
  readonly recoveryTimeout: number;
  readonly halfOpenMaxCalls: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  /** @internal */
  readonly abortsWork = false;
  private readonly isFailure: ((error: unknown) => boolean) | undefined;
  private readonly clock: Clock;
  private readonly events = new Emitter<CircuitBreakerEvents>(['stateChange', 'success', 'failure', 'rejected']);
  private current: CircuitState = 'closed';
  /** Bumped at every state change: an outcome admitted under an older generation is ignored. */
  private generation = 0;
  private consecutiveFailures = 0;
  /** When the open circuit lets trials through (clock time). */
  private halfOpenAt = 0;
  private trialsInFlight = 0;

  constructor(options?: CircuitBreakerOptions) {
    super();
    const opts = validate.options('CircuitBreaker', options);
    this.failureThreshold = opts.failureThreshold === undefined ? 5 : validate.count('CircuitBreaker failureThreshold', opts.failureThreshold, 1);
    this.recoveryTimeout = opts.recoveryTimeout === undefined ? 30_000 : validate.duration('CircuitBreaker recoveryTimeout', opts.recoveryTimeout);
    this.halfOpenMaxCalls = opts.halfOpenMaxCalls === undefined ? 1 : validate.count('CircuitBreaker halfOpenMaxCalls', opts.halfOpenMaxCalls, 1);
    this.isFailure = opts.isFailure === undefined ? undefined : validate.fn('CircuitBreaker isFailure', opts.isFailure);
    this.clock = opts.clock === undefined ? systemClock : validate.clock('CircuitBreaker clock', opts.clock);
    this.name = opts.name === undefined ? undefined : validate.text('CircuitBreaker name', opts.name);
  }

  /**
   * The state now. An open circuit whose `recoveryTimeout` has passed reads `'half-open'`
   * (and emits that change) even when nobody called.
   */
  get state(): CircuitState {
    if (this.current === 'open' && this.clock.now() >= this.halfOpenAt) this.transition('half-open');
    return this.current;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof CircuitBreakerEvents>(event: K, listener: Listener<CircuitBreakerEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** Opens the circuit until {@link CircuitBreaker.reset}: every call is rejected (`retryAfter` is `Infinity`). */
  isolate(): void {
    this.transition('isolated');
  }

  /** Closes the circuit and forgets its failures, from any state (also ends an isolation). */
  reset(): void {
    this.transition('closed');
  }

  /** @internal */
  run(call: Call, scope: Scope, index: number): Promise<unknown> {
    switch (this.current) {
      case 'closed':
        return this.admit(call, scope, index, false);
      case 'open': {
        const wait = this.halfOpenAt - this.clock.now();
        if (wait > 0) return this.refuse(new CircuitOpenError(wait, 'open'));
        this.transition('half-open');
        return this.run(call, scope, index);
      }
      case 'half-open':
        if (this.trialsInFlight >= this.halfOpenMaxCalls) return this.refuse(new CircuitOpenError(0, 'half-open'));
        this.trialsInFlight++;
        return this.admit(call, scope, index, true);
      default:
        return this.refuse(new CircuitOpenError(Infinity, 'isolated'));
    }
  }

  private refuse(error: CircuitOpenError): Promise<never> {
    if (this.events.has('rejected')) this.events.emit('rejected', { error });
    return Promise.reject(error);
  }

  private async admit(call: Call, scope: Scope, index: number, trial: boolean): Promise<unknown> {
    const generation = this.generation;
    let value: unknown;
    try {
      value = await call.next(index + 1, scope);
    } catch (error) {
      this.onError(call, generation, trial, error);
      throw error;
    }
    this.onOutcome(generation, trial, undefined, false);
    return value;
  }

  private onError(call: Call, generation: number, trial: boolean, error: unknown): void {
    if (call.callerAborted || isLocalRejection(error)) {
      // The caller gave up, or a bulkhead or breaker inside this one refused the call before it
      // reached the dependency: neither says anything of the dependency's health, and counting
      // it either way would lie (a burst of load would open a breaker on a healthy service).
      // Free the trial slot for another caller.
      if (trial && generation === this.generation) this.trialsInFlight--;
      return;
    }
    let failed = true;
    if (this.isFailure !== undefined) {
      try {
        failed = this.isFailure(error) !== false;
      } catch (thrown) {
        this.onOutcome(generation, trial, thrown, true);
        throw thrown;
      }
    }
    this.onOutcome(generation, trial, error, failed);
  }

  private onOutcome(generation: number, trial: boolean, error: unknown, failed: boolean): void {
    if (generation !== this.generation) return; // admitted before a state change: stale news
    if (trial) this.trialsInFlight--;
    if (!failed) {
      this.consecutiveFailures = 0;
      if (this.events.has('success')) this.events.emit('success', { state: this.current });
      // A listener that called isolate() or reset() has the last word.
      if (trial && generation === this.generation) this.transition('closed');
      return;
    }
    this.consecutiveFailures++;
    if (this.events.has('failure')) {
      this.events.emit('failure', { error, state: this.current, consecutiveFailures: this.consecutiveFailures });
      if (generation !== this.generation) return;
    }
    if (trial || this.consecutiveFailures >= this.failureThreshold) this.transition('open');
  }

  private transition(to: CircuitState): void {
    const from = this.current;
    if (to === 'open') this.halfOpenAt = this.clock.now() + this.recoveryTimeout;
    if (to === 'closed') this.consecutiveFailures = 0;
    this.trialsInFlight = 0;
    if (from === to) return;
    this.current = to;
    this.generation++;
    if (this.events.has('stateChange')) this.events.emit('stateChange', { from, to });
  }
}
