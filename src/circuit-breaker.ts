import { createWindow, describeShape, sameShape, type OutcomeWindow, type WindowContents, type WindowShape } from './breaker-window.js';
import { systemClock, type Clock } from './clock.js';
import { CircuitOpenError, isBulkheadRejectedError, isCircuitOpenError, refusal as refusalWithoutStack, type CircuitOpenReason } from './errors.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { reportUncaught, synchronousAnswer, watchReturned } from './report.js';
import { SingleLayerPolicy, closeWorkTracker, openWorkTracker, type Call, type Frame, type Scope, type WorkTracker } from './policy.js';
import * as validate from './validate.js';

const isLocalRejection = (error: unknown): boolean => isBulkheadRejectedError(error) || isCircuitOpenError(error);

/** What an admitted call keeps until it settles (a plain generation number when closed and untimed). */
interface Admitted {
  readonly generation: number;
  readonly trial: boolean;
  /** Clock time it started, when slow calls are timed; 0 otherwise. */
  readonly startedAt: number;
  /**
   * A trial that can be answered early (a caller's signal, a timeout in the stack): the work
   * still running below it. Its caller may give up while the function goes on; the trial's
   * place is then held until that work really ends, as a bulkhead holds a slot.
   */
  work: WorkTracker | undefined;
  /** Set when its caller gave up: the place is freed when `work` ends, not by an outcome. */
  abandoned: boolean;
}

/** The state of a {@link CircuitBreaker}. */
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
  /** The state changed, and why; listeners see the events in the order the changes happened. */
  stateChange: { readonly from: CircuitState; readonly to: CircuitState; readonly reason: CircuitStateChangeReason };
  /** A call through the breaker succeeded (or failed with an error `isFailure` declined). */
  success: { readonly state: CircuitState };
  /** A call through the breaker failed and was counted. */
  failure: { readonly error: unknown; readonly state: CircuitState; readonly consecutiveFailures: number };
  /** The breaker refused a call without running it. */
  rejected: { readonly error: CircuitOpenError };
}

/**
 * What {@link CircuitBreaker.stats} reports. The window counts are those of the closed state:
 * an open or half-open breaker shows the window that opened it (a time window still forgets
 * outcomes older than its duration), and the window is cleared when the circuit closes.
 * Without `failureRate` or `slowCall` there is no window and they are 0.
 */
export interface CircuitBreakerStats {
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
  readonly state: CircuitState;
  readonly consecutiveFailures: number;
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

const DEFAULT_FAILURE_THRESHOLD = 5;
const DEFAULT_RECOVERY_TIMEOUT = 30_000;
/** The shortest default `halfOpenMaxWait`. */
const DEFAULT_HALF_OPEN_MAX_WAIT = 30_000;
/** The most outcomes a count window keeps: one byte each, per breaker (per key of a group). */
const MAX_WINDOW_CALLS = 100_000;
/** The most buckets a time window keeps: 24 bytes each, and advancing may visit every one. */
const MAX_WINDOW_BUCKETS = 10_000;
const DEFAULT_WINDOW_CALLS = 100;
const DEFAULT_MINIMUM_CALLS = 100;
const DEFAULT_WINDOW_BUCKETS = 10;
const SNAPSHOT_VERSION = 1;
const EVENT_NAMES: readonly (keyof CircuitBreakerEvents)[] = ['stateChange', 'success', 'failure', 'rejected'];

const OPTION_KEYS: readonly (keyof CircuitBreakerOptions)[] = [
  'failureThreshold',
  'failureRate',
  'slowCall',
  'recoveryTimeout',
  'halfOpenMaxCalls',
  'halfOpenSuccessThreshold',
  'halfOpenMaxWait',
  'isFailure',
  'initialState',
  'clock',
  'name',
];
const FAILURE_RATE_KEYS: readonly (keyof CircuitBreakerFailureRate)[] = ['threshold', 'minimumCalls', 'window'];
const SLOW_CALL_KEYS: readonly (keyof CircuitBreakerSlowCall)[] = ['duration', 'rateThreshold'];
const WINDOW_KEYS: readonly string[] = ['calls', 'duration', 'buckets'];
/** The names opossum, cockatiel, resilience4j and Polly give these options. */
const PEER_NAMES: validate.PeerNames = {
  resetTimeout: '"recoveryTimeout"',
  halfOpenAfter: '"recoveryTimeout"',
  waitDurationInOpenState: '"recoveryTimeout"',
  breakDuration: '"recoveryTimeout"',
  errorThresholdPercentage: 'failureRate.threshold, a share from 0 to 1',
  failureRateThreshold: 'failureRate.threshold, a share from 0 to 1',
  failureRatio: 'failureRate.threshold',
  volumeThreshold: 'failureRate.minimumCalls',
  minimumNumberOfCalls: 'failureRate.minimumCalls',
  minimumThroughput: 'failureRate.minimumCalls',
  rollingCountTimeout: 'failureRate.window: { duration }',
  samplingDuration: 'failureRate.window: { duration }',
  slidingWindowSize: 'failureRate.window',
  permittedNumberOfCallsInHalfOpenState: '"halfOpenMaxCalls"',
  maxWaitDurationInHalfOpenState: '"halfOpenMaxWait"',
  slowCallDurationThreshold: 'slowCall.duration',
  slowCallRateThreshold: 'slowCall.rateThreshold',
  shouldHandle: '"isFailure"',
  errorFilter: '"isFailure", which answers the other way round: true when the error counts',
  timeout: 'withTimeout(ms), composed inside the breaker',
};

function plainObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError(`${name} must be an object, got ${validate.show(value)}`);
  return value as Record<string, unknown>;
}

