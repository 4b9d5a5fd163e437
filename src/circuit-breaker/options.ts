/**
 * A circuit breaker's options, checked once: a group's breakers share one set.
 */
import { systemClock, type Clock } from '../shared/clock.js';
import * as validate from '../shared/validate.js';
import type { CircuitBreakerFailureRate, CircuitBreakerOptions, CircuitBreakerSlowCall } from './types.js';
import type { WindowShape } from './window.js';

const DEFAULT_FAILURE_THRESHOLD = 5;
export const DEFAULT_RECOVERY_TIMEOUT = 30_000;
/** The shortest default `halfOpenMaxWait`. */
export const DEFAULT_HALF_OPEN_MAX_WAIT = 30_000;
/** The most outcomes a count window keeps: one byte each, per breaker (per key of a group). */
const MAX_WINDOW_CALLS = 100_000;
/** The most buckets a time window keeps: 24 bytes each, and advancing may visit every one. */
const MAX_WINDOW_BUCKETS = 10_000;
const DEFAULT_WINDOW_CALLS = 100;
const DEFAULT_MINIMUM_CALLS = 100;
const DEFAULT_WINDOW_BUCKETS = 10;
export const SNAPSHOT_VERSION = 1;

const OPTION_KEYS: readonly (keyof CircuitBreakerOptions)[] = [
  'failureThreshold',
  'failureRate',
  'slowCall',
  'recoveryTimeout',
  'halfOpenMaxCalls',
  'halfOpenSuccessThreshold',
  'halfOpenMaxWait',
  'isFailure',
  'isFailureResult',
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
  shouldHandle: '"isFailure" or "isFailureResult"',
  handleWhenResult: '"isFailureResult"',
  errorFilter: '"isFailure", which answers the other way round: true when the error counts',
  timeout: 'withTimeout(ms), composed inside the breaker',
};

export function plainObject(name: string, value: unknown): Record<string, unknown> {
  // Stryker disable next-line ConditionalExpression: its one caller (checkSnapshot) never passes null, which there means no window
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
export function windowCalls(name: string, value: unknown): number {
  const calls = validate.count(name, value, 1);
  if (calls > MAX_WINDOW_CALLS) throw new RangeError(`${name} must be a whole number from 1 to ${MAX_WINDOW_CALLS} (a window keeps one byte per call), got ${validate.show(value)}`);
  return calls;
}

export function windowShape(name: string, value: unknown): WindowShape {
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
  if (buckets > duration) {
    throw new RangeError(`${name}.buckets must be from 1 to duration (${duration}), so each bucket spans at least 1 ms, got ${buckets}`);
  }
  if (buckets > MAX_WINDOW_BUCKETS) throw new RangeError(`${name}.buckets must be at most ${MAX_WINDOW_BUCKETS}, got ${buckets}`);
  return { duration, buckets };
}

/** A breaker's options, checked once. The breakers of a `CircuitBreakerGroup` share one. */
export class BreakerSettings {
  readonly failureThreshold: number;
  readonly recoveryTimeout: number | ((opens: number) => number);
  readonly halfOpenMaxCalls: number;
  readonly halfOpenSuccessThreshold: number;
  /** `undefined`: the break duration that just ended. */
  readonly halfOpenMaxWait: number | undefined;
  readonly isFailure: ((error: unknown) => boolean) | undefined;
  readonly isFailureResult: ((value: unknown) => boolean) | undefined;
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
    // Stryker disable next-line BlockStatement: the field is undefined unless set (useDefineForClassFields); said here for the reader
    if (opts.halfOpenMaxWait === undefined) {
      this.halfOpenMaxWait = undefined;
    } else {
      const wait = validate.duration(`${what} halfOpenMaxWait`, opts.halfOpenMaxWait, true);
      if (wait < 1) throw new RangeError(`${what} halfOpenMaxWait must be at least 1 ms (a trial needs time to answer), got ${wait}`);
      this.halfOpenMaxWait = wait;
    }
    this.isFailure = opts.isFailure === undefined ? undefined : validate.fn(`${what} isFailure`, opts.isFailure);
    this.isFailureResult = opts.isFailureResult === undefined ? undefined : validate.fn(`${what} isFailureResult`, opts.isFailureResult);
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

