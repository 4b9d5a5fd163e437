/**
 * The circuit breaker's state machine: admission, outcomes, the changes time makes, and
 * snapshots. It reads time only from its settings' clock and knows nothing of the engine, so
 * it is tested with clock readings alone; `CircuitBreaker` adapts it to a stack.
 */
import { CircuitOpenError, isRefusal, withoutStack, type CircuitOpenReason } from '../errors.js';
import { Emitter } from '../events.js';
import { reportUncaught, synchronousAnswer, watchReturned } from '../shared/report.js';
import * as validate from '../shared/validate.js';
import { DEFAULT_HALF_OPEN_MAX_WAIT, DEFAULT_RECOVERY_TIMEOUT, SNAPSHOT_VERSION, type BreakerSettings } from './options.js';
import type { CheckedSnapshot } from './snapshot.js';
import type { CircuitBreakerEvents, CircuitBreakerSnapshot, CircuitBreakerStats, CircuitState, CircuitStateChangeReason } from './types.js';
import { createWindow, type OutcomeWindow, type WindowShape } from './window.js';

/** What an admitted call keeps until it settles (a plain generation number when closed and untimed). */
export interface Admitted {
  readonly generation: number;
  readonly trial: boolean;
  /** Clock time it started, when slow calls are timed; 0 otherwise. */
  readonly startedAt: number;
  /**
   * Set when its caller gave up or a policy inside refused it: the outcome is not counted, and
   * a trial's place is freed once the work it started has ended.
   */
  abandoned: boolean;
}

const EVENT_NAMES: readonly (keyof CircuitBreakerEvents)[] = ['stateChange', 'success', 'failure', 'rejected'];

/** The state of one circuit breaker. */
export class BreakerMachine {
  readonly settings: BreakerSettings;
  /** Runs after every state change, before the events: the bookkeeping of a group. It must not throw. */
  onTransition: ((from: CircuitState, to: CircuitState, reason: CircuitStateChangeReason) => void) | undefined = undefined;
  /** Made on the first `on()`, so a breaker nobody listens to does not pay for it. */
  events: Emitter<CircuitBreakerEvents> | undefined = undefined;
  /** The state as last computed, without applying what time changed since. */
  current: CircuitState = 'closed';
  /** Bumped at every state change: an outcome admitted under an older generation is ignored. */
  generation = 0;
  private consecutiveFailures = 0;
  private consecutiveOpens = 0;
  /** When it last opened or was isolated (clock time); undefined while closed. */
  private openedAt: number | undefined = undefined;
  /** When the open circuit lets trials through (clock time). */
  private halfOpenAt = 0;
  /** The break duration of the current opening. */
  private breakDuration = 0;
  private trialsInFlight = 0;
  private trialSuccesses = 0;
  /** When the first trial of this half-open period started; `halfOpenMaxWait` counts from it. */
  private firstTrialAt: number | undefined = undefined;
  /** Made on the first recorded outcome, when a rate needs one. */
  private window: OutcomeWindow | undefined = undefined;

  constructor(settings: BreakerSettings) {
    this.settings = settings;
  }

  emitter(): Emitter<CircuitBreakerEvents> {
    return (this.events ??= new Emitter<CircuitBreakerEvents>(EVENT_NAMES));
  }

  /** The state with the counts behind it (see `CircuitBreaker.stats`). */
  stats(): CircuitBreakerStats {
    const now = this.settings.clock.now();
    this.catchUp(now);
    const window = this.window;
    window?.advance(now);
    const calls = window?.calls ?? 0;
    const failures = window?.failures ?? 0;
    const slowCalls = window?.slowCalls ?? 0;
    const state = this.current;
    return {
      state,
      calls,
      failures,
      slowCalls,
      failureRate: calls === 0 ? 0 : failures / calls,
      slowCallRate: calls === 0 ? 0 : slowCalls / calls,
      consecutiveFailures: this.consecutiveFailures,
      consecutiveOpens: this.consecutiveOpens,
      openedAt: this.openedAt,
      retryAfter: state === 'open' ? this.halfOpenAt - now : state === 'isolated' ? Infinity : 0,
      // Stryker disable next-line ConditionalExpression: every state change zeroes trialsInFlight and only a half-open admission raises it: it is 0 in any other state
      trialsInFlight: state === 'half-open' ? this.trialsInFlight : 0,
      trialSuccesses: state === 'half-open' ? this.trialSuccesses : 0,
    };
  }

