/**
 * A rate limit shared by every replica of a service through Redis: one token bucket per name,
 * decided atomically on the server's clock, one round trip per call (or per lease of permits,
 * with `leaseSize`). When Redis fails, a local {@link RateLimiter} of the same options stands in
 * (or calls are refused, with `failClosed`).
 */
import {
  LayerPolicy,
  RateLimitedError,
  RateLimiter,
  type Admission,
  type LayerCall,
  type Listener,
  type PolicyDescription,
  type Unsubscribe,
} from 'bulwark';
import * as validate from '../shared/validate.js';
import { REDIS_RATE_LIMITER_COUNTERS, REDIS_RATE_LIMITER_GAUGES, REDIS_RATE_LIMITER_LOGS } from './description.js';
import { Emitter } from '../shared/emitter.js';
import { PermitLease, type LeaseHost, type Pending } from './limiter-lease.js';
import { LEASE_SCRIPT, RATE_LIMIT_SCRIPT, rateKey } from './script.js';
import { RedisStoreError, runScript, runnerOf, type RedisClientLike } from './store.js';
import { withoutStack } from '../shared/stack.js';
import { positive } from './util.js';
import { StoreHealth } from './store-health.js';

/** Options of {@link RedisRateLimiter}. */
export interface RedisRateLimiterOptions {
  /** The limit's name, shared by every replica that shares the limit: its key is `{bulwark:<name>}:rate`. Required. */
  name: string;
  /** Permits per `interval`, across the fleet: a whole number ≥ 1. Required. */
  rate: number;
  /**
   * The span `rate` is counted over, in ms: finite and > 0.
   * @default 1_000
   */
  interval?: number | undefined;
  /**
   * The bucket's capacity: permits an idle fleet may take at once; a whole number ≥ 1.
   * @default rate
   */
  burst?: number | undefined;
  /**
   * How long, in ms, a call may wait for its permit: a call whose permit is that close reserves
   * it in the same round trip and waits; a later one is refused at once.
   * @default 0
   */
  maxWait?: number | undefined;
  /**
   * How long, in ms, a call waits on Redis at most; beyond it the store counts as down.
   * @default 100
   */
  timeout?: number | undefined;
  /**
   * While Redis is down, one call per `probeInterval` ms asks it again (the others decide locally
   * at once); its answer brings sharing back.
   * @default 1_000
   */
  probeInterval?: number | undefined;
  /**
   * `false`: while Redis is down a local `RateLimiter` of the same options decides (each replica
   * then allows the whole `rate`). `true`: calls are refused with `RedisStoreError` instead.
   * @default false
   */
  failClosed?: boolean | undefined;
  /**
   * How many permits a round trip takes for this replica from the shared bucket: the call that
   * asks uses one, and the replica holds the other `leaseSize − 1` for its next calls, which then
   * start at once, with no round trip, until they run out or lapse (`leaseTime`). Calls that
   * arrive on an empty lease share one round trip, which takes a permit for each of them (or
   * reserves one within `maxWait`, exactly as without a lease) and `leaseSize − 1` spare ones
   * from the permits free now. After a round trip finds no permit within `maxWait`, the replica
   * refuses calls itself until the next one could be: other replicas only ever take permits.
   *
   * The cost is accuracy: a spare permit leaves the bucket before its call starts. With N
   * replicas, the calls of any span of time exceed what the bucket allows by at most
   * N × (leaseSize − 1) permits (spare ones taken before the span), and fall short of it by at
   * most the spare permits held at its end (N × (leaseSize − 1)) and those that lapsed unused
   * (at most leaseSize − 1 per replica per `leaseTime`). A whole number from 1 to `burst`; 1
   * (the default) leases nothing: every call makes its own round trip.
   * @default 1
   */
  leaseSize?: number | undefined;
  /**
   * How long, in ms, spare permits stay usable after the round trip that took them; unused ones
   * then lapse (the bucket refills them at `rate`), so an idle replica hoards no one's budget.
   * A finite duration > 0; it has no effect with `leaseSize` 1.
   * @default 1_000
   */
  leaseTime?: number | undefined;
}

/** Events of a {@link RedisRateLimiter}. */
export interface RedisRateLimiterEvents {
  /** A call was refused with `error`: its permit was further away than `maxWait` (`retryAfter` from the server), or the store was down with `failClosed`. */
  rejected: { readonly error: RateLimitedError | RedisStoreError; readonly retryAfter: number };
  /** A call reserved a permit `wait` ms away and waits for it. */
  delayed: { readonly wait: number };
  /** A call to Redis failed or timed out, with `error`. */
  storeError: { readonly error: RedisStoreError };
  /** Redis stopped answering (`error`, the failure that showed it): decisions are local (or refused, with `failClosed`) until `storeUp`. */
  storeDown: { readonly error: RedisStoreError };
  /** Redis answers again: the limit is shared again. */
  storeUp: Record<string, never>;
}

