import type { InnerLayers, LayerCall, LogDescription, PolicyDescription } from './engine/contract.js';
import { LayerPolicy } from './engine/policy.js';
import { isRefusal } from './errors.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { outcomeFields, outcomeText, type Outcome } from './outcome.js';
import { RETRY_COUNTERS } from './shared/metric-catalog.js';
// Types only: a retry without a budget brings none of the budget's code into a bundle.
import type { RetryBudget, RetryBudgetInternals } from './retry-budget.js';
import { MAX_TIMER_DELAY, systemClock, type Clock } from './shared/clock.js';
import { synchronousAnswer, watchReturned } from './shared/report.js';
import { show } from './shared/show.js';
import * as validate from './shared/validate.js';

/**
 * How a retry delay is randomised, so a fleet of clients does not retry in lockstep. With
 * `d` the exponential delay for this retry and `r` a random number in [0, 1):
 * - `'proportional'`: `d × (0.5 + r)`, between half and one and a half times `d`;
 * - `'full'`: `d × r`, anywhere from 0 to `d` (AWS "full jitter");
 * - `'equal'`: `d / 2 + r × d / 2`, between half of `d` and `d`;
 * - `'decorrelated'`: between `baseDelay` and three times the previous delay (AWS
 *   "decorrelated jitter"), ignoring `exponentialBase`;
 * - `'none'`: exactly `d`.
 *
 * Every mode is then capped by `maxDelay`.
 */
export type JitterMode = 'proportional' | 'full' | 'equal' | 'decorrelated' | 'none';

const jitterModes: readonly JitterMode[] = ['proportional', 'full', 'equal', 'decorrelated', 'none'];

/** Options of {@link retryWithBackoff}. */
export interface RetryOptions {
  /**
   * Retries after the first call: `3` makes up to 4 calls. `Infinity` retries until the
   * caller aborts or an enclosing timeout expires.
   * @default 3
   */
  maxRetries?: number | undefined;
  /**
   * The delay before the first retry, in ms, before jitter. With 0, retries run at once, but
   * every 64th retry in a row without delay yields to the event loop, so timers and aborts
   * still get through.
   * @default 1_000
   */
  baseDelay?: number | undefined;
  /**
   * No delay is ever longer, in ms. Must be ≥ `baseDelay` when both are given.
   * @default 30_000, or `baseDelay` when that is longer
   */
  maxDelay?: number | undefined;
  /**
   * The factor between two delays: retry n waits `baseDelay × exponentialBase^(n-1)`.
   * @default 2
   */
  exponentialBase?: number | undefined;
  /**
   * How the delay is randomised; see {@link JitterMode}.
   * @default 'proportional'
   */
  jitter?: JitterMode | undefined;
  /**
   * Decides whether the failure of attempt `attempt` (1 for the first call) is retried.
   * Never asked about a caller's abort or an enclosing timeout's expiry. If it throws, the
   * call rejects with what it threw.
   * @default every error but a refusal ({@link isRefusal}: an open circuit, a full bulkhead, a rate limit, a lost hedge, a store that is down): retrying those only adds load
   */
  retryOn?: ((error: unknown, attempt: number) => boolean) | undefined;
  /**
   * Decides whether the value attempt `attempt` (1 for the first call) returned is a failure
   * to retry (an HTTP 503), like an error `retryOn` accepts: `maxRetries`, the budget and
   * aborts apply. When no retry is left, the call returns the last value, never an error. If
   * it throws, the call rejects with what it threw; a promise is refused with a `TypeError`.
   * @default none: every value is the call's answer (and values cost nothing more)
   */
  retryOnResult?: ((value: unknown, attempt: number) => boolean) | undefined;
  /**
   * The delay before a retry, once the policy decided to retry (a retry is left, the budget
   * gave one): `attempt` failed (1 for the first call), ending with `outcome`; `backoff` is the
   * delay the policy computed (jitter applied). Returns ms, or `undefined` to keep `backoff`.
   * Not capped by `maxDelay` (a server's `Retry-After` is the user's explicit answer); beyond
   * 2³¹ − 1 ms it is waited in several timers. Any other answer (NaN, negative, Infinity, a
   * promise) fails the call with a `TypeError`; a throw fails it with what was thrown; either
   * way no retry runs, and the budget gets its retry back.
   * @default none: the computed backoff
   */
  delay?: ((attempt: number, outcome: Outcome, backoff: number) => number | undefined) | undefined;
  /**
   * The source of randomness for jitter: a number in [0, 1).
   * @default Math.random
   */
  random?: (() => number) | undefined;
  /**
   * The source of time.
   * @default systemClock
   */
  clock?: Clock | undefined;
  /**
   * A {@link RetryBudget} shared with other policies: each call deposits into it once, each
   * retry withdraws one, and when it is spent the failure passes through at once (`giveUp`
   * with `reason: 'budget-spent'`). A call aborted by its caller or a timeout takes nothing
   * from it, also when the abort comes during the delay before a retry.
   * @default none: retries are limited by `maxRetries` alone
   */
  budget?: RetryBudget | undefined;
  /** A name for logs and metrics. */
  name?: string | undefined;
}

