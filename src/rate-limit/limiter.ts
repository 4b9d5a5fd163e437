import type { Admission, LayerCall, PolicyDescription } from '../engine/contract.js';
import { LayerPolicy } from '../engine/policy.js';
import { withoutStack } from '../errors.js';
import { Emitter, type Listener, type Unsubscribe } from '../events.js';
import { MAX_TIMER_DELAY, type Clock } from '../shared/clock.js';
import { List, type ListNode } from '../shared/list.js';
import { RATE_LIMITER_COUNTERS, RATE_LIMITER_GAUGES, RATE_LIMITER_LOGS } from './description.js';
import { RateLimitedError, type RateLimitedReason } from './error.js';
import { LimiterSettings, type GroupRelay, type RateLimitAlgorithm, type RateLimiterOptions } from './options.js';
import type { PermitState } from './token-bucket.js';

/** Events of a {@link RateLimiter}. */
export interface RateLimiterEvents {
  /** A call was refused at once with `error`, for `reason`: its permit was further away than `maxWait` (`'limit'`), or `maxQueue` calls waited (`'queue-full'`); a permit is `retryAfter` ms away. */
  rejected: { readonly error: RateLimitedError; readonly reason: RateLimitedReason; readonly retryAfter: number };
  /** A call got no permit at once and waits `wait` ms for it (as computed on arrival), `queued` calls waiting with it. */
  delayed: { readonly wait: number; readonly queued: number };
}

const EVENT_NAMES: readonly (keyof RateLimiterEvents)[] = ['rejected', 'delayed'];

/** A call waiting for its permit, a node of the queue (leaving from the middle is O(1)). */
class QueuedCall implements ListNode<QueuedCall> {
  /** Set right after the call is made to wait (the wait needs this entry first, for its `onAbort`). */
  admission: Admission = NOT_YET_WAITING;
  previous: QueuedCall | undefined = undefined;
  next: QueuedCall | undefined = undefined;
}

const NOT_YET_WAITING: Admission = { grant() {}, refuse() {} };

/**
 * Limits how often calls start: `rate` permits per `interval`, one per call (per attempt, inside
 * a retry). A call with no permit free waits for one, first in first out, when it comes within
 * `maxWait` and the queue has room; otherwise it is refused at once with
 * {@link RateLimitedError}, whose `retryAfter` says exactly when a permit will be free.
 *
 * `'token-bucket'` (the default) lets an idle client burst up to `burst` calls and then holds it
 * to `rate` per `interval`; `'sliding-window'` never lets any window of `interval` hold more than
 * `rate` calls. Either way the limiter arms at most one timer, for the first waiting call, and
 * none while nobody waits: permits are computed from the clock when read.
 *
 * @example
 * ```ts
 * // The partner API allows 100 requests a second; wait up to 2 s for a permit, else fail fast.
 * const partner = new RateLimiter({ rate: 100, interval: 1_000, maxWait: 2_000, name: 'partner' });
 * const order = await partner.execute(({ signal }) => fetch(orderUrl, { signal }));
 * ```
 */
export class RateLimiter extends LayerPolicy<void> {
  /** Permits per `interval`. */
  readonly rate: number;
  /** The span `rate` is counted over, in ms. */
  readonly interval: number;
  /** The {@link RateLimiterOptions.algorithm | algorithm} in force. */
  readonly algorithm: RateLimitAlgorithm;
  /** The token bucket's capacity; `undefined` for a sliding window. */
  readonly burst: number | undefined;
  /** How long, in ms, a call may wait for its permit. */
  readonly maxWait: number;
  /** How many calls may wait at once. */
  readonly maxQueue: number;
  /** The name given in the options (`<group name>:<key>` in a group), if any. */
  readonly name: string | undefined;
  private readonly clock: Clock;
  private readonly permits: PermitState;
  /** The calls waiting for a permit, first in first out. */
  private readonly queue = new List<QueuedCall>();
  /** The one timer, armed for the next permit while a call waits. */
  private timer: unknown = undefined;
  /** Made on the first subscription: a group of many limiters nobody listens to holds none. */
  private events: Emitter<RateLimiterEvents> | undefined = undefined;
  private readonly key: string | undefined;
  private readonly relay: GroupRelay | undefined;

  constructor(options: RateLimiterOptions) {
    super();
    const settings = options instanceof LimiterSettings ? options : new LimiterSettings(options);
    this.rate = settings.rate;
    this.interval = settings.interval;
    this.algorithm = settings.algorithm;
    this.burst = settings.burst;
    this.maxWait = settings.maxWait;
    this.maxQueue = settings.maxQueue;
    this.name = settings.name;
    this.clock = settings.clock;
    this.key = settings.key;
    this.relay = settings.relay;
    this.permits = settings.permits();
  }

  /** Permits a burst of calls arriving now could take at once: 0 while calls wait. */
  get available(): number {
    return this.queue.size > 0 ? 0 : this.permits.available(this.clock.now());
  }