const EVENT_NAMES: readonly (keyof RedisRateLimiterEvents)[] = ['rejected', 'delayed', 'storeError', 'storeDown', 'storeUp'];
const OPTION_KEYS: readonly (keyof RedisRateLimiterOptions)[] = ['name', 'rate', 'interval', 'burst', 'maxWait', 'timeout', 'probeInterval', 'failClosed', 'leaseSize', 'leaseTime'];
const PEER_NAMES: validate.PeerNames = {
  // rate-limiter-flexible
  points: '"rate"',
  duration: '"interval" (in ms, where duration is in seconds)',
  keyPrefix: '"name"',
  storeClient: 'the first argument (the client)',
  execEvenly: '"maxWait" (calls reserve their permit and wait for it)',
  insuranceLimiter: 'none: a local RateLimiter of the same options stands in while Redis is down ("failClosed": false)',
  // bottleneck
  reservoir: '"rate" (the permits of each "interval")',
  reservoirRefreshAmount: '"rate"',
  reservoirRefreshInterval: '"interval"',
  minTime: '"rate" and "interval" (minTime: 100 is rate: 1, interval: 100)',
  datastore: 'the first argument (the client)',
  clientOptions: 'the first argument (the client)',
  id: '"name"',
  highWater: 'none: calls wait at most "maxWait"',
  // RateLimiter
  algorithm: 'none: the shared limiter is a token bucket',
  maxQueue: 'none: calls reserve their permit and wait at most "maxWait"',
  clock: 'none: time is the Redis server\'s',
};

/**
 * Limits how often calls start across every process that shares `name` on one Redis: `rate`
 * permits per `interval`, a token bucket of `burst` decided atomically by a Lua script on the
 * server's clock (one round trip per call; the call waits for it). A refused call gets
 * {@link RateLimitedError} (the core's), its `retryAfter` computed by the server. With
 * `leaseSize` k > 1, a round trip takes up to k permits and the replica's next calls use the
 * spare ones with no round trip (see `leaseSize` for what that costs in accuracy).
 *
 * The client is the service's own: ioredis, iovalkey or node-redis v4+, or a cluster client of
 * either. When Redis fails or takes longer than `timeout`, the limiter emits `storeDown` and a
 * local {@link RateLimiter} of the same options decides (each replica then allows `rate` on its
 * own), or with `failClosed` calls are refused; one call per `probeInterval` asks Redis again.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { RedisRateLimiter } from 'bulwark/redis';
 * const sharedPartner = new RedisRateLimiter(new Redis(), { name: 'partner-api', rate: 100, maxWait: 500 });
 * const order = await sharedPartner.execute(({ signal }) => fetch(orderUrl, { signal }));
 * ```
 */
export class RedisRateLimiter extends LayerPolicy<void> {
  /** The {@link RedisRateLimiterOptions.name | name} in force. */
  readonly name: string;
  /** The {@link RedisRateLimiterOptions.rate | rate} in force. */
  readonly rate: number;
  /** The {@link RedisRateLimiterOptions.interval | interval} in force. */
  readonly interval: number;
  /** The {@link RedisRateLimiterOptions.burst | burst} in force. */
  readonly burst: number;
  /** The {@link RedisRateLimiterOptions.maxWait | maxWait} in force. */
  readonly maxWait: number;
  /** The {@link RedisRateLimiterOptions.timeout | timeout} in force. */
  readonly timeout: number;
  /** The {@link RedisRateLimiterOptions.probeInterval | probeInterval} in force. */
  readonly probeInterval: number;
  /** The {@link RedisRateLimiterOptions.failClosed | failClosed} in force. */
  readonly failClosed: boolean;
  /** The {@link RedisRateLimiterOptions.leaseSize | leaseSize} in force. */
  readonly leaseSize: number;
  /** The {@link RedisRateLimiterOptions.leaseTime | leaseTime} in force. */
  readonly leaseTime: number;
  /** The Redis key of the limit. */
  readonly key: string;
  private readonly runner: ReturnType<typeof runnerOf>;
  private readonly args: string[];
  private readonly local: RateLimiter;
  private readonly lease: PermitLease | undefined;
  private readonly events = new Emitter<RedisRateLimiterEvents>(EVENT_NAMES);
  /** Whether Redis answers, and which call probes it while it does not. */
  private readonly health: StoreHealth;