/**
 * Why a retry policy gave up: `'retries-spent'` after `maxRetries` retries, `'not-retryable'`
 * when `retryOn` declined the error, `'budget-spent'` when its {@link RetryBudget} allowed no
 * more retries.
 */
export type RetryGiveUpReason = 'retries-spent' | 'not-retryable' | 'budget-spent';

/**
 * Events of a {@link RetryPolicy}. For a value `retryOnResult` accepted, `value` holds it and
 * `error` is `undefined`; for an error there is no `value` key (test `'value' in payload`).
 */
export interface RetryEvents {
  /** Attempt `attempt` failed with `error` (or returned `value`); the next one starts after `delay` ms. */
  retry: { readonly error: unknown; readonly attempt: number; readonly delay: number; readonly value?: unknown };
  /** The call ends after `attempts` attempts, for `reason`: it rejects with `error`, or returns `value`. */
  giveUp: { readonly error: unknown; readonly attempts: number; readonly reason: RetryGiveUpReason; readonly value?: unknown };
}

/** Retries in a row with no delay before one yields to the event loop. */
const ZERO_DELAY_STREAK = 64;

const OPTION_KEYS: readonly (keyof RetryOptions)[] = ['maxRetries', 'baseDelay', 'maxDelay', 'exponentialBase', 'jitter', 'retryOn', 'retryOnResult', 'delay', 'random', 'clock', 'budget', 'name'];
const PEER_NAMES: validate.PeerNames = {
  retries: '"maxRetries"',
  maxAttempts: '"maxRetries"',
  maxRetryAttempts: '"maxRetries"',
  minTimeout: '"baseDelay"',
  initialDelay: '"baseDelay"',
  delayGenerator: '"delay"',
  maxTimeout: '"maxDelay"',
  factor: '"exponentialBase"',
  randomize: '"jitter"',
  useJitter: '"jitter"',
  shouldRetry: '"retryOn"',
  shouldHandle: '"retryOn" or "retryOnResult"',
  handleWhenResult: '"retryOnResult"',
  onFailedAttempt: "on('retry', listener)",
  retryBudget: '"budget"',
};

/** No retry taken from a budget: there is none, or it is spent (what its `take()` answers then). */
const NO_RECEIPT = -1;
/** What `nextDelay` answers when no retry follows: the outcome is the call's. */
const GIVE_UP = -1;

/** Every error but a refusal: retrying an open circuit or a full bulkhead only adds load. */
const defaultRetryOn = (error: unknown): boolean => !isRefusal(error);

/** The policy {@link retryWithBackoff} builds. */
export class RetryPolicy extends LayerPolicy<void> {
  /** The {@link RetryOptions.maxRetries | maxRetries} in force. */
  readonly maxRetries: number;
  /** The {@link RetryOptions.baseDelay | baseDelay} in force. */
  readonly baseDelay: number;
  /** The {@link RetryOptions.maxDelay | maxDelay} in force. */
  readonly maxDelay: number;
  /** The {@link RetryOptions.exponentialBase | exponentialBase} in force. */
  readonly exponentialBase: number;
  /** The {@link RetryOptions.jitter | jitter} in force. */
  readonly jitter: JitterMode;
  /** The budget shared with other policies, if any. */
  readonly budget: RetryBudget | undefined;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly retryOn: (error: unknown, attempt: number) => boolean;
  private readonly retryOnResult: ((value: unknown, attempt: number) => boolean) | undefined;
  private readonly delayHook: ((attempt: number, outcome: Outcome, backoff: number) => number | undefined) | undefined;
  private readonly random: () => number;
  private readonly clock: Clock;
  private readonly events = new Emitter<RetryEvents>(['retry', 'giveUp']);
  /**
   * The budget's receipt for the retry `nextDelay` just scheduled, read by its caller right
   * after it returns (synchronously: no other call can run between the two).
   */
  private receipt = NO_RECEIPT;