  /** The state as plain JSON (see `CircuitBreaker.toJSON`). */
  toJSON(): CircuitBreakerSnapshot {
    const now = this.settings.clock.now();
    this.catchUp(now);
    const state = this.current;
    const opened = state === 'open' || state === 'half-open';
    return {
      version: SNAPSHOT_VERSION,
      savedAt: now,
      state,
      consecutiveFailures: this.consecutiveFailures,
      consecutiveOpens: this.consecutiveOpens,
      openedAt: this.openedAt ?? null,
      retryAt: state === 'open' ? this.halfOpenAt : null,
      breakDuration: opened ? this.breakDuration : null,
      trialSuccesses: state === 'half-open' ? this.trialSuccesses : 0,
      slowCallDuration: this.settings.slowCallDuration ?? null,
      window: this.window?.save(now) ?? null,
    };
  }

  /** Replaces the state with a checked snapshot's (see `CircuitBreaker.restore`). */
  restore(checked: CheckedSnapshot): void {
    const from = this.current;
    this.load(checked);
    if (from !== checked.state) this.announce(from, checked.state, 'restored');
  }

  /**
   * Decides, synchronously, whether a call may run: `false` for a call of the closed state,
   * `true` for a half-open trial (its slot is taken), or the `CircuitOpenError` to refuse it
   * with (the `rejected` event already emitted). Only asked when the stored state is not closed.
   */
  admission(): boolean | CircuitOpenError {
    // Stryker disable next-line ConditionalExpression: a shortcut past the clock; the switch below refuses an isolated circuit the same way
    if (this.current === 'isolated') return this.refusal(Infinity, 'isolated');
    const now = this.settings.clock.now();
    this.catchUp(now);
    // Widened again: catchUp() may have changed the state, and a stateChange listener may have reset or isolated it.
    switch (this.current as CircuitState) {
      case 'closed':
        return false;
      case 'open':
        return this.refusal(this.halfOpenAt - now, 'open');
      case 'half-open':
        if (this.trialsInFlight >= this.settings.halfOpenMaxCalls) return this.refusal(0, 'half-open');
        this.trialsInFlight++;
        this.firstTrialAt ??= now;
        return true;
      default:
        return this.refusal(Infinity, 'isolated');
    }
  }

  private refusal(retryAfter: number, state: CircuitOpenReason): CircuitOpenError {
    const error = withoutStack(() => new CircuitOpenError(retryAfter, state));
    const events = this.events;
    if (events !== undefined && events.has('rejected')) events.emit('rejected', { error });
    return error;
  }

  /** The work of a trial whose caller gave up has ended: its place is free, unless the period it was admitted in has ended already. */
  trialWorkEnded(generation: number): void {
    if (generation !== this.generation) return; // a later period counts its own trials
    // Stryker disable next-line ConditionalExpression,EqualityOperator: an abandoned trial holds its place until its work ends, so here the count is at least 1; kept as a guard
    if (this.trialsInFlight > 0) this.trialsInFlight--;
  }