  constructor(client: RedisClientLike, options: RedisRateLimiterOptions) {
    super();
    this.runner = runnerOf('RedisRateLimiter', client);
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`RedisRateLimiter(client, options): options with name and rate are required, got ${validate.show(options)}`);
    }
    const opts = validate.options('RedisRateLimiter', options, OPTION_KEYS, PEER_NAMES);
    if (opts.name === undefined) throw new TypeError('RedisRateLimiter name is required: every replica sharing the limit uses the same name');
    this.name = validate.text('RedisRateLimiter name', opts.name);
    if (this.name === '') throw new RangeError('RedisRateLimiter name must be a non-empty string, got ""');
    if (opts.rate === undefined) throw new TypeError('RedisRateLimiter rate is required (permits per interval)');
    this.rate = validate.count('RedisRateLimiter rate', opts.rate, 1);
    this.interval = opts.interval === undefined ? 1_000 : positive('RedisRateLimiter interval', opts.interval);
    this.burst = opts.burst === undefined ? this.rate : validate.count('RedisRateLimiter burst', opts.burst, 1);
    this.maxWait = opts.maxWait === undefined ? 0 : validate.duration('RedisRateLimiter maxWait', opts.maxWait);
    this.timeout = opts.timeout === undefined ? 100 : positive('RedisRateLimiter timeout', validate.duration('RedisRateLimiter timeout', opts.timeout));
    this.probeInterval = opts.probeInterval === undefined ? 1_000 : validate.duration('RedisRateLimiter probeInterval', opts.probeInterval);
    this.health = new StoreHealth(this.probeInterval, this.events);
    this.failClosed = opts.failClosed === undefined ? false : validate.boolean('RedisRateLimiter failClosed', opts.failClosed);
    this.leaseSize = opts.leaseSize === undefined ? 1 : validate.count('RedisRateLimiter leaseSize', opts.leaseSize, 1);
    if (this.leaseSize > this.burst) {
      throw new RangeError(`RedisRateLimiter leaseSize must be at most burst (${this.burst}): a round trip cannot take more permits than the bucket holds, got ${validate.show(opts.leaseSize)}`);
    }
    this.leaseTime = opts.leaseTime === undefined ? 1_000 : positive('RedisRateLimiter leaseTime', opts.leaseTime);
    this.key = rateKey(this.name);
    this.args = [String(this.rate), String(this.interval), String(this.burst), String(this.maxWait)];
    this.local = new RateLimiter({ rate: this.rate, interval: this.interval, burst: this.burst, maxWait: this.maxWait, name: this.name });
    this.lease = this.leaseSize === 1 ? undefined : new PermitLease(this.leaseSize, this.leaseTime, this.leaseHost());
  }

  /** True while Redis answers (the limit is shared); false while a local limiter stands in. */
  get storeUp(): boolean {
    return this.health.up;
  }

  /** How many spare permits of its lease this replica holds now (always 0 with `leaseSize` 1). */
  get leased(): number {
    return this.lease === undefined ? 0 : this.lease.available(Date.now());
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes.
   *
   * @example
   * ```ts
   * sharedPartner.on('storeDown', ({ error }) => log.warn({ err: error }, 'rate limit no longer shared'));
   * ```
   */
  on<K extends keyof RedisRateLimiterEvents>(event: K, listener: Listener<RedisRateLimiterEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** The call waits for the script's answer (or the local limiter's, while Redis is down). */
  protected override enter(call: LayerCall): Admission | undefined {
    if (this.lease !== undefined) return this.enterLeased(call, this.lease);
    const pending = waiting(call);
    const now = Date.now();
    if (this.health.mayAsk(now)) this.ask(pending);
    else this.decideLocally(pending);
    return pending.admission;
  }

  /**
   * A spare permit lets the call in at once; on an empty lease the call waits on the replica's
   * one round trip (or the local limiter's answer, while Redis is down).
   */
  private enterLeased(call: LayerCall, lease: PermitLease): Admission | undefined {
    const now = Date.now();
    if (lease.take(now)) return undefined;
    if (this.health.up) {
      const retryAfter = lease.refusal(now);
      if (retryAfter > 0) throw this.rejection(withoutStack(() => new RateLimitedError('limit', retryAfter, this.rate, this.interval)), retryAfter);
    }
    const pending = waiting(call);
    // While Redis is down, a lease round trip in flight is already the probe.
    if (!this.health.up && (lease.busy || !this.health.mayAsk(now))) {
      this.decideLocally(pending);
      return pending.admission;
    }
    lease.join(pending);
    return pending.admission;
  }

  /** What the lease asks of this limiter. */
  private leaseHost(): LeaseHost {
    return {
      maxWait: this.maxWait,
      request: (calls, spare) => runScript(this.runner, LEASE_SCRIPT, [this.key], [...this.args, String(calls), String(spare)], this.timeout, 'RedisRateLimiter'),
      storeAnswered: () => this.health.answered(),
      storeFailed: (error) => this.health.failed(error),
      grantAfter: (pending, wait) => this.grantAfter(pending, wait),
      refuseLimit: (pending, retryAfter) => this.refuse(pending, withoutStack(() => new RateLimitedError('limit', retryAfter, this.rate, this.interval)), retryAfter),
      fallBack: (pending, error) => {
        if (this.failClosed) this.refuse(pending, error, this.probeInterval);
        else this.decideLocally(pending);
      },
    };
  }

  protected describe(): PolicyDescription {
    return {
      kind: 'shared-rate-limiter',
      label: 'shared rate limiter',
      name: this.name,
      refuses: true,
      counters: REDIS_RATE_LIMITER_COUNTERS,
      gauges: REDIS_RATE_LIMITER_GAUGES,
      logs: REDIS_RATE_LIMITER_LOGS,
      readGauges: () => ({ redisStoreUp: this.health.up ? 1 : 0 }),
      on: (event, listener) => this.on(event as keyof RedisRateLimiterEvents, listener),
    };
  }

  private ask(pending: Pending): void {
    runScript(this.runner, RATE_LIMIT_SCRIPT, [this.key], this.args, this.timeout, 'RedisRateLimiter').then(
      (answer) => {
        this.health.answered();
        if (pending.done) return;
        const [granted, micros] = answer as [number, number, number];
        const ms = Number(micros) / 1000;
        if (Number(granted) === 1) this.grantAfter(pending, ms);
        else this.refuse(pending, withoutStack(() => new RateLimitedError('limit', ms, this.rate, this.interval)), ms);
      },
      (error: RedisStoreError) => {
        this.health.failed(error);
        if (pending.done) return;
        if (this.failClosed) this.refuse(pending, error, this.probeInterval);
        else this.decideLocally(pending);
      },
    );
  }

  /** Redis is down and the limit fails open: the local limiter of the same options decides. */
  private decideLocally(pending: Pending): void {
    if (this.failClosed) {
      this.refuse(pending, withoutStack(() => new RedisStoreError('RedisRateLimiter: Redis is down and failClosed is set')), Math.max(0, this.health.lastProbe + this.probeInterval - Date.now()));
      return;
    }
    const controller = (pending.local = new AbortController());
    this.local.execute(noop, { signal: controller.signal }).then(
      () => {
        pending.local = undefined;
        if (!pending.done) this.grantAfter(pending, 0);
      },
      (error: unknown) => {
        pending.local = undefined;
        if (pending.done) return;
        if (error instanceof RateLimitedError) this.refuse(pending, error, error.retryAfter);
        else this.refuse(pending, error as Error, 0);
      },
    );
  }

  private grantAfter(pending: Pending, wait: number): void {
    if (wait <= 0) {
      pending.done = true;
      pending.admission.grant();
      return;
    }
    if (this.events.has('delayed')) this.events.emit('delayed', { wait });
    pending.timer = setTimeout(() => {
      pending.timer = undefined;
      pending.done = true;
      pending.admission.grant();
    }, wait);
  }

  private refuse(pending: Pending, error: Error, retryAfter: number): void {
    pending.done = true;
    pending.admission.refuse(this.rejection(error, retryAfter));
  }

  /** Emits `rejected` for a refusal (to refuse a waiting call with, or to throw from `enter`). */
  private rejection(error: Error, retryAfter: number): Error {
    if (this.events.has('rejected')) this.events.emit('rejected', { error: error as RateLimitedError | RedisStoreError, retryAfter });
    return error;
  }
}

const NOT_YET: Admission = { grant() {}, refuse() {} };
const noop = (): void => {};

/** A call made to wait at the limiter (for Redis, its reserved permit, or the local limiter). */
function waiting(call: LayerCall): Pending {
  const pending: Pending = { admission: NOT_YET, timer: undefined, local: undefined, done: false, asked: false };
  pending.admission = call.wait(leave, pending);
  return pending;
}

/**
 * A waiting call was aborted: its timer and its local wait go (a permit reserved in Redis is
 * spent). One waiting on a lease round trip stays in that queue, marked done, until the answer
 * (at most `timeout` ms): its permit, if any, goes to the next call or to the lease.
 */
function leave(_reason: unknown, pending: Pending): void {
  pending.done = true;
  if (pending.timer !== undefined) clearTimeout(pending.timer);
  pending.timer = undefined;
  pending.local?.abort();
  pending.local = undefined;
}