  constructor(options?: RetryOptions) {
    super();
    const opts = validate.options('retryWithBackoff', options, OPTION_KEYS, PEER_NAMES);
    this.maxRetries = opts.maxRetries === undefined ? 3 : validate.count('retryWithBackoff maxRetries', opts.maxRetries, 0, true);
    this.baseDelay = opts.baseDelay === undefined ? 1_000 : validate.duration('retryWithBackoff baseDelay', opts.baseDelay);
    // Without a maxDelay of its own, a baseDelay above the default cap keeps its first delay.
    this.maxDelay = opts.maxDelay === undefined ? Math.max(30_000, this.baseDelay) : validate.duration('retryWithBackoff maxDelay', opts.maxDelay);
    if (opts.baseDelay !== undefined && opts.maxDelay !== undefined && this.maxDelay < this.baseDelay) {
      throw new RangeError(`retryWithBackoff maxDelay must be ≥ baseDelay, got maxDelay ${this.maxDelay} < baseDelay ${this.baseDelay}`);
    }
    this.exponentialBase = opts.exponentialBase === undefined ? 2 : validate.finite('retryWithBackoff exponentialBase', opts.exponentialBase, 1);
    this.jitter = opts.jitter === undefined ? 'proportional' : validate.oneOf('retryWithBackoff jitter', opts.jitter, jitterModes);
    this.retryOn = opts.retryOn === undefined ? defaultRetryOn : validate.fn('retryWithBackoff retryOn', opts.retryOn);
    this.retryOnResult = opts.retryOnResult === undefined ? undefined : validate.fn('retryWithBackoff retryOnResult', opts.retryOnResult);
    this.delayHook = opts.delay === undefined ? undefined : validate.fn('retryWithBackoff delay', opts.delay);
    // Values pass through untouched, at no cost, unless they may be failures.
    if (this.retryOnResult !== undefined) this.onValue = this.onResult;
    this.random = opts.random === undefined ? Math.random : validate.fn('retryWithBackoff random', opts.random);
    this.clock = opts.clock === undefined ? systemClock : validate.clock('retryWithBackoff clock', opts.clock);
    this.budget = opts.budget === undefined ? undefined : budgetOption(opts.budget);
    this.name = opts.name === undefined ? undefined : validate.text('retryWithBackoff name', opts.name);
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof RetryEvents>(event: K, listener: Listener<RetryEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /**
   * The delay before retry `retry` (1 for the first retry), in ms: `previous` is the delay
   * before the retry before it (decorrelated jitter draws from it). Always finite and within
   * [0, maxDelay], at any retry count.
   */
  delay(retry: number, previous: number = this.baseDelay): number {
    const { baseDelay, maxDelay } = this;
    // A random source outside [0, 1) (or NaN) must not produce a NaN or negative delay.
    const drawn = this.random();
    if (typeof drawn !== 'number') watchReturned('retryWithBackoff random', drawn);
    const r = drawn >= 0 ? Math.min(drawn, 1) : 0;
    let delay: number;
    if (this.jitter === 'decorrelated') {
      // AWS: sleep = min(cap, random_between(base, sleep × 3)). Capping `previous` first keeps
      // `previous × 3` finite, and so the delay (cockatiel #86: NaN after 1 025 attempts).
      const prior = previous >= 0 ? Math.min(previous, maxDelay) : baseDelay;
      delay = baseDelay + r * (Math.max(baseDelay, prior * 3) - baseDelay);
    } else {
      // baseDelay × base^(n-1) overflows to Infinity (and 0 × Infinity is NaN) after enough retries: cap first.
      const growth = this.exponentialBase ** (retry - 1);
      const exponential = baseDelay === 0 ? 0 : Math.min(maxDelay, baseDelay * growth);
      switch (this.jitter) {
        case 'proportional':
          delay = exponential * (0.5 + r);
          break;
        case 'full':
          delay = exponential * r;
          break;
        case 'equal':
          delay = exponential / 2 + (r * exponential) / 2;
          break;
        default:
          delay = exponential;
      }
    }
    return Math.min(maxDelay, delay);
  }

  /** The policies inside count their attempts from 1, even inside another retry. */
  protected override enter(call: LayerCall): void {
    if (call.attempt !== 1) call.setAttempt(1);
    // Once per run of this policy: inside another retry, once per attempt of that one.
    if (this.budget !== undefined) this.budget.deposit();
  }

  /** The first attempt failed: give up (throws) or retry (the promise of the attempts to come). */
  protected override onError(_token: void, error: unknown, call: LayerCall): Promise<unknown> {
    const delay = this.nextDelay(call.aborted, 1, this.baseDelay, true, error);
    if (delay === GIVE_UP) throw error;
    return this.retry(call.inner(), 2, delay);
  }

  /** With `retryOnResult`, the policy's `onValue`: the first attempt's value is the answer, or a failure to retry. */
  private onResult(_token: void, value: unknown, call: LayerCall): unknown {
    const delay = this.nextDelay(call.aborted, 1, this.baseDelay, false, value);
    return delay === GIVE_UP ? value : this.retry(call.inner(), 2, delay);
  }

  protected describe(): PolicyDescription {
    const on = (event: string, listener: (payload: any) => void): Unsubscribe => this.on(event as keyof RetryEvents, listener);
    const description: PolicyDescription = { kind: 'retry', name: this.name, counters: RETRY_COUNTERS, logs: RETRY_LOGS, on };
    // The budget's gauge and counter of give-ups are described by the budget's own code.
    return this.budget === undefined ? description : { ...description, ...(this.budget as unknown as RetryBudgetInternals).describeRetry(on) };
  }

  /**
   * After attempt `attempt` threw `subject` (`failed`) or returned it: {@link GIVE_UP} when
   * it is the call's outcome (retries spent, declined, a value that is no failure, or the call
   * was aborted), else the delay before the next attempt.
   */
  private nextDelay(aborted: boolean, attempt: number, previousDelay: number, failed: boolean, subject: unknown): number {
    // A caller's abort or an enclosing timeout ends the work now: no new attempt, no giveUp.
    if (aborted) return GIVE_UP;
    if (failed) {
      if (attempt > this.maxRetries) return this.giveUp(true, subject, attempt, 'retries-spent');
      if (!synchronousAnswer('retryWithBackoff retryOn', this.retryOn(subject, attempt))) return this.giveUp(true, subject, attempt, 'not-retryable');
    } else {
      // Asked about every value, the last attempt's too: only a value it accepts ever gives up.
      const retryOnResult = this.retryOnResult as (value: unknown, attempt: number) => boolean;
      if (!synchronousAnswer('retryWithBackoff retryOnResult', retryOnResult(subject, attempt))) return GIVE_UP;
      if (attempt > this.maxRetries) return this.giveUp(false, subject, attempt, 'retries-spent');
    }
    let delay = this.delay(attempt, previousDelay);
    if (this.budget !== undefined) {
      // Last, so that only a retry that would otherwise run takes from the budget.
      this.receipt = (this.budget as unknown as RetryBudgetInternals).take();
      if (this.receipt === NO_RECEIPT) return this.giveUp(failed, subject, attempt, 'budget-spent');
    }
    if (this.delayHook !== undefined) delay = this.askDelay(attempt, failed, subject, delay);
    if (this.events.has('retry')) this.events.emit('retry', failed ? { error: subject, attempt, delay } : { error: undefined, attempt, delay, value: subject });
    return delay;
  }

  /** The `delay` hook's answer, checked; a bad one (or a throw) gives the budget its retry back and fails the call. */
  private askDelay(attempt: number, failed: boolean, subject: unknown, backoff: number): number {
    let answer: unknown;
    const outcome: Outcome = failed ? { ok: false, error: subject } : { ok: true, value: subject };
    try {
      answer = synchronousAnswer('retryWithBackoff delay', (this.delayHook as NonNullable<RetryPolicy['delayHook']>)(attempt, outcome, backoff));
      if (answer === undefined) return backoff;
      if (typeof answer !== 'number' || !(answer >= 0) || answer === Infinity) {
        throw new TypeError(`retryWithBackoff delay must return a finite duration ≥ 0 or undefined, got ${show(answer)}`);
      }
    } catch (error) {
      if (this.receipt !== NO_RECEIPT && this.budget !== undefined) (this.budget as unknown as RetryBudgetInternals).giveBack(this.receipt);
      this.receipt = NO_RECEIPT;
      throw error;
    }
    return answer;
  }

  /** Emits `giveUp`; the outcome (`subject`) is then the call's. */
  private giveUp(failed: boolean, subject: unknown, attempts: number, reason: RetryGiveUpReason): number {
    if (this.events.has('giveUp')) this.events.emit('giveUp', failed ? { error: subject, attempts, reason } : { error: undefined, attempts, reason, value: subject });
    return GIVE_UP;
  }

  /** Waits `delay`, then runs attempt `attempt` and the ones after it. */
  private async retry(inner: InnerLayers, attempt: number, delay: number): Promise<unknown> {
    let zeroDelays = 0;
    let receipt = this.receipt;
    for (; ; attempt++) {
      try {
        if (delay > 0) {
          zeroDelays = 0;
          // In timers of at most 2³¹ − 1 ms: a longer one fires at once (only a `delay` hook's answer is that long).
          for (let left = delay; left > 0; left -= MAX_TIMER_DELAY) await inner.sleep(Math.min(left, MAX_TIMER_DELAY), this.clock);
        } else if (++zeroDelays % ZERO_DELAY_STREAK === 0) {
          // Retries without delay run on microtasks; a long streak of them would starve the
          // event loop, so no timer (an enclosing timeout) and no abort could ever arrive.
          await inner.sleep(0, this.clock);
        }
      } catch (reason) {
        // Aborted during the delay: the retry never ran, so its budget gets it back.
        if (receipt !== NO_RECEIPT) (this.budget as unknown as RetryBudgetInternals).giveBack(receipt);
        throw reason;
      }
      let value: unknown;
      try {
        value = await inner.run(attempt);
      } catch (error) {
        delay = this.nextDelay(inner.aborted, attempt, delay, true, error);
        if (delay === GIVE_UP) throw error;
        receipt = this.receipt;
        continue;
      }
      if (this.retryOnResult === undefined) return value;
      delay = this.nextDelay(inner.aborted, attempt, delay, false, value);
      if (delay === GIVE_UP) return value;
      receipt = this.receipt;
    }
  }
}

const RETRY_LOGS: readonly LogDescription[] = [
  {
    event: 'giveUp',
    level: 'warn',
    perCall: true,
    plural: 'give-ups',
    message: (payload: RetryEvents['giveUp'], label: string) =>
      `${label} gave up after ${payload.attempts} ${payload.attempts === 1 ? 'attempt' : 'attempts'}${payload.reason === 'budget-spent' ? ', its retry budget spent' : ''}: ${outcomeText(payload)}`,
    // `reason` only for the budget, so lines of a retry without one stay as they were.
    fields: ({ attempts, reason, ...rest }: RetryEvents['giveUp']) => ({ attempts, ...(reason === 'budget-spent' ? { reason } : undefined), ...outcomeFields(rest) }),
  },
  {
    event: 'retry',
    level: 'off',
    perCall: true,
    plural: 'retries',
    message: (payload: RetryEvents['retry'], label: string) => `${label}: attempt ${payload.attempt} failed, retrying in ${Math.round(payload.delay)} ms: ${outcomeText(payload)}`,
    fields: ({ attempt, delay, ...rest }: RetryEvents['retry']) => ({ attempt, delay, ...outcomeFields(rest) }),
  },
];

/** A RetryBudget, from this copy of bulwark or another (checked by shape, so that the class stays out of a bundle without one). */
function budgetOption(value: unknown): RetryBudget {
  if (typeof (value as Partial<RetryBudgetInternals> | null)?.take !== 'function') throw new TypeError(`retryWithBackoff budget must be a RetryBudget, got ${validate.show(value)}`);
  return value as RetryBudget;
}

/**
 * Retries a failed call with exponential backoff and jitter. Before retry n it waits
 * `min(maxDelay, jitter(min(maxDelay, baseDelay × exponentialBase^(n-1))))` ms (or what the
 * `delay` hook answers); the wait ends at once when the caller aborts or an enclosing timeout
 * expires. After the last attempt, the last error is rethrown unchanged, or the last value
 * returned when `retryOnResult` classified it as a failure.
 *
 * Only retry what is safe to repeat: an idempotent read, or a write the server deduplicates
 * (an idempotency key).
 *
 * @example
 * ```ts
 * const retry = retryWithBackoff({ maxRetries: 3, baseDelay: 200, maxDelay: 5_000, jitter: 'full' });
 * const order = await retry.execute(({ attempt }) => api.getOrder(id, { attempt }));
 * ```
 */
export function retryWithBackoff(options?: RetryOptions): RetryPolicy {
  return new RetryPolicy(options);
}