/** A rate threshold in (0, 1]. */
function rate(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number in (0, 1], got ${validate.show(value)}`);
  if (!(value > 0 && value <= 1)) throw new RangeError(`${name} must be a number in (0, 1], got ${validate.show(value)}`);
  return value;
}

/** The size of a count window: a whole number from 1 to {@link MAX_WINDOW_CALLS}. */
function windowCalls(name: string, value: unknown): number {
  const calls = validate.count(name, value, 1);
  if (calls > MAX_WINDOW_CALLS) throw new RangeError(`${name} must be a whole number from 1 to ${MAX_WINDOW_CALLS} (a window keeps one byte per call), got ${validate.show(value)}`);
  return calls;
}

function windowShape(name: string, value: unknown): WindowShape {
  const window = validate.options(name, value as Record<string, unknown>, WINDOW_KEYS);
  const hasCalls = window['calls'] !== undefined;
  const hasDuration = window['duration'] !== undefined;
  if (hasCalls === hasDuration) {
    throw new TypeError(`${name} must be { calls } or { duration, buckets? }, got ${hasCalls ? 'both calls and duration' : 'neither calls nor duration'}`);
  }
  if (hasCalls) {
    if (window['buckets'] !== undefined) throw new TypeError(`${name}.buckets goes with duration, not with calls`);
    return { calls: windowCalls(`${name}.calls`, window['calls']) };
  }
  const duration = validate.duration(`${name}.duration`, window['duration']);
  if (duration < 1) throw new RangeError(`${name}.duration must be at least 1 ms, got ${duration}`);
  const buckets = window['buckets'] === undefined ? Math.min(DEFAULT_WINDOW_BUCKETS, Math.floor(duration)) : validate.count(`${name}.buckets`, window['buckets'], 1);
  if (buckets < 1 || buckets > duration) {
    throw new RangeError(`${name}.buckets must be from 1 to duration (${duration}), so each bucket spans at least 1 ms, got ${buckets}`);
  }
  if (buckets > MAX_WINDOW_BUCKETS) throw new RangeError(`${name}.buckets must be at most ${MAX_WINDOW_BUCKETS}, got ${buckets}`);
  return { duration, buckets };
}

/**
 * A breaker's options, checked once. The breakers of a {@link CircuitBreakerGroup} share one.
 * @internal
 */
export class BreakerSettings {
  readonly failureThreshold: number;
  readonly recoveryTimeout: number | ((opens: number) => number);
  readonly halfOpenMaxCalls: number;
  readonly halfOpenSuccessThreshold: number;
  /** `undefined`: the break duration that just ended. */
  readonly halfOpenMaxWait: number | undefined;
  readonly isFailure: ((error: unknown) => boolean) | undefined;
  readonly clock: Clock;
  readonly name: string | undefined;
  /** The window, when `failureRate` or `slowCall` needs one. */
  readonly window: WindowShape | undefined;
  readonly minimumCalls: number;
  /** `Infinity` without `failureRate`: a rate never reaches it. */
  readonly failureRateThreshold: number;
  readonly slowCallDuration: number | undefined;
  readonly slowCallRateThreshold: number;
  /** True when recording an outcome needs the time: slow calls, or a time window. */
  readonly timesOutcomes: boolean;
  /** A broken `recoveryTimeout` function is reported once. */
  reportedRecoveryTimeout = false;

  constructor(options: CircuitBreakerOptions | undefined, what = 'CircuitBreaker') {
    const opts = validate.options(what, options, OPTION_KEYS, PEER_NAMES);
    let failureRate: Partial<CircuitBreakerFailureRate> | undefined;
    let slowCall: Partial<CircuitBreakerSlowCall> | undefined;
    if (opts.failureRate !== undefined) failureRate = validate.options(`${what} failureRate`, opts.failureRate, FAILURE_RATE_KEYS, PEER_NAMES);
    if (opts.slowCall !== undefined) slowCall = validate.options(`${what} slowCall`, opts.slowCall, SLOW_CALL_KEYS, PEER_NAMES);

    this.failureThreshold =
      opts.failureThreshold === undefined
        ? failureRate === undefined
          ? DEFAULT_FAILURE_THRESHOLD
          : Infinity
        : validate.count(`${what} failureThreshold`, opts.failureThreshold, 1, true);
    const recovery = opts.recoveryTimeout;
    this.recoveryTimeout =
      recovery === undefined ? DEFAULT_RECOVERY_TIMEOUT : typeof recovery === 'function' ? recovery : validate.duration(`${what} recoveryTimeout`, recovery);
    this.halfOpenMaxCalls = opts.halfOpenMaxCalls === undefined ? 1 : validate.count(`${what} halfOpenMaxCalls`, opts.halfOpenMaxCalls, 1);
    this.halfOpenSuccessThreshold =
      opts.halfOpenSuccessThreshold === undefined ? this.halfOpenMaxCalls : validate.count(`${what} halfOpenSuccessThreshold`, opts.halfOpenSuccessThreshold, 1);
    if (opts.halfOpenMaxWait === undefined) {
      this.halfOpenMaxWait = undefined;
    } else {
      const wait = validate.duration(`${what} halfOpenMaxWait`, opts.halfOpenMaxWait, true);
      if (wait < 1) throw new RangeError(`${what} halfOpenMaxWait must be at least 1 ms (a trial needs time to answer), got ${wait}`);
      this.halfOpenMaxWait = wait;
    }
    this.isFailure = opts.isFailure === undefined ? undefined : validate.fn(`${what} isFailure`, opts.isFailure);
    this.clock = opts.clock === undefined ? systemClock : validate.clock(`${what} clock`, opts.clock);
    this.name = opts.name === undefined ? undefined : validate.text(`${what} name`, opts.name);

    this.failureRateThreshold = failureRate === undefined ? Infinity : rate(`${what} failureRate.threshold`, failureRate['threshold']);
    if (slowCall === undefined) {
      this.slowCallDuration = undefined;
      this.slowCallRateThreshold = Infinity;
    } else {
      this.slowCallDuration = validate.duration(`${what} slowCall.duration`, slowCall['duration']);
      this.slowCallRateThreshold = rate(`${what} slowCall.rateThreshold`, slowCall['rateThreshold']);
    }
    if (failureRate === undefined && slowCall === undefined) {
      this.window = undefined;
      this.minimumCalls = DEFAULT_MINIMUM_CALLS;
    } else {
      const window = failureRate?.['window'] === undefined ? { calls: DEFAULT_WINDOW_CALLS } : windowShape(`${what} failureRate.window`, failureRate['window']);
      const given = failureRate?.['minimumCalls'];
      let minimumCalls: number;
      if (given === undefined) {
        minimumCalls = 'calls' in window ? Math.min(DEFAULT_MINIMUM_CALLS, window.calls) : DEFAULT_MINIMUM_CALLS;
      } else {
        minimumCalls = validate.count(`${what} failureRate.minimumCalls`, given, 1);
        if ('calls' in window && minimumCalls > window.calls) {
          throw new RangeError(`${what} failureRate.minimumCalls (${minimumCalls}) must not exceed failureRate.window.calls (${window.calls}): the window could never hold enough calls to open the circuit`);
        }
      }
      this.window = window;
      this.minimumCalls = minimumCalls;
    }
    this.timesOutcomes = this.slowCallDuration !== undefined || (this.window !== undefined && 'duration' in this.window);
  }
}

/** A snapshot that passed every check. */
interface CheckedSnapshot {
  readonly state: CircuitState;
  readonly consecutiveFailures: number;
  readonly consecutiveOpens: number;
  readonly openedAt: number | undefined;
  readonly retryAt: number;
  readonly breakDuration: number;
  readonly trialSuccesses: number;
  readonly window: WindowContents | undefined;
}

function epochTime(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a time in epoch ms, got ${validate.show(value)}`);
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be a finite time in epoch ms, got ${validate.show(value)}`);
  return value;
}

function checkWindowContents(name: string, value: unknown): WindowContents {
  const window = plainObject(name, value);
  if (Array.isArray(window['outcomes'])) {
    const calls = windowCalls(`${name}.calls`, window['calls']);
    const outcomes = window['outcomes'] as unknown[];
    if (outcomes.length > calls) throw new RangeError(`${name}.outcomes holds ${outcomes.length} outcomes, more than the window's ${calls} calls`);
    outcomes.forEach((code, at) => {
      if (code !== 0 && code !== 1 && code !== 2 && code !== 3) throw new RangeError(`${name}.outcomes[${at}] must be 0, 1, 2 or 3, got ${validate.show(code)}`);
    });
    return { calls, outcomes: outcomes as number[] };
  }
  if (Array.isArray(window['counts'])) {
    const shape = windowShape(name, { duration: window['duration'], buckets: window['buckets'] });
    if (!('duration' in shape)) throw new TypeError(`${name} must hold outcomes or counts`);
    const counts = (window['counts'] as unknown[]).map((bucket, at): [number, number, number, number] => {
      const where = `${name}.counts[${at}]`;
      if (!Array.isArray(bucket) || bucket.length !== 4) throw new TypeError(`${where} must be [start, calls, failures, slowCalls], got ${validate.show(bucket)}`);
      const start = epochTime(`${where}[0]`, bucket[0]);
      const calls = validate.count(`${where}[1] (calls)`, bucket[1], 0);
      const failures = validate.count(`${where}[2] (failures)`, bucket[2], 0);
      const slowCalls = validate.count(`${where}[3] (slow calls)`, bucket[3], 0);
      if (failures > calls || slowCalls > calls) throw new RangeError(`${where} counts more failures or slow calls than calls`);
      return [start, calls, failures, slowCalls];
    });
    return { duration: shape.duration, buckets: shape.buckets, counts };
  }
  throw new TypeError(`${name} must hold outcomes (a count window) or counts (a time window)`);
}

