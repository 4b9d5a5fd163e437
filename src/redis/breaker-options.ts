/** The options of the shared circuit breaker, checked once, and what its script is told of them. */
import { CircuitBreaker, type CircuitBreakerEvents, type CircuitBreakerOptions } from 'bulwark';
import type { RedisStoreError } from './store.js';
import * as validate from '../shared/validate.js';
import { checkSubscriber, type RedisSubscriberLike } from './subscriber.js';
import { positive } from './util.js';

/**
 * Options of {@link RedisCircuitBreaker}: those of the core's `CircuitBreaker` (the same
 * meaning, applied to the calls of the whole fleet), but `initialState` and `clock` (the state
 * lives in Redis, time is the server's), plus how this replica talks to Redis.
 */
export interface RedisCircuitBreakerOptions extends Omit<CircuitBreakerOptions, 'initialState' | 'clock' | 'name'> {
  /** The breaker's name, shared by every replica that shares it: its keys are `{bulwark:<name>}:breaker` and `:trials`. Required. */
  name: string;
  /**
   * A connection this breaker may put in subscriber mode (`client.duplicate()`; several breakers
   * may share one), so a change made by any replica reaches this one at once. Without it, or
   * while it is disconnected, the replica learns changes from its own reports and reads (at least
   * every `syncInterval` while it has calls): a call that finds its view older than two sync
   * intervals waits for a fresh one.
   * @default none (polling)
   */
  subscriber?: RedisSubscriberLike | undefined;
  /**
   * How often, in ms, this replica reports the outcomes of its calls (one round trip for all of
   * them). An outcome that could open the circuit, by what this replica knows, is reported at once.
   * @default 100
   */
  syncInterval?: number | undefined;
  /**
   * How long, in ms, a call waits on Redis at most; beyond it the store counts as down.
   * @default 100
   */
  timeout?: number | undefined;
  /**
   * While Redis is down, this replica asks it again every `probeInterval` ms.
   * @default 1_000
   */
  probeInterval?: number | undefined;
}

/** Events of a {@link RedisCircuitBreaker}: the core breaker's, seen by this replica, and the store's. */
export interface RedisCircuitBreakerEvents extends CircuitBreakerEvents {
  /** A call to Redis failed or timed out, with `error`. */
  storeError: { readonly error: RedisStoreError };
  /** Redis stopped answering (`error`, the failure that showed it): this replica decides with local state until `storeUp`. */
  storeDown: { readonly error: RedisStoreError };
  /** Redis answers again: the breaker is shared again (the shared state wins). */
  storeUp: Record<string, never>;
}

const REDIS_KEYS = ['subscriber', 'syncInterval', 'timeout', 'probeInterval'] as const;
const OPTION_KEYS: readonly string[] = [
  'name',
  'failureThreshold',
  'failureRate',
  'slowCall',
  'recoveryTimeout',
  'halfOpenMaxCalls',
  'halfOpenSuccessThreshold',
  'halfOpenMaxWait',
  'isFailure',
  'isFailureResult',
  ...REDIS_KEYS,
];
const PEER_NAMES: validate.PeerNames = {
  initialState: 'none: the state lives in Redis, and a new replica learns it with its first call',
  clock: "none: time is the Redis server's",
  resetTimeout: '"recoveryTimeout"',
  errorThresholdPercentage: 'failureRate.threshold, a share from 0 to 1',
  volumeThreshold: 'failureRate.minimumCalls',
  rollingCountTimeout: 'failureRate.window: { duration }',
  pollInterval: '"syncInterval"',
  flushInterval: '"syncInterval"',
  storeTimeout: '"timeout"',
};

/** What the shared breaker needs of its options, defaults applied. */
export interface SharedSettings {
  readonly name: string;
  readonly subscriber: RedisSubscriberLike | undefined;
  readonly syncInterval: number;
  readonly timeout: number;
  readonly probeInterval: number;
  readonly failureThreshold: number;
  readonly recoveryTimeout: number | ((opens: number) => number);
  readonly halfOpenMaxCalls: number;
  readonly halfOpenSuccessThreshold: number;
  readonly isFailure: ((error: unknown) => boolean) | undefined;
  readonly isFailureResult: ((value: unknown) => boolean) | undefined;
  /** `calls`: a count window of `windowSize` calls; `time`: `windowSize` ms in `buckets`; `none`. */
  readonly windowKind: 'none' | 'calls' | 'time';
  readonly windowSize: number;
  readonly buckets: number;
  readonly minimumCalls: number;
  /** `Infinity` without `failureRate` (a rate never reaches it). */
  readonly failureRateThreshold: number;
  /** `Infinity` without `slowCall`. */
  readonly slowCallRateThreshold: number;
  readonly slowCallDuration: number | undefined;
  /** The script's ARGV 2–12 but the break duration (9), which depends on the openings so far. */
  readonly scriptArgs: readonly string[];
  /** The core breaker of the same options: it checked them, and it decides while Redis is down. */
  readonly local: CircuitBreaker;
}

