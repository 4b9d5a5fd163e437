import { systemClock, type Clock } from '../shared/clock.js';
import * as validate from '../shared/validate.js';
import { MAX_SLIDING_WINDOW_RATE, SlidingWindow } from './sliding-window.js';
import { TokenBucket, type PermitState } from './token-bucket.js';

/** How a {@link RateLimiter} counts permits. */
export type RateLimitAlgorithm = 'token-bucket' | 'sliding-window';

/** Options of {@link RateLimiter} (and of every limiter of a {@link RateLimiterGroup}). */
export interface RateLimiterOptions {
  /** Permits per `interval`: a whole number ≥ 1 (at most 100 000 with `'sliding-window'`). Required. */
  rate: number;
  /**
   * The span `rate` is counted over, in ms: finite and > 0.
   * @default 1_000
   */
  interval?: number | undefined;
  /**
   * `'token-bucket'`: a bucket of `burst` permits, full at first, refilling continuously at
   * `rate` per `interval`; an idle client may burst, and over any window of `interval` at most
   * `rate + burst` permits are granted. `'sliding-window'`: no window of `interval` ever holds
   * more than `rate` permits (exact: the limiter keeps the time of each of the last `rate`).
   * @default 'token-bucket'
   */
  algorithm?: RateLimitAlgorithm | undefined;
  /**
   * Token bucket only: its capacity, the permits an idle limiter grants at once; a whole number
   * ≥ 1. Given with `'sliding-window'`, a `TypeError` (a sliding window has no burst).
   * @default rate
   */
  burst?: number | undefined;
  /**
   * How long, in ms, a call may wait for its permit. A call whose permit (after every call
   * already waiting) is further away is refused at once, never made to wait and then refused.
   * `0`: refuse whenever no permit is free now; `Infinity`: wait as long as it takes.
   * @default 0
   */
  maxWait?: number | undefined;
  /**
   * How many calls may wait at once (with `maxWait` > 0): a whole number ≥ 0, or `Infinity`.
   * Given with a `maxWait` of 0, a `TypeError` (no call waits then).
   * @default Infinity
   */
  maxQueue?: number | undefined;
  /**
   * The source of time; the limiter reads it on every call and arms a timer only while a call waits.
   * @default systemClock
   */
  clock?: Clock | undefined;
  /** A name for logs and metrics. */
  name?: string | undefined;
}

const OPTION_KEYS: readonly (keyof RateLimiterOptions)[] = ['rate', 'interval', 'algorithm', 'burst', 'maxWait', 'maxQueue', 'clock', 'name'];
const ALGORITHMS: readonly RateLimitAlgorithm[] = ['token-bucket', 'sliding-window'];

/** Other libraries' names, so users switching from them are told ours. */
const PEER_NAMES: validate.PeerNames = {
  // bottleneck
  maxConcurrent: 'none: calls at once are limited by a Bulkhead ("maxConcurrent"), composed with the limiter',
  minTime: '"rate" and "interval" (minTime: 100 is rate: 1, interval: 100)',
  reservoir: '"rate" (the permits of each "interval")',
  reservoirRefreshAmount: '"rate"',
  reservoirRefreshInterval: '"interval"',
  reservoirIncreaseAmount: '"rate"',
  reservoirIncreaseInterval: '"interval"',
  reservoirIncreaseMaximum: '"burst"',
  highWater: '"maxQueue"',
  // p-throttle
  limit: '"rate"',
  strict: '"algorithm" ("sliding-window")',
  // limiter
  tokensPerInterval: '"rate"',
  bucketSize: '"burst"',
  // resilience4j
  limitForPeriod: '"rate"',
  limitRefreshPeriod: '"interval"',
  timeoutDuration: '"maxWait"',
  // Polly / System.Threading.RateLimiting
  permitLimit: '"rate"',
  tokenLimit: '"burst"',
  queueLimit: '"maxQueue"',
  replenishmentPeriod: '"interval"',
  tokensPerPeriod: '"rate"',
  window: '"interval"',
  segmentsPerWindow: '"algorithm" ("sliding-window" is exact, with no segments)',
  // others
  capacity: '"burst"',
  period: '"interval"',
  duration: '"interval"',
  points: '"rate"',
};