  /**
   * Sorts an error into not counted, success or failure, and returns what the call rejects
   * with: `error`, or what `isFailure` threw.
   */
  recordError(admitted: Admitted, error: unknown, callerAborted: boolean): unknown {
    const { generation, trial, startedAt } = admitted;
    if (callerAborted || isRefusal(error)) {
      // The caller gave up, or a policy inside this one refused the call before it reached the
      // dependency: neither says anything of the dependency's health, and counting it either
      // way would lie (a burst of load would open a breaker on a healthy service). A trial's
      // place goes to another caller once the work it started has ended (`trialWorkEnded`): a
      // function that ignores its signal still loads the recovering dependency.
      admitted.abandoned = true;
      return error;
    }
    const isFailure = this.settings.isFailure;
    if (isFailure === undefined) {
      this.recordFailure(generation, trial, startedAt, error, false, undefined);
      return error;
    }
    let failed: boolean;
    try {
      failed = synchronousAnswer('CircuitBreaker isFailure', isFailure(error)) !== false;
    } catch (thrown) {
      this.recordFailure(generation, trial, startedAt, thrown, false, undefined);
      return thrown;
    }
    if (failed) this.recordFailure(generation, trial, startedAt, error, false, undefined);
    else this.recordSuccess(generation, trial, startedAt);
    return error;
  }

  /**
   * Sorts a value into success or failure with `isFailureResult` (set), counts it, and returns
   * what the predicate threw, wrapped, for the call to reject with (counted as a failure), or
   * `undefined` when the call answers with the value. A caller's abort is neither asked about
   * nor counted.
   */
  recordResult(admitted: number | Admitted, value: unknown, callerAborted: boolean): { readonly thrown: unknown } | undefined {
    const closed = typeof admitted === 'number';
    const generation = closed ? admitted : admitted.generation;
    const trial = closed ? false : admitted.trial;
    const startedAt = closed ? 0 : admitted.startedAt;
    // Stryker disable next-line ConditionalExpression,BlockStatement: unreachable through the engine, which answers a caller's abort with its reason and calls no onValue after it; kept as a guard
    if (callerAborted) {
      // As for an error: the outcome says nothing of the dependency, and a trial's place is freed once its work has ended.
      // Stryker disable next-line all: unreachable through the engine (see above)
      if (!closed) admitted.abandoned = true;
      return undefined;
    }
    let failed: unknown;
    try {
      failed = synchronousAnswer('CircuitBreaker isFailureResult', (this.settings.isFailureResult as (value: unknown) => boolean)(value));
    } catch (thrown) {
      this.recordFailure(generation, trial, startedAt, thrown, false, undefined);
      return { thrown };
    }
    if (failed) this.recordFailure(generation, trial, startedAt, undefined, true, value);
    else this.recordSuccess(generation, trial, startedAt);
    return undefined;
  }

  /** The time an outcome is recorded at, when anything needs it; NaN otherwise. */
  private outcomeTime(trial: boolean): number {
    // A trial's outcome needs the time to tell whether halfOpenMaxWait ended the trial period first.
    return this.settings.timesOutcomes || trial ? this.settings.clock.now() : NaN;
  }

  private isSlow(startedAt: number, now: number): boolean {
    const limit = this.settings.slowCallDuration;
    return limit !== undefined && now - startedAt > limit;
  }

  /**
   * What a success and a failure have in common: ignores stale news, lets time end a trial
   * period first, and counts the outcome. Returns the time the outcome is recorded at (NaN
   * when nothing needs it), or `undefined` when the outcome no longer counts.
   */
  private countOutcome(failed: boolean, generation: number, trial: boolean, startedAt: number): number | undefined {
    if (generation !== this.generation) return undefined; // admitted before a state change: stale news
    const now = this.outcomeTime(trial);
    // Stryker disable next-line ConditionalExpression: a closed-state call counts only in its own generation, when the circuit is closed and catchUp() changes nothing
    if (trial) {
      this.catchUp(now);
      if (generation !== this.generation) return undefined;
    }
    if (failed) this.consecutiveFailures++;
    else this.consecutiveFailures = 0;
    if (trial) this.trialsInFlight--;
    else if (this.settings.window !== undefined) this.recordInWindow(failed, this.isSlow(startedAt, now), now);
    return now;
  }

