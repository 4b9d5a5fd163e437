import type { LayerCall, PolicyDescription } from '../engine/contract.js';
import { LayerPolicy } from '../engine/policy.js';
import type { CircuitOpenError } from '../errors.js';
import type { Listener, Unsubscribe } from '../events.js';
import { BREAKER_GAUGES, BREAKER_LOGS } from '../shared/metric-catalog.js';
import { reportUncaught } from '../shared/report.js';
import { BreakerSettings } from './options.js';
import { checkSnapshot } from './snapshot.js';
import { BreakerMachine, type Admitted } from './state.js';
import type { CircuitBreakerEvents, CircuitBreakerOptions, CircuitBreakerSnapshot, CircuitBreakerStats, CircuitState } from './types.js';

/** A call's token: its generation alone for a call of the closed state with no slow-call timing (nothing to allocate). */
type Token = number | Admitted;

/** The state machine of a breaker, for its group (a TypeScript-private member: see `PolicyInternals`). */
export function machineOf(breaker: CircuitBreaker): BreakerMachine {
  return (breaker as unknown as { machine: BreakerMachine }).machine;
}

/**
 * Stops calling a dependency that keeps failing, so it can recover and callers fail fast.
 *
 * Closed, it opens after `failureThreshold` consecutive failures, or (with `failureRate` or
 * `slowCall`) when the failure or slow-call rate in a sliding window reaches its threshold.
 * Open, it rejects every call with {@link CircuitOpenError} without running it. After the
 * break duration (`recoveryTimeout`) it turns half-open and lets `halfOpenMaxCalls` trial
 * calls through at once, rejecting every other caller at once; `halfOpenSuccessThreshold`
 * successful trials close it, one failed trial opens it again. Outcomes of calls admitted
 * before a state change are ignored after it. It arms no timer: its state is computed from
 * the clock when read.
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 30_000 });
 * breaker.on('stateChange', ({ from, to, reason }) => log.warn({ from, to, reason }, 'payments circuit'));
 * const receipt = await breaker.execute(({ signal }) => charge(order, { signal }));
 * ```
 */
// The token's type stays out of the declarations (`unknown`): it is the breaker's business alone.
export class CircuitBreaker extends LayerPolicy<unknown> {
  private readonly machine: BreakerMachine;

  constructor(options?: CircuitBreakerOptions) {
    super();
    // A group hands over settings it checked once for all its breakers.
    const settings = options instanceof BreakerSettings ? options : new BreakerSettings(options);
    this.machine = new BreakerMachine(settings);
    const initialState = options instanceof BreakerSettings ? undefined : options?.initialState;
    if (initialState !== undefined) this.machine.load(checkSnapshot('CircuitBreaker initialState', initialState, settings));
    // Values are classified only when asked to: without it, onValue stays as cheap as it was.
    if (settings.isFailureResult !== undefined) this.onValue = this.onResult;
  }

  /** Consecutive failures that open the circuit; `Infinity` when only `failureRate` opens it. */
  get failureThreshold(): number {
    return this.machine.settings.failureThreshold;
  }

  /** The break duration in ms, or the function that gives it. */
  get recoveryTimeout(): number | ((opens: number) => number) {
    return this.machine.settings.recoveryTimeout;
  }

  /** Trials at once while half-open. */
  get halfOpenMaxCalls(): number {
    return this.machine.settings.halfOpenMaxCalls;
  }

  /** Successful trials that close the circuit. */
  get halfOpenSuccessThreshold(): number {
    return this.machine.settings.halfOpenSuccessThreshold;
  }

  /** The name given in the options, if any. */
  get name(): string | undefined {
    return this.machine.settings.name;
  }

  /**
   * The state now. An open circuit whose break has ended reads `'half-open'`, and a half-open
   * one past `halfOpenMaxWait` reads `'open'` (and emits those changes), even when nobody
   * called.
   */
  get state(): CircuitState {
    const machine = this.machine;
    // Stryker disable next-line ConditionalExpression: spares a clock read; catchUp() changes only an open or half-open circuit
    if (machine.current === 'open' || machine.current === 'half-open') machine.catchUp(machine.settings.clock.now());
    return machine.current;
  }

  /**
   * The state with the counts behind it, for dashboards and health checks.
   *
   * @example
   * ```ts
   * const { state, failureRate, retryAfter } = breaker.stats();
   * ```
   */
  stats(): CircuitBreakerStats {
    return this.machine.stats();
  }

  /**
   * The state as plain JSON, for `new CircuitBreaker({ ...options, initialState })` or
   * {@link CircuitBreaker.restore} in this process or another (serverless cold starts, a
   * fleet sharing a store). `JSON.stringify(breaker)` calls it.
   *
   * @example
   * ```ts
   * await store.set('breaker:payments', JSON.stringify(breaker));
   * const saved = await store.get('breaker:payments'); // later, or in another process
   * const restored = new CircuitBreaker({ ...options, initialState: saved === undefined ? undefined : JSON.parse(saved) });
   * ```
   */
  toJSON(): CircuitBreakerSnapshot {
    return this.machine.toJSON();
  }