  /** How many calls wait for a permit now. */
  get queued(): number {
    return this.queue.size;
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes.
   *
   * @example
   * ```ts
   * partner.on('rejected', ({ retryAfter }) => log.warn({ retryAfter }, 'partner rate limit'));
   * ```
   */
  on<K extends keyof RateLimiterEvents>(event: K, listener: Listener<RateLimiterEvents[K]>): Unsubscribe {
    return (this.events ??= new Emitter<RateLimiterEvents>(EVENT_NAMES)).on(event, listener);
  }

  /** Takes a permit, or a queue place with a wait for one, or refuses at once. */
  protected override enter(call: LayerCall): Admission | undefined {
    const now = this.clock.now();
    // Waiting calls go first (no barging); a timer that fired late has not granted theirs yet.
    // Stryker disable next-line ConditionalExpression,EqualityOperator: grantDue() on an empty queue grants nothing and disarms no timer (none is armed)
    if (this.queue.size > 0) this.grantDue(now);
    const ahead = this.queue.size;
    const wait = this.permits.waitFor(now, ahead);
    // Stryker disable next-line ConditionalExpression: after grantDue() a call still waits only when no permit is free now, so wait > 0 whenever ahead > 0
    if (wait === 0 && ahead === 0) {
      this.permits.take(now);
      return undefined;
    }
    if (wait > this.maxWait) throw this.reject('limit', wait);
    if (ahead >= this.maxQueue) throw this.reject('queue-full', wait);
    const entry = new QueuedCall();
    entry.admission = call.wait(this.leaveQueue, entry);
    this.queue.push(entry);
    if (this.timer === undefined) this.arm(this.permits.waitFor(now, 0));
    // Stryker disable next-line ConditionalExpression: spares a payload nobody receives; emit() reaches only listeners
    if (this.hears('delayed')) this.emit('delayed', { wait, queued: this.queue.size });
    return entry.admission;
  }

  protected describe(): PolicyDescription {
    return {
      kind: 'rate-limiter',
      label: 'rate limiter',
      name: this.name,
      refuses: true,
      counters: RATE_LIMITER_COUNTERS,
      gauges: RATE_LIMITER_GAUGES,
      logs: RATE_LIMITER_LOGS,
      readGauges: () => ({ permits: this.available, queued: this.queue.size }),
      on: (event, listener) => this.on(event as keyof RateLimiterEvents, listener),
    };
  }

  /**
   * Grants, first in first out, every permit the clock allows at `now`; then arms the timer for
   * the next one while calls still wait, or clears it. A timer that fired late grants all the
   * permits that came meanwhile (a token bucket keeps at most `burst` of them, as always).
   */
  private grantDue(now: number): void {
    let granted = false;
    for (let head = this.queue.head; head !== undefined; head = this.queue.head) {
      const wait = this.permits.waitFor(now, 0);
      if (wait > 0) {
        // The timer stands for the next permit, whoever waits for it: re-armed only when that moved.
        if (granted || this.timer === undefined) this.arm(wait);
        return;
      }
      this.permits.take(now);
      this.queue.remove(head);
      // Stryker disable next-line BooleanLiteral: a timer left armed was due already (it fired late), so it fires at once and arms the next
      granted = true;
      head.admission.grant();
    }
    this.disarm();
  }

  /** Arms the one timer `wait` ms from now; a wait beyond what a timer can hold is waited in steps. */
  private arm(wait: number): void {
    // Stryker disable next-line ConditionalExpression: clearTimeout(undefined) does nothing
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(this.onTimer, Math.min(wait, MAX_TIMER_DELAY));
  }

  private disarm(): void {
    // Stryker disable next-line ConditionalExpression: clearTimeout(undefined) does nothing
    if (this.timer === undefined) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.grantDue(this.clock.now());
  };

  /**
   * A waiting call was aborted: it leaves the queue and those behind it move up. The timer
   * stays, armed for the next permit, which is now the new first call's; with nobody left it goes.
   */
  private readonly leaveQueue = (_reason: unknown, entry: QueuedCall): void => {
    this.queue.remove(entry);
    if (this.queue.size === 0) this.disarm();
  };

  private reject(reason: RateLimitedReason, retryAfter: number): RateLimitedError {
    const error = withoutStack(() => new RateLimitedError(reason, retryAfter, this.rate, this.interval));
    // Stryker disable next-line ConditionalExpression: spares a payload nobody receives; emit() reaches only listeners
    if (this.hears('rejected')) this.emit('rejected', { error, reason, retryAfter });
    return error;
  }

  private hears(event: keyof RateLimiterEvents): boolean {
    // Stryker disable next-line ConditionalExpression: only spares payloads (see emit)
    return this.events?.has(event) === true || this.relay?.has(event) === true;
  }

  private emit<K extends keyof RateLimiterEvents>(event: K, payload: RateLimiterEvents[K]): void {
    this.events?.emit(event, payload);
    if (this.relay !== undefined && this.relay.has(event)) this.relay.emit(event, this.key as string, payload);
  }
}

/** True when forgetting `limiter` loosens no limit: nobody waits and its permits are all back. */
export function isAtRest(limiter: RateLimiter): boolean {
  const internals = limiter as unknown as { queue: List<QueuedCall>; permits: PermitState; clock: Clock };
  return internals.queue.size === 0 && internals.permits.atRest(internals.clock.now());
}