  recordSuccess(generation: number, trial: boolean, startedAt: number): void {
    const now = this.countOutcome(false, generation, trial, startedAt);
    if (now === undefined) return;
    const events = this.events;
    if (events !== undefined && events.has('success')) {
      events.emit('success', { state: this.current });
      if (generation !== this.generation) return; // a listener called isolate() or reset(): it has the last word
    }
    if (trial) {
      if (this.isSlow(startedAt, now)) this.transition('open', 'trial-slow', now);
      else if (++this.trialSuccesses >= this.settings.halfOpenSuccessThreshold) this.transition('closed', 'trial-success', now);
      return;
    }
    // Stryker disable next-line ConditionalExpression: rateReason() answers undefined without a window; the test only spares the call
    if (this.settings.window !== undefined) {
      // A success can open the circuit too: the window reaching minimumCalls, or a slow call.
      const reason = this.rateReason();
      if (reason !== undefined) this.transition('open', reason, now);
    }
  }

  /** Counts a failure: an error, or (`isResult`) a value `isFailureResult` accepted. */
  private recordFailure(generation: number, trial: boolean, startedAt: number, error: unknown, isResult: boolean, value: unknown): void {
    const now = this.countOutcome(true, generation, trial, startedAt);
    if (now === undefined) return;
    const events = this.events;
    if (events !== undefined && events.has('failure')) {
      const { current: state, consecutiveFailures } = this;
      events.emit('failure', isResult ? { error: undefined, state, consecutiveFailures, value } : { error, state, consecutiveFailures });
      if (generation !== this.generation) return;
    }
    if (trial) {
      this.transition('open', 'trial-failure', now);
      return;
    }
    const reason = this.consecutiveFailures >= this.settings.failureThreshold ? 'failure-threshold' : this.rateReason();
    if (reason !== undefined) this.transition('open', reason, now);
  }

  private recordInWindow(failed: boolean, slow: boolean, now: number): void {
    const window = (this.window ??= createWindow(this.settings.window as WindowShape));
    window.record(failed, slow, now);
  }

  /** Which rate, if any, opens the circuit now (after an outcome was recorded). */
  private rateReason(): 'failure-rate' | 'slow-call-rate' | undefined {
    const window = this.window;
    if (window === undefined || window.calls < this.settings.minimumCalls) return undefined;
    // Divided rather than multiplied: 7 failures of 25 must reach a threshold of 0.28, and 0.28 × 25 is 7.000000000000001.
    if (window.failures / window.calls >= this.settings.failureRateThreshold) return 'failure-rate';
    if (window.slowCalls / window.calls >= this.settings.slowCallRateThreshold) return 'slow-call-rate';
    return undefined;
  }

  /** How long the circuit stays open this time. Never throws: a broken function is reported once. */
  private breakDurationFor(opens: number): number {
    const recovery = this.settings.recoveryTimeout;
    if (typeof recovery === 'number') return recovery;
    let duration: unknown;
    try {
      duration = recovery(opens);
      watchReturned('CircuitBreaker recoveryTimeout', duration);
    } catch (error) {
      this.reportBrokenRecoveryTimeout(error);
      return DEFAULT_RECOVERY_TIMEOUT;
    }
    // A backoff that outgrows the longest break (2 ** opens unbounded) keeps probing as rarely as it may, not suddenly often.
    if (typeof duration === 'number' && duration >= 0) return Math.min(duration, validate.MAX_TIMER_DELAY);
    this.reportBrokenRecoveryTimeout(
      new RangeError(
        `CircuitBreaker recoveryTimeout(${opens}) must return a duration in ms ≥ 0, got ${validate.show(duration)}; ` +
          `the circuit stays open ${DEFAULT_RECOVERY_TIMEOUT} ms instead`,
      ),
    );
    return DEFAULT_RECOVERY_TIMEOUT;
  }