  /**
   * Replaces the state with a snapshot's (emitting `stateChange` with reason `'restored'` when
   * the state differs). Calls admitted before are ignored when they settle. Throws like
   * `initialState` on a bad or incompatible snapshot, and then changes nothing.
   *
   * @example
   * ```ts
   * const saved = await store.get(`breaker:${host}`);
   * if (saved !== undefined) group.get(host).restore(JSON.parse(saved));
   * ```
   */
  restore(snapshot: CircuitBreakerSnapshot): void {
    this.machine.restore(checkSnapshot('CircuitBreaker restore(snapshot)', snapshot, this.machine.settings));
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof CircuitBreakerEvents>(event: K, listener: Listener<CircuitBreakerEvents[K]>): Unsubscribe {
    return this.machine.emitter().on(event, listener);
  }

  /** Opens the circuit until {@link CircuitBreaker.reset}: every call is rejected (`retryAfter` is `Infinity`). */
  isolate(): void {
    this.machine.transition('isolated', 'manual', undefined);
  }

  /** Closes the circuit and forgets its failures, window and openings, from any state (also ends an isolation). */
  reset(): void {
    this.machine.transition('closed', 'manual', undefined);
  }

  protected override enter(call: LayerCall): unknown {
    const machine = this.machine;
    const trial = machine.current === 'closed' ? false : machine.admission();
    if (typeof trial !== 'boolean') throw trial;
    const generation = machine.generation;
    const timesSlowCalls = machine.settings.slowCallDuration !== undefined;
    // Stryker disable next-line ConditionalExpression: spares an allocation; the object token carries the same generation, as a call that is no trial
    if (!trial && !timesSlowCalls) return generation;
    // A trial counts work in flight: its place is held until the work it started has ended.
    // Stryker disable next-line ConditionalExpression: spares the engine's bookkeeping; released() frees only a trial's place, in its own generation
    if (trial) call.trackWork();
    return { generation, trial, startedAt: timesSlowCalls ? machine.settings.clock.now() : 0, abandoned: false };
  }

  protected override onValue(given: unknown, value: unknown, _call: LayerCall): unknown {
    const token = given as Token;
    try {
      if (typeof token === 'number') this.machine.recordSuccess(token, false, 0);
      else this.machine.recordSuccess(token.generation, token.trial, token.startedAt);
    } catch (internal) {
      reportInternalError(internal);
    }
    return value;
  }

  /** With `isFailureResult`, the breaker's `onValue`: the value is counted as it classifies it, and passed on. */
  private onResult(given: unknown, value: unknown, call: LayerCall): unknown {
    let threw: { readonly thrown: unknown } | undefined;
    try {
      threw = this.machine.recordResult(given as Token, value, call.callerAborted);
    } catch (internal) {
      reportInternalError(internal);
    }
    if (threw !== undefined) throw threw.thrown;
    return value;
  }

  protected override onError(given: unknown, error: unknown, call: LayerCall): never {
    const token = given as Token;
    let outcome = error;
    try {
      // Stryker disable next-line BooleanLiteral: the token made here is dropped after recordError(); nothing reads its abandoned flag
      outcome = this.machine.recordError(typeof token === 'number' ? { generation: token, trial: false, startedAt: 0, abandoned: false } : token, error, call.callerAborted);
    } catch (internal) {
      reportInternalError(internal);
    }
    throw outcome;
  }

  protected override released(given: unknown): void {
    const token = given as Token;
    if (typeof token !== 'number' && token.abandoned) this.machine.trialWorkEnded(token.generation);
  }

  protected describe(): PolicyDescription {
    const machine = this.machine;
    return {
      kind: 'circuit-breaker',
      label: 'circuit breaker',
      name: machine.settings.name,
      refuses: true,
      gauges: BREAKER_GAUGES,
      logs: BREAKER_LOGS,
      readGauges: () => {
        const stats = machine.stats();
        return { state: stats.state, failureRate: stats.failureRate, slowCallRate: stats.slowCallRate };
      },
      on: (event, listener) => this.on(event as keyof CircuitBreakerEvents, listener),
    };
  }
}

/**
 * Reports a failure of the breaker's own bookkeeping: the call it happened in keeps its own
 * outcome, since a bug of the breaker's must not turn a payment that went through into an error.
 */
function reportInternalError(error: unknown): void {
  reportUncaught('bulwark: CircuitBreaker failed to record an outcome; the call keeps its own', error);
}

/** A breaker built on settings already checked (a group's), bypassing the options checks. */
export function breakerWithSettings(settings: BreakerSettings): CircuitBreaker {
  return new CircuitBreaker(settings as CircuitBreakerOptions);
}
