/**
 * A rate limit shared by every replica of a service through Redis: one token bucket per name,
 * decided atomically on the server's clock, one round trip per call. When Redis fails, a local
 * {@link RateLimiter} of the same options stands in (or calls are refused, with `failClosed`).
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
import { RATE_LIMIT_SCRIPT, rateKey } from './script.js';
import { RedisStoreError, runScript, runnerOf, type RedisClientLike } from './store.js';
import { withoutStack } from '../shared/stack.js';
import { positive } from './util.js';

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
}

/** Events of a {@link RedisRateLimiter}. */
export interface RedisRateLimiterEvents {
  /** A call was refused: its permit was further away than `maxWait` (`retryAfter` from the server), or the store was down with `failClosed`. */
  rejected: { readonly error: RateLimitedError | RedisStoreError; readonly retryAfter: number };
  /** A call reserved a permit `wait` ms away and waits for it. */
  delayed: { readonly wait: number };
  /** A call to Redis failed or timed out. */
  storeError: { readonly error: RedisStoreError };
  /** Redis stopped answering: decisions are local (or refused, with `failClosed`) until `storeUp`. */
  storeDown: { readonly error: RedisStoreError };
  /** Redis answers again: the limit is shared again. */
  storeUp: Record<string, never>;
}

const EVENT_NAMES: readonly (keyof RedisRateLimiterEvents)[] = ['rejected', 'delayed', 'storeError', 'storeDown', 'storeUp'];
const OPTION_KEYS: readonly (keyof RedisRateLimiterOptions)[] = ['name', 'rate', 'interval', 'burst', 'maxWait', 'timeout', 'probeInterval', 'failClosed'];
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

/** The state of one call waiting for Redis's answer, or for its reserved permit. */
interface Pending {
  admission: Admission;
  timer: ReturnType<typeof setTimeout> | undefined;
  local: AbortController | undefined;
  done: boolean;
}

/**
 * Limits how often calls start across every process that shares `name` on one Redis: `rate`
 * permits per `interval`, a token bucket of `burst` decided atomically by a Lua script on the
 * server's clock (one round trip per call; the call waits for it). A refused call gets
 * {@link RateLimitedError} (the core's), its `retryAfter` computed by the server.
 *
 * The client is the service's own: ioredis, iovalkey or node-redis v4+, or a cluster client of
 * either. When Redis fails or takes longer than `timeout`, the limiter emits `storeDown` and a
 * local {@link RateLimiter} of the same options decides (each replica then allows `rate` on its
 * own), or with `failClosed` calls are refused; one call per `probeInterval` asks Redis again.
 *
 * @example
 * ```ts
 * import Redis from 'ioredis';
 * import { RedisRateLimiter } from 'bulwark/redis';
 * const partner = new RedisRateLimiter(new Redis(), { name: 'partner-api', rate: 100, maxWait: 500 });
 * const order = await partner.execute(({ signal }) => fetch(orderUrl, { signal }));
 * ```
 */
export class RedisRateLimiter extends LayerPolicy<void> {
  readonly name: string;
  readonly rate: number;
  readonly interval: number;
  readonly burst: number;
  readonly maxWait: number;
  readonly timeout: number;
  readonly probeInterval: number;
  readonly failClosed: boolean;
  /** The Redis key of the limit. */
  readonly key: string;
  private readonly runner: ReturnType<typeof runnerOf>;
  private readonly args: string[];
  private readonly local: RateLimiter;
  private readonly events = new Emitter<RedisRateLimiterEvents>(EVENT_NAMES);
  private up = true;
  private lastProbe = 0;
  private probing = false;

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
    this.failClosed = opts.failClosed === undefined ? false : validate.boolean('RedisRateLimiter failClosed', opts.failClosed);
    this.key = rateKey(this.name);
    this.args = [String(this.rate), String(this.interval), String(this.burst), String(this.maxWait)];
    this.local = new RateLimiter({ rate: this.rate, interval: this.interval, burst: this.burst, maxWait: this.maxWait, name: this.name });
  }

  /** True while Redis answers (the limit is shared); false while a local limiter stands in. */
  get storeUp(): boolean {
    return this.up;
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes.
   *
   * @example
   * ```ts
   * partner.on('storeDown', ({ error }) => log.warn({ err: error }, 'rate limit no longer shared'));
   * ```
   */
  on<K extends keyof RedisRateLimiterEvents>(event: K, listener: Listener<RedisRateLimiterEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** The call waits for the script's answer (or the local limiter's, while Redis is down). */
  protected override enter(call: LayerCall): Admission {
    const pending: Pending = { admission: NOT_YET, timer: undefined, local: undefined, done: false };
    pending.admission = call.wait(leave, pending);
    const now = Date.now();
    if (this.up || (!this.probing && now - this.lastProbe >= this.probeInterval)) {
      if (!this.up) {
        this.probing = true;
        this.lastProbe = now;
      }
      this.ask(pending);
    } else {
      this.decideLocally(pending);
    }
    return pending.admission;
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
      readGauges: () => ({ redisStoreUp: this.up ? 1 : 0 }),
      on: (event, listener) => this.on(event as keyof RedisRateLimiterEvents, listener),
    };
  }

  private ask(pending: Pending): void {
    runScript(this.runner, RATE_LIMIT_SCRIPT, [this.key], this.args, this.timeout, 'RedisRateLimiter').then(
      (answer) => {
        this.probing = false;
        if (!this.up) {
          this.up = true;
          this.events.emit('storeUp', {});
        }
        if (pending.done) return;
        const [granted, micros] = answer as [number, number, number];
        const ms = Number(micros) / 1000;
        if (Number(granted) === 1) this.grantAfter(pending, ms);
        else this.refuse(pending, withoutStack(() => new RateLimitedError('limit', ms, this.rate, this.interval)), ms);
      },
      (error: RedisStoreError) => {
        this.probing = false;
        this.lastProbe = Date.now();
        if (this.events.has('storeError')) this.events.emit('storeError', { error });
        if (this.up) {
          this.up = false;
          this.events.emit('storeDown', { error });
        }
        if (pending.done) return;
        if (this.failClosed) this.refuse(pending, error, this.probeInterval);
        else this.decideLocally(pending);
      },
    );
  }

  /** Redis is down and the limit fails open: the local limiter of the same options decides. */
  private decideLocally(pending: Pending): void {
    if (this.failClosed) {
      this.refuse(pending, withoutStack(() => new RedisStoreError('RedisRateLimiter: Redis is down and failClosed is set')), Math.max(0, this.lastProbe + this.probeInterval - Date.now()));
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
    if (this.events.has('rejected')) this.events.emit('rejected', { error: error as RateLimitedError | RedisStoreError, retryAfter });
    pending.admission.refuse(error);
  }
}

const NOT_YET: Admission = { grant() {}, refuse() {} };
const noop = (): void => {};

/** A waiting call was aborted: its timer and its local wait go (a permit reserved in Redis is spent). */
function leave(_reason: unknown, pending: Pending): void {
  pending.done = true;
  if (pending.timer !== undefined) clearTimeout(pending.timer);
  pending.timer = undefined;
  pending.local?.abort();
  pending.local = undefined;
}