  private reportBrokenRecoveryTimeout(error: unknown): void {
    if (this.settings.reportedRecoveryTimeout) return;
    this.settings.reportedRecoveryTimeout = true;
    reportUncaught(`bulwark: CircuitBreaker recoveryTimeout failed; the circuit stays open ${DEFAULT_RECOVERY_TIMEOUT} ms instead`, error);
  }

  /** How long the half-open circuit waits, from its first trial, for the trials to close it. */
  private halfOpenWait(): number {
    const wait = this.settings.halfOpenMaxWait;
    if (wait !== undefined) return wait;
    // A break shorter than a trial takes would throw away every trial that answers after it.
    return Math.max(this.breakDuration, DEFAULT_HALF_OPEN_MAX_WAIT);
  }

  /**
   * Applies the changes time alone makes, as of `now`: open → half-open when the break ends,
   * half-open → open when `halfOpenMaxWait` passed since the first trial. Each change happens
   * at its own moment, so a late reader sees both in order and `retryAfter` stays exact.
   */
  catchUp(now: number): void {
    for (;;) {
      if (this.current === 'open') {
        if (now < this.halfOpenAt) return;
        this.transition('half-open', 'recovery-timeout', this.halfOpenAt);
      } else if (this.current === 'half-open' && this.firstTrialAt !== undefined) {
        const deadline = this.firstTrialAt + this.halfOpenWait();
        if (now < deadline) return;
        this.transition('open', 'half-open-timeout', deadline);
      } else {
        return;
      }
    }
  }

  transition(to: CircuitState, reason: CircuitStateChangeReason, at: number | undefined): void {
    const from = this.current;
    this.trialsInFlight = 0;
    if (to === 'closed') {
      this.consecutiveFailures = 0;
      this.consecutiveOpens = 0;
      this.openedAt = undefined;
      this.window?.clear();
    }
    if (from === to) return;
    const time = at === undefined || Number.isNaN(at) ? this.settings.clock.now() : at;
    if (to === 'half-open') {
      this.trialSuccesses = 0;
      this.firstTrialAt = undefined;
    } else if (to !== 'closed') {
      this.openedAt = time;
    }
    this.current = to;
    const generation = ++this.generation;
    if (to === 'open') {
      // Open until the duration is known, so a recoveryTimeout function that reads the state sees it open.
      this.halfOpenAt = Infinity;
      const duration = this.breakDurationFor(++this.consecutiveOpens);
      if (generation !== this.generation) return; // the function reset or isolated the breaker itself
      this.breakDuration = duration;
      this.halfOpenAt = time + duration;
    }
    this.announce(from, to, reason);
  }

  private announce(from: CircuitState, to: CircuitState, reason: CircuitStateChangeReason): void {
    this.onTransition?.(from, to, reason);
    const events = this.events;
    if (events !== undefined && events.has('stateChange')) events.emit('stateChange', { from, to, reason });
  }

  load(snapshot: CheckedSnapshot): void {
    this.current = snapshot.state;
    this.generation++;
    this.consecutiveFailures = snapshot.consecutiveFailures;
    this.consecutiveOpens = snapshot.consecutiveOpens;
    this.openedAt = snapshot.state === 'closed' ? undefined : snapshot.openedAt;
    this.halfOpenAt = snapshot.retryAt;
    this.breakDuration = snapshot.breakDuration;
    this.trialsInFlight = 0;
    // Stryker disable next-line ConditionalExpression: trialSuccesses is read only while half-open, and the turn to half-open zeroes it
    this.trialSuccesses = snapshot.state === 'half-open' ? snapshot.trialSuccesses : 0;
    this.firstTrialAt = undefined;
    if (snapshot.window === undefined) {
      this.window?.clear();
    } else {
      const window = (this.window ??= createWindow(this.settings.window as WindowShape));
      window.load(snapshot.window, this.settings.clock.now());
    }
  }
}
