/**
 * The public types of the circuit breaker: its states, options, events, statistics and
 * snapshot.
 */
import type { Clock } from '../shared/clock.js';
import type { CircuitOpenError } from '../errors.js';
import type { WindowContents } from './window.js';

/**
 * A breaker's state: `'closed'` lets calls through and counts their outcomes; `'open'` refuses
 * them until the break duration passes; `'half-open'` lets trial calls through to decide;
 * `'isolated'` refuses every call until `reset()` (see {@link CircuitBreaker.isolate}).
 */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * Why a {@link CircuitBreaker} changed state:
 * - `'failure-threshold'`: closed → open, `failureThreshold` consecutive failures;
 * - `'failure-rate'`: closed → open, the failure rate in the window reached `failureRate.threshold`;
 * - `'slow-call-rate'`: closed → open, the slow-call rate in the window reached `slowCall.rateThreshold`;
 * - `'trial-failure'`: half-open → open, a trial failed;
 * - `'trial-slow'`: half-open → open, a trial succeeded but took longer than `slowCall.duration`;
 * - `'trial-success'`: half-open → closed, `halfOpenSuccessThreshold` trials succeeded;
 * - `'half-open-timeout'`: half-open → open, not closed within `halfOpenMaxWait` of its first trial;
 * - `'recovery-timeout'`: open → half-open, the break duration passed;
 * - `'manual'`: `isolate()` or `reset()`;
 * - `'restored'`: `restore(snapshot)`.
 *
 * When one outcome meets several opening conditions, the reason is the first of
 * `'failure-threshold'`, `'failure-rate'`, `'slow-call-rate'`.
 */
export type CircuitStateChangeReason =
  | 'failure-threshold'
  | 'failure-rate'
  | 'slow-call-rate'
  | 'trial-failure'
  | 'trial-slow'
  | 'trial-success'
  | 'half-open-timeout'
  | 'recovery-timeout'
  | 'manual'
  | 'restored';

/**
 * The sliding window the failure and slow-call rates are measured over: the last `calls`
 * outcomes, or the outcomes of the last `duration` ms kept in `buckets` buckets (an outcome
 * leaves the window between `duration − duration / buckets` and `duration` ms after it was
 * recorded). Neither arms a timer.
 *
 * @example
 * ```ts
 * const lastHundredCalls: CircuitBreakerWindow = { calls: 100 };
 * const lastMinute: CircuitBreakerWindow = { duration: 60_000, buckets: 12 };
 * ```
 */
export type CircuitBreakerWindow =
  | { readonly calls: number }
  | {
      readonly duration: number;
      /** @default 10 */
      readonly buckets?: number | undefined;
    };

/**
 * Opening on the failure rate of the recent calls rather than on a run of failures.
 *
 * @example
 * ```ts
 * // open when half the calls of the last 30 s failed, once there were at least 20
 * const failureRate: CircuitBreakerFailureRate = { threshold: 0.5, minimumCalls: 20, window: { duration: 30_000 } };
 * ```
 */
export interface CircuitBreakerFailureRate {
  /** The failure rate, in (0, 1], at or above which the circuit opens. Required. */
  threshold: number;
  /**
   * How many outcomes the window must hold before any rate may open the circuit.
   * @default 100, or `window.calls` when that is smaller
   */
  minimumCalls?: number | undefined;
  /**
   * @default { calls: 100 }
   */
  window?: CircuitBreakerWindow | undefined;
}

/**
 * Opening when too many calls are slow, even though they succeed.
 *
 * @example
 * ```ts
 * // open when 80 % of the calls in the window took longer than 2 s
 * const slowCall: CircuitBreakerSlowCall = { duration: 2_000, rateThreshold: 0.8 };
 * ```
 */