function shapeOf(contents: WindowContents): WindowShape {
  return 'outcomes' in contents ? { calls: contents.calls } : { duration: contents.duration, buckets: contents.buckets };
}

/** Checks a snapshot against the breaker's settings; throws a `TypeError` or `RangeError` naming what is wrong. */
function checkSnapshot(name: string, value: unknown, settings: BreakerSettings): CheckedSnapshot {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${name} must be a snapshot from breaker.toJSON(), got ${validate.show(value)}`);
  }
  const snapshot = value as Record<string, unknown>;
  const version = snapshot['version'];
  if (version !== SNAPSHOT_VERSION) {
    throw new (typeof version === 'number' ? RangeError : TypeError)(
      `${name}.version must be ${SNAPSHOT_VERSION} (the snapshot format this version of bulwark reads), got ${validate.show(version)}`,
    );
  }
  const state = validate.oneOf(`${name}.state`, snapshot['state'], ['closed', 'open', 'half-open', 'isolated'] as const);
  const consecutiveFailures = validate.count(`${name}.consecutiveFailures`, snapshot['consecutiveFailures'], 0);
  const consecutiveOpens = validate.count(`${name}.consecutiveOpens`, snapshot['consecutiveOpens'], 0);
  const trialSuccesses = validate.count(`${name}.trialSuccesses`, snapshot['trialSuccesses'], 0);
  epochTime(`${name}.savedAt`, snapshot['savedAt']);
  const openedAt = snapshot['openedAt'] === null ? undefined : epochTime(`${name}.openedAt`, snapshot['openedAt']);
  let retryAt = 0;
  let breakDuration = 0;
  if (state === 'open' || state === 'half-open') {
    if (openedAt === undefined) throw new TypeError(`${name}.openedAt must be a time in epoch ms for a ${state} circuit, got null`);
    breakDuration = validate.duration(`${name}.breakDuration`, snapshot['breakDuration']);
  }
  if (state === 'open') {
    retryAt = epochTime(`${name}.retryAt`, snapshot['retryAt']);
    if (openedAt !== undefined && (retryAt < openedAt || retryAt - openedAt > validate.MAX_TIMER_DELAY)) {
      throw new RangeError(`${name}.retryAt must be from openedAt to openedAt + ${validate.MAX_TIMER_DELAY} ms, got ${retryAt} (openedAt ${openedAt})`);
    }
  }
  const savedSlowCall = snapshot['slowCallDuration'];
  if (savedSlowCall !== null) validate.duration(`${name}.slowCallDuration`, savedSlowCall);
  let window: WindowContents | undefined;
  if (snapshot['window'] !== null) {
    window = checkWindowContents(`${name}.window`, snapshot['window']);
    const saved = shapeOf(window);
    if (!sameShape(saved, settings.window)) {
      const ours = settings.window === undefined ? 'has no window (neither failureRate nor slowCall)' : `has a window of ${describeShape(settings.window)}`;
      throw new RangeError(
        `${name} holds the outcomes of a window of ${describeShape(saved)}, but this breaker ${ours}: ` +
          'restore it into a breaker with the options it was saved with, or build this one without initialState',
      );
    }
    if (savedSlowCall !== (settings.slowCallDuration ?? null)) {
      throw new RangeError(
        `${name} holds slow calls measured against slowCall.duration ${validate.show(savedSlowCall)}, but this breaker's is ${validate.show(settings.slowCallDuration ?? null)}: ` +
          'restore it into a breaker with the options it was saved with, or build this one without initialState',
      );
    }
  }
  return { state, consecutiveFailures, consecutiveOpens, openedAt, retryAt, breakDuration, trialSuccesses, window };
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
 * const receipt = await breaker.execute(() => payments.charge(order));
 * ```
 */
export class CircuitBreaker extends SingleLayerPolicy {
  /** @internal */
  readonly settings: BreakerSettings;
  /**
   * Runs after every state change, before the events: the bookkeeping of a group. It must
   * not throw.
   * @internal
   */
  onTransition: ((breaker: CircuitBreaker, from: CircuitState, to: CircuitState, reason: CircuitStateChangeReason) => void) | undefined = undefined;
  /** Made on the first `on()`, so a breaker nobody listens to does not pay for it. */
  private events: Emitter<CircuitBreakerEvents> | undefined = undefined;
  private current: CircuitState = 'closed';
  /** Bumped at every state change: an outcome admitted under an older generation is ignored. */
  private generation = 0;
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

  constructor(options?: CircuitBreakerOptions) {
    super();
    // A group hands over settings it checked once for all its breakers.
    this.settings = options instanceof BreakerSettings ? options : new BreakerSettings(options);
    const initialState = options instanceof BreakerSettings ? undefined : options?.initialState;
    if (initialState !== undefined) this.load(checkSnapshot('CircuitBreaker initialState', initialState, this.settings));
  }

  /** The state as last computed, without applying what time changed since. @internal */
  get storedState(): CircuitState {
    return this.current;
  }

  /** @internal */
  get abortsWork(): boolean {
    return false;
  }

  /** Consecutive failures that open the circuit; `Infinity` when only `failureRate` opens it. */
  get failureThreshold(): number {
    return this.settings.failureThreshold;
  }

  /** The break duration in ms, or the function that gives it. */
  get recoveryTimeout(): number | ((opens: number) => number) {
    return this.settings.recoveryTimeout;
  }

  /** Trials at once while half-open. */
  get halfOpenMaxCalls(): number {
    return this.settings.halfOpenMaxCalls;
  }

  /** Successful trials that close the circuit. */
  get halfOpenSuccessThreshold(): number {
    return this.settings.halfOpenSuccessThreshold;
  }

  /** The name given in the options, if any. */
  get name(): string | undefined {
    return this.settings.name;
  }

  /**
   * The state now. An open circuit whose break has ended reads `'half-open'`, and a half-open
   * one past `halfOpenMaxWait` reads `'open'` (and emits those changes), even when nobody
   * called.
   */
  get state(): CircuitState {
    if (this.current === 'open' || this.current === 'half-open') this.catchUp(this.settings.clock.now());
    return this.current;
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
      trialsInFlight: state === 'half-open' ? this.trialsInFlight : 0,
      trialSuccesses: state === 'half-open' ? this.trialSuccesses : 0,
    };
  }

  /**
   * The state as plain JSON, for `new CircuitBreaker({ ...options, initialState })` or
   * {@link CircuitBreaker.restore} in this process or another (serverless cold starts, a
   * fleet sharing a store). `JSON.stringify(breaker)` calls it.
   *
   * @example
   * ```ts
   * await store.set('breaker:payments', JSON.stringify(breaker));
   * const initialState = JSON.parse(await store.get('breaker:payments'));
   * const restored = new CircuitBreaker({ ...options, initialState });
   * ```
   */
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
    const checked = checkSnapshot('CircuitBreaker restore(snapshot)', snapshot, this.settings);
    const from = this.current;
    this.load(checked);
    if (from !== checked.state) this.announce(from, checked.state, 'restored');
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof CircuitBreakerEvents>(event: K, listener: Listener<CircuitBreakerEvents[K]>): Unsubscribe {
    return (this.events ??= new Emitter<CircuitBreakerEvents>(EVENT_NAMES)).on(event, listener);
  }

  /** Opens the circuit until {@link CircuitBreaker.reset}: every call is rejected (`retryAfter` is `Infinity`). */
  isolate(): void {
    this.transition('isolated', 'manual', undefined);
  }

  /** Closes the circuit and forgets its failures, window and openings, from any state (also ends an isolation). */
  reset(): void {
    this.transition('closed', 'manual', undefined);
  }

  /** @internal */
  enter(call: Call, scope: Scope, frame: Frame, slot: number): Scope {
    const trial = this.current === 'closed' ? false : this.admission();
    if (typeof trial !== 'boolean') throw trial;
    const generation = this.generation;
    const timesSlowCalls = this.settings.slowCallDuration !== undefined;
    // A plain number for the common case (closed, no slow-call timing): nothing to allocate.
    if (!trial && !timesSlowCalls) {
      frame.keep(slot, generation);
      return scope;
    }
    const startedAt = timesSlowCalls ? this.settings.clock.now() : 0;
    const admitted: Admitted = { generation, trial, startedAt, work: undefined, abandoned: false };
    frame.keep(slot, admitted);
    if (!trial || !call.abortable) return scope;
    const work = openWorkTracker(() => {
      if (admitted.abandoned) this.trialWorkEnded(generation);
    });
    admitted.work = work;
    return scope.openTracked(work);
  }

  /** @internal */
  leave(_call: Call, token: unknown): void {
    try {
      if (typeof token === 'number') {
        this.recordSuccess(token, false, 0);
        return;
      }
      const { generation, trial, startedAt, work } = token as Admitted;
      if (work !== undefined) closeWorkTracker(work);
      this.recordSuccess(generation, trial, startedAt);
    } catch (internal) {
      reportInternalError(internal);
    }
  }

  /** @internal */
  leaveWithError(call: Call, _index: number, token: unknown, error: unknown): never {
    let outcome = error;
    try {
      if (typeof token === 'number') {
        outcome = this.recordError(call.callerAborted, token, false, 0, error, undefined);
      } else {
        const admitted = token as Admitted;
        outcome = this.recordError(call.callerAborted, admitted.generation, admitted.trial, admitted.startedAt, error, admitted);
      }
    } catch (internal) {
      reportInternalError(internal);
    }
    throw outcome;
  }

  /** The work of a trial whose caller gave up has ended: its place is free, unless the period it was admitted in has ended already. */
  private trialWorkEnded(generation: number): void {
    if (generation === this.generation && this.trialsInFlight > 0) this.trialsInFlight--;
  }

  /**
   * Decides, synchronously, whether a call may run: `false` for a call of the closed state,
   * `true` for a half-open trial (its slot is taken), or the `CircuitOpenError` to refuse it
   * with (the `rejected` event already emitted). Only asked when the stored state is not closed.
   */
  private admission(): boolean | CircuitOpenError {
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
    const error = refusalWithoutStack(() => new CircuitOpenError(retryAfter, state));
    const events = this.events;
    if (events !== undefined && events.has('rejected')) events.emit('rejected', { error });
    return error;
  }

    /**
   * Sorts an error into not counted, success or failure, and returns what the call rejects
   * with: `error`, or what `isFailure` threw.
   */
  private recordError(callerAborted: boolean, generation: number, trial: boolean, startedAt: number, error: unknown, admitted: Admitted | undefined): unknown {
    const work = admitted?.work;
    if (callerAborted || isLocalRejection(error)) {
      // The caller gave up, or a bulkhead or breaker inside this one refused the call before it
      // reached the dependency: neither says anything of the dependency's health, and counting
      // it either way would lie (a burst of load would open a breaker on a healthy service).
      // The trial's place goes to another caller once the work it started has ended: a function
      // that ignores its signal still loads the recovering dependency.
      if (work !== undefined) {
        (admitted as Admitted).abandoned = true;
        closeWorkTracker(work);
      } else if (trial && generation === this.generation) {
        this.trialsInFlight--;
      }
      return error;
    }
    // The outcome counts: the trial's place is accounted for below, not when its work ends.
    if (work !== undefined) closeWorkTracker(work);
    const isFailure = this.settings.isFailure;
    if (isFailure === undefined) {
      this.recordFailure(generation, trial, startedAt, error);
      return error;
    }
    let failed: boolean;
    try {
      failed = synchronousAnswer('CircuitBreaker isFailure', isFailure(error)) !== false;
    } catch (thrown) {
      this.recordFailure(generation, trial, startedAt, thrown);
      return thrown;
    }
    if (failed) this.recordFailure(generation, trial, startedAt, error);
    else this.recordSuccess(generation, trial, startedAt);
    return error;
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

  private recordSuccess(generation: number, trial: boolean, startedAt: number): void {
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
    } else if (this.settings.window !== undefined) {
      // A success can open the circuit too: the window reaching minimumCalls, or a slow call.
      const reason = this.rateReason();
      if (reason !== undefined) this.transition('open', reason, now);
    }
  }

  private recordFailure(generation: number, trial: boolean, startedAt: number, error: unknown): void {
    const now = this.countOutcome(true, generation, trial, startedAt);
    if (now === undefined) return;
    const events = this.events;
    if (events !== undefined && events.has('failure')) {
      events.emit('failure', { error, state: this.current, consecutiveFailures: this.consecutiveFailures });
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
  private catchUp(now: number): void {
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

  private transition(to: CircuitState, reason: CircuitStateChangeReason, at: number | undefined): void {
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
    this.onTransition?.(this, from, to, reason);
    const events = this.events;
    if (events !== undefined && events.has('stateChange')) events.emit('stateChange', { from, to, reason });
  }

  private load(snapshot: CheckedSnapshot): void {
    this.current = snapshot.state;
    this.generation++;
    this.consecutiveFailures = snapshot.consecutiveFailures;
    this.consecutiveOpens = snapshot.consecutiveOpens;
    this.openedAt = snapshot.state === 'closed' ? undefined : snapshot.openedAt;
    this.halfOpenAt = snapshot.retryAt;
    this.breakDuration = snapshot.breakDuration;
    this.trialsInFlight = 0;
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

/**
 * Reports a failure of the breaker's own bookkeeping: the call it happened in keeps its own
 * outcome, since a bug of the breaker's must not turn a payment that went through into an error.
 */
function reportInternalError(error: unknown): void {
  reportUncaught('bulwark: CircuitBreaker failed to record an outcome; the call keeps its own', error);
}

/**
 * A breaker built on settings already checked (a group's), bypassing the options checks.
 * @internal
 */
export function breakerWithSettings(settings: BreakerSettings): CircuitBreaker {
  return new CircuitBreaker(settings as CircuitBreakerOptions);
}