/** A count or duration the script reads, with -1 for "none" (Infinity). */
function arg(value: number): string {
  return Number.isFinite(value) ? String(value) : '-1';
}

/** Checks the options (the core's checks for the breaker's own, named as this class's) and applies the defaults. */
export function sharedSettings(options: RedisCircuitBreakerOptions, isCountedFailure: (error: unknown) => boolean): SharedSettings {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`RedisCircuitBreaker(client, options): options with a name are required, got ${validate.show(options)}`);
  }
  const opts = validate.options('RedisCircuitBreaker', options as unknown as Record<string, unknown>, OPTION_KEYS, PEER_NAMES) as unknown as RedisCircuitBreakerOptions;
  if (opts.name === undefined) throw new TypeError('RedisCircuitBreaker name is required: every replica sharing the breaker uses the same name');
  const name = validate.text('RedisCircuitBreaker name', opts.name);
  if (name === '') throw new RangeError('RedisCircuitBreaker name must be a non-empty string, got ""');
  const breakerOptions: Record<string, unknown> = { ...opts };
  for (const key of REDIS_KEYS) delete breakerOptions[key];
  let local: CircuitBreaker;
  try {
    // The local breaker counts what this breaker classified: a failure is the one marker error.
    local = new CircuitBreaker({ ...(breakerOptions as CircuitBreakerOptions), isFailure: isCountedFailure, isFailureResult: undefined });
    // Its own classifiers are checked as given (the local breaker is built without them).
    if (opts.isFailure !== undefined) validate.fn('CircuitBreaker isFailure', opts.isFailure);
    if (opts.isFailureResult !== undefined) validate.fn('CircuitBreaker isFailureResult', opts.isFailureResult);
  } catch (error) {
    if (error instanceof Error) error.message = error.message.replace(/^CircuitBreaker\b/, 'RedisCircuitBreaker');
    throw error;
  }
  const failureRate = opts.failureRate;
  const slowCall = opts.slowCall;
  let windowKind: SharedSettings['windowKind'] = 'none';
  let windowSize = 0;
  let buckets = 1;
  let minimumCalls = 100;
  if (failureRate !== undefined || slowCall !== undefined) {
    const window = failureRate?.window ?? { calls: 100 };
    if ('calls' in window) {
      windowKind = 'calls';
      windowSize = window.calls;
    } else {
      windowKind = 'time';
      windowSize = window.duration;
      buckets = window.buckets ?? Math.min(10, Math.floor(window.duration));
    }
    minimumCalls = failureRate?.minimumCalls ?? (windowKind === 'calls' ? Math.min(100, windowSize) : 100);
  }
  const halfOpenMaxWait = opts.halfOpenMaxWait;
  const settings = {
    name,
    subscriber: opts.subscriber === undefined ? undefined : checkSubscriber('RedisCircuitBreaker', opts.subscriber),
    syncInterval: opts.syncInterval === undefined ? 100 : positive('RedisCircuitBreaker syncInterval', validate.duration('RedisCircuitBreaker syncInterval', opts.syncInterval)),
    timeout: opts.timeout === undefined ? 100 : positive('RedisCircuitBreaker timeout', validate.duration('RedisCircuitBreaker timeout', opts.timeout)),
    probeInterval: opts.probeInterval === undefined ? 1_000 : positive('RedisCircuitBreaker probeInterval', validate.duration('RedisCircuitBreaker probeInterval', opts.probeInterval)),
    failureThreshold: local.failureThreshold,
    recoveryTimeout: local.recoveryTimeout,
    halfOpenMaxCalls: local.halfOpenMaxCalls,
    halfOpenSuccessThreshold: local.halfOpenSuccessThreshold,
    isFailure: opts.isFailure,
    isFailureResult: opts.isFailureResult,
    windowKind,
    windowSize,
    buckets,
    minimumCalls,
    failureRateThreshold: failureRate === undefined ? Infinity : failureRate.threshold,
    slowCallRateThreshold: slowCall === undefined ? Infinity : slowCall.rateThreshold,
    slowCallDuration: slowCall?.duration,
    local,
  };
  return {
    ...settings,
    scriptArgs: [
      arg(settings.failureThreshold),
      String(minimumCalls),
      failureRate === undefined ? '-1' : String(failureRate.threshold),
      slowCall === undefined ? '-1' : String(slowCall.rateThreshold),
      windowKind,
      String(windowSize),
      String(buckets),
      'break',
      halfOpenMaxWait === undefined ? '-1' : Number.isFinite(halfOpenMaxWait) ? String(halfOpenMaxWait) : '-2',
      String(settings.halfOpenMaxCalls),
      String(settings.halfOpenSuccessThreshold),
    ],
  };
}