export interface CircuitBreakerSlowCall {
  /** A call that takes longer than this many ms is slow (one that takes exactly this long is not). Required. */
  duration: number;
  /** The slow-call rate, in (0, 1], at or above which the circuit opens. Required. */
  rateThreshold: number;
}

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /**
   * Consecutive failures that open the circuit; a success resets the count. `Infinity`: a run
   * of failures never opens it (only `failureRate` or `slowCall` do).
   * @default 5; with `failureRate`, none (only the rate opens the circuit, unless this is given
   * too: 5 failures in a row are routine at a few hundred calls a second with a 20 % error rate)
   */
  failureThreshold?: number | undefined;
  /**
   * Opens the circuit when the failure rate in a sliding window reaches `threshold`, once the
   * window holds `minimumCalls` outcomes. Either this or `failureThreshold` opens the circuit,
   * whichever is met first. The window is cleared whenever the circuit closes.
   * @default none
   */
  failureRate?: CircuitBreakerFailureRate | undefined;
  /**
   * Counts the calls slower than `duration` ms and opens the circuit when their rate in the
   * window reaches `rateThreshold`. It shares the window and `minimumCalls` of `failureRate`
   * (without `failureRate`: the last 100 calls, at least 100 of them). A failure can be slow
   * too. While half-open, a slow trial re-opens the circuit like a failed one.
   * @default none
   */
  slowCall?: CircuitBreakerSlowCall | undefined;
  /**
   * How long, in ms, the circuit stays open before it lets trial calls through; or a function
   * of how many times in a row it has opened (1 the first time, back to 1 once it closes), so
   * a dependency that stays down is probed less and less often. What the function returns is
   * capped at 2³¹ − 1 ms (about 24.8 days); if it throws or returns anything but a number ≥ 0,
   * the circuit stays open 30 000 ms that time and the error is reported once (through
   * `reportError`, else `console.error`).
   * @default 30_000
   * @example
   * ```ts
   * new CircuitBreaker({ recoveryTimeout: (opens) => Math.min(5_000 * 2 ** (opens - 1), 300_000) });
   * ```
   */
  recoveryTimeout?: number | ((opens: number) => number) | undefined;
  /**
   * How many trial calls run at once while half-open; every other caller is rejected at once.
   * @default 1
   */
  halfOpenMaxCalls?: number | undefined;
  /**
   * How many trials must succeed to close the circuit. When it is larger than
   * `halfOpenMaxCalls`, a new trial is let through as each one succeeds. Any trial failure
   * re-opens the circuit.
   * @default halfOpenMaxCalls
   */
  halfOpenSuccessThreshold?: number | undefined;
  /**
   * The longest the circuit stays half-open, in ms counted from its first trial: if it has not
   * closed by then (a trial that never returns), it re-opens and ignores the late outcomes of
   * the trials still running. A half-open circuit nobody calls waits for its first trial
   * without limit. `Infinity`: no limit. At least 1 ms.
   * @default the break duration that just ended, or 30 000 when that is shorter (a short
   * break is a wish to probe often, not a deadline for a slow trial)
   */
  halfOpenMaxWait?: number | undefined;
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
   * Decides whether a value the call returned counts as a failure of the dependency (an HTTP
   * 503, a `{ status: 'unavailable' }`): it counts like an error (consecutive failures, the
   * window, a half-open trial re-opens the circuit) and still reaches the caller unchanged.
   * Slow calls are timed as without it. If it throws, the call rejects with what it threw and
   * the outcome counts as a failure; an answer that is a promise is refused with a `TypeError`.
   * Not asked, and not counted, when the caller has aborted.
   * @default none: every value is a success (and values cost nothing more)
   * @example
   * ```ts
   * new CircuitBreaker({ isFailureResult: (res) => res instanceof Response && res.status >= 500 });
   * ```
   */
  isFailureResult?: ((value: unknown) => boolean) | undefined;
  /**
   * A snapshot from {@link CircuitBreaker.toJSON} to start from (a state saved by another
   * process, or before a restart). An open circuit whose break ended while it was saved starts
   * ready for a trial. A snapshot holding window outcomes restores only with the same
   * `failureRate.window` and `slowCall.duration`; a bad or incompatible snapshot throws.
   * @default a closed circuit with no history
   */
  initialState?: CircuitBreakerSnapshot | undefined;
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
  /** The state changed `from` one `to` another, for `reason`; listeners see the changes in the order they happened. */
  stateChange: { readonly from: CircuitState; readonly to: CircuitState; readonly reason: CircuitStateChangeReason };
  /** A call through the breaker succeeded (or failed with an error `isFailure` declined); `state` is the breaker's then. */
  success: { readonly state: CircuitState };
  /**
   * A call through the breaker failed and was counted, in `state`, making `consecutiveFailures`
   * in a row. For a value `isFailureResult` accepted, `value` holds it and `error` is
   * `undefined`; for an error there is no `value` key (test `'value' in payload`).
   */
  failure: { readonly error: unknown; readonly state: CircuitState; readonly consecutiveFailures: number; readonly value?: unknown };
  /** The breaker refused a call without running it; the call rejects with `error`. */
  rejected: { readonly error: CircuitOpenError };
}