/** A duration in ms that no timer waits for as a whole: finite and > 0. */
function positiveDuration(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${validate.show(value)}`);
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a finite duration in ms > 0, got ${validate.show(value)}`);
  return value;
}

/** Where a limiter of a group sends its events, with its key. */
export interface GroupRelay {
  has(event: 'rejected' | 'delayed'): boolean;
  emit(event: 'rejected' | 'delayed', key: string, payload: object): void;
}

/**
 * Checked options, shared by every limiter of a group; a limiter built from them checks nothing
 * again. A group's limiters each get a copy with their own name, key and relay.
 */
export class LimiterSettings {
  readonly rate: number;
  readonly interval: number;
  readonly algorithm: RateLimitAlgorithm;
  readonly burst: number | undefined;
  readonly maxWait: number;
  readonly maxQueue: number;
  readonly clock: Clock;
  readonly name: string | undefined;
  readonly key: string | undefined = undefined;
  readonly relay: GroupRelay | undefined = undefined;

  constructor(options: RateLimiterOptions, owner = 'RateLimiter') {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new TypeError(`new ${owner}(options): options with rate are required, got ${validate.show(options)}`);
    }
    const opts = validate.options(owner, options, OPTION_KEYS, PEER_NAMES);
    if (opts.rate === undefined) throw new TypeError(`new ${owner}(options): rate is required`);
    this.algorithm = opts.algorithm === undefined ? 'token-bucket' : validate.oneOf(`${owner} algorithm`, opts.algorithm, ALGORITHMS);
    this.rate = validate.count(`${owner} rate`, opts.rate, 1);
    if (this.algorithm === 'sliding-window' && this.rate > MAX_SLIDING_WINDOW_RATE) {
      throw new RangeError(
        `${owner} rate must be a whole number from 1 to ${MAX_SLIDING_WINDOW_RATE} with algorithm "sliding-window" (it keeps the time of each of the last rate permits), got ${validate.show(opts.rate)}; use "token-bucket" beyond`,
      );
    }
    this.interval = opts.interval === undefined ? 1_000 : positiveDuration(`${owner} interval`, opts.interval);
    if (opts.burst !== undefined && this.algorithm === 'sliding-window') {
      throw new TypeError(`${owner} burst applies to algorithm "token-bucket" only: a sliding window has none (it never grants more than rate per interval)`);
    }
    this.burst = this.algorithm === 'sliding-window' ? undefined : opts.burst === undefined ? this.rate : validate.count(`${owner} burst`, opts.burst, 1);
    this.maxWait = opts.maxWait === undefined ? 0 : validate.span(`${owner} maxWait`, opts.maxWait);
    this.maxQueue = opts.maxQueue === undefined ? Infinity : validate.count(`${owner} maxQueue`, opts.maxQueue, 0, true);
    if (opts.maxQueue !== undefined && this.maxQueue > 0 && this.maxWait === 0) {
      throw new TypeError(`${owner} maxQueue needs a maxWait > 0: with maxWait 0 (the default) no call ever waits, got maxQueue ${validate.show(opts.maxQueue)}`);
    }
    this.clock = opts.clock === undefined ? systemClock : validate.clock(`${owner} clock`, opts.clock);
    this.name = opts.name === undefined ? undefined : validate.text(`${owner} name`, opts.name);
  }

  /** The settings of the limiter of `key` in a group named by these settings' `name`. */
  forKey(key: string, relay: GroupRelay): LimiterSettings {
    const copy = Object.create(LimiterSettings.prototype) as LimiterSettings;
    return Object.assign(copy, this, { name: this.name === undefined ? undefined : `${this.name}:${key}`, key, relay });
  }

  /** A fresh state of permits, full. */
  permits(): PermitState {
    return this.algorithm === 'sliding-window' ? new SlidingWindow(this.rate, this.interval) : new TokenBucket(this.rate, this.interval, this.burst as number);
  }
}