/**
 * What {@link CircuitBreaker.stats} reports. The window counts are those of the closed state:
 * an open or half-open breaker shows the window that opened it (a time window still forgets
 * outcomes older than its duration), and the window is cleared when the circuit closes.
 * Without `failureRate` or `slowCall` there is no window and they are 0.
 */
export interface CircuitBreakerStats {
  /** The state now. */
  readonly state: CircuitState;
  /** Outcomes in the window. */
  readonly calls: number;
  /** Failures in the window. */
  readonly failures: number;
  /** Calls in the window slower than `slowCall.duration` (failed or not). */
  readonly slowCalls: number;
  /** `failures / calls`, 0 when the window is empty. */
  readonly failureRate: number;
  /** `slowCalls / calls`, 0 when the window is empty. */
  readonly slowCallRate: number;
  /** Failures in a row: a success sets it to 0, and so does closing the circuit. */
  readonly consecutiveFailures: number;
  /** How many times in a row the circuit has opened without closing in between. */
  readonly consecutiveOpens: number;
  /** When it last opened (or was isolated), in epoch ms; `undefined` while closed. */
  readonly openedAt: number | undefined;
  /** Ms until a trial is allowed: 0 while closed or half-open, `Infinity` while isolated. */
  readonly retryAfter: number;
  /** Trials running now (half-open only). */
  readonly trialsInFlight: number;
  /** Trials that succeeded since it turned half-open (half-open only). */
  readonly trialSuccesses: number;
}

/** The saved outcomes of a window, in a {@link CircuitBreakerSnapshot}. */
export type CircuitBreakerWindowSnapshot = WindowContents;

/**
 * A breaker's state as plain JSON, from {@link CircuitBreaker.toJSON}. Times are epoch ms
 * read from the breaker's clock, so a snapshot taken in one process means the same in another.
 * In-flight trials are not saved: a half-open breaker comes back with every trial slot free.
 */
export interface CircuitBreakerSnapshot {
  /** The snapshot format; this version of bulwark reads and writes 1. */
  readonly version: 1;
  /** When it was taken (epoch ms). */
  readonly savedAt: number;
  /** The state when it was taken. */
  readonly state: CircuitState;
  /** Failures in a row when it was taken. */
  readonly consecutiveFailures: number;
  /** Openings in a row without closing in between (what a `recoveryTimeout` function is given). */
  readonly consecutiveOpens: number;
  /** When it last opened or was isolated (epoch ms); `null` while closed. */
  readonly openedAt: number | null;
  /** While open: when it lets a trial through (epoch ms); otherwise `null`. */
  readonly retryAt: number | null;
  /** While open or half-open: the break duration of the current opening (ms). */
  readonly breakDuration: number | null;
  /** While half-open: trials that succeeded so far. */
  readonly trialSuccesses: number;
  /** The `slowCall.duration` the window's slow calls were measured against, `null` without `slowCall`. */
  readonly slowCallDuration: number | null;
  /** The window's outcomes, `null` when it holds none. */
  readonly window: CircuitBreakerWindowSnapshot | null;
}
