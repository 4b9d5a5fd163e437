import type { ExecuteOptions, ExecutionContext } from '../engine/contract.js';
import { Emitter, type Listener, type Unsubscribe } from '../events.js';
import * as validate from '../shared/validate.js';
import { isAtRest, RateLimiter, type RateLimiterEvents } from './limiter.js';
import { LimiterSettings, type GroupRelay, type RateLimiterOptions } from './options.js';

/** Options of the group itself (the second argument of {@link RateLimiterGroup}). */
export interface RateLimiterGroupOptions {
  /**
   * How many limiters the group keeps. Beyond it, adding a key forgets the least recently used
   * limiters that are at rest (their permits all back, nobody waiting); see
   * {@link RateLimiterGroup} for the bound. `Infinity`: no bound.
   * @default 10_000
   */
  maxKeys?: number | undefined;
}

/** Events of a {@link RateLimiterGroup}: those of every limiter of the group, with its key, and evictions. */
export interface RateLimiterGroupEvents {
  /** The limiter of `key` refused a call: `error`, `reason` and `retryAfter` as in {@link RateLimiterEvents}. */
  rejected: RateLimiterEvents['rejected'] & { readonly key: string };
  /** The limiter of `key` made a call wait `wait` ms for its permit, `queued` calls waiting with it. */
  delayed: RateLimiterEvents['delayed'] & { readonly key: string };
  /** The `limiter` of `key`, at rest, was forgotten to stay within `maxKeys` (drop its metrics labels here). */
  evicted: { readonly key: string; readonly limiter: RateLimiter };
}

const DEFAULT_MAX_KEYS = 10_000;
const EVENT_NAMES: readonly (keyof RateLimiterGroupEvents)[] = ['rejected', 'delayed', 'evicted'];

/**
 * One {@link RateLimiter} per key (per client, per tenant, per API token), all built from the
 * same options, with a bound on how many it keeps. The limiter of key `k` in a group named `n` is
 * named `n:k`. A limiter is made the first time its key is used; an idle one arms no timer.
 *
 * Memory is bounded without loosening any limit: beyond `maxKeys`, adding a key forgets the
 * least recently used limiters, but only those at rest (a full bucket or an empty window, and
 * nobody waiting), which a fresh limiter would replace exactly. A limiter not at rest is kept
 * until it is. So the group holds at most `maxKeys` limiters plus those of the keys used within
 * the last refill time (`burst × interval / rate` for a token bucket, `interval` for a sliding
 * window) and the longest wait of a queued call (`maxWait`).
 *
 * Recency counts `get` and `execute`. A forgotten limiter still works for whoever holds it, but
 * the key gets a fresh one next time: go through the group (or `get` per request) rather than
 * keeping a limiter of a group for long.
 *
 * @example
 * ```ts
 * const perClient = new RateLimiterGroup({ rate: 20, interval: 1_000, name: 'clients' }, { maxKeys: 50_000 });
 * const answer = await perClient.execute(apiKey, () => handle(request));
 * ```
 */
export class RateLimiterGroup {
  /** How many limiters the group keeps before it forgets those at rest. */
  readonly maxKeys: number;
  private readonly settings: LimiterSettings;
  /** Every limiter, least recently used first. */
  private readonly limiters = new Map<string, RateLimiter>();
  private events: Emitter<RateLimiterGroupEvents> | undefined = undefined;
  private readonly relay: GroupRelay = {
    // Stryker disable next-line ConditionalExpression: only spares a payload nobody receives; emit() reaches only listeners
    has: (event) => this.events !== undefined && this.events.has(event),
    emit: (event, key, payload) => this.events?.emit(event, { ...payload, key } as RateLimiterGroupEvents[typeof event]),
  };

  constructor(options: RateLimiterOptions, groupOptions?: RateLimiterGroupOptions) {
    this.settings = new LimiterSettings(options, 'RateLimiterGroup');
    const opts = validate.options('RateLimiterGroup', groupOptions, ['maxKeys']);
    this.maxKeys = opts.maxKeys === undefined ? DEFAULT_MAX_KEYS : validate.count('RateLimiterGroup maxKeys', opts.maxKeys, 1, true);
  }

  /** How many limiters the group holds now. */
  get size(): number {
    return this.limiters.size;
  }

  /**
   * The key's limiter, made (full) when the key has none. Counts as a use of the key.
   *
   * @example
   * ```ts
   * const tenantApi = compose(perTenant.get(tenantId), withTimeout(2_000));
   * ```
   */
  get(key: string): RateLimiter {
    const known = this.limiters.get(key);
    if (known !== undefined) {
      // Move to the most recently used end.
      this.limiters.delete(key);
      this.limiters.set(key, known);
      return known;
    }
    if (typeof key !== 'string') throw new TypeError(`RateLimiterGroup key must be a string, got ${validate.show(key)}`);
    const limiter = new RateLimiter(this.settings.forKey(key, this.relay) as unknown as RateLimiterOptions);
    this.limiters.set(key, limiter);
    this.evictBeyond();
    return limiter;
  }

  /**
   * Runs `fn` through the key's limiter (made when absent).
   *
   * @example
   * ```ts
   * const profile = await perTenant.execute(tenantId, ({ signal }) => loadProfile(tenantId, { signal }));
   * ```
   */
  execute<T>(key: string, fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T> {
    let limiter: RateLimiter;
    try {
      limiter = this.get(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return limiter.execute(fn, options);
  }

  /** The key's limiter if the group holds one, without making it or counting a use. */
  peek(key: string): RateLimiter | undefined {
    return this.limiters.get(key);
  }

  /** True when the group holds a limiter for the key (does not count as a use). */
  has(key: string): boolean {
    return this.limiters.has(key);
  }

  /**
   * Forgets the key's limiter, at rest or not (its waiting calls still get their permits from
   * it); true if there was one. The key's next call gets a fresh, full limiter.
   */
  delete(key: string): boolean {
    return this.limiters.delete(key);
  }

  /** Forgets every limiter, as {@link RateLimiterGroup.delete} does one. */
  clear(): void {
    this.limiters.clear();
  }

  /** The keys the group holds, from least to most recently used. */
  keys(): IterableIterator<string> {
    return this.limiters.keys();
  }

  /** `[key, limiter]` pairs, from least to most recently used. */
  entries(): IterableIterator<[string, RateLimiter]> {
    return this.limiters.entries();
  }

  /** Iterates `[key, limiter]` pairs, as {@link RateLimiterGroup.entries}. */
  [Symbol.iterator](): IterableIterator<[string, RateLimiter]> {
    return this.entries();
  }

  /**
   * Subscribes to an event of any of the group's limiters; returns the function that unsubscribes.
   *
   * @example
   * ```ts
   * perClient.on('rejected', ({ key, retryAfter }) => log.info({ client: key, retryAfter }, 'rate limited'));
   * ```
   */
  on<K extends keyof RateLimiterGroupEvents>(event: K, listener: Listener<RateLimiterGroupEvents[K]>): Unsubscribe {
    return (this.events ??= new Emitter<RateLimiterGroupEvents>(EVENT_NAMES)).on(event, listener);
  }

  /**
   * Forgets least recently used limiters at rest while the group holds more than `maxKeys`. It
   * stops at the first one not at rest: the keys after it were all used since, so what stays
   * beyond `maxKeys` is within the bound above, and a new key costs O(1) however many are busy.
   */
  private evictBeyond(): void {
    while (this.limiters.size > this.maxKeys) {
      const oldest = this.limiters.entries().next();
      if (oldest.done === true) return;
      const [key, limiter] = oldest.value;
      if (!isAtRest(limiter)) return;
      this.limiters.delete(key);
      const events = this.events;
      if (events !== undefined && events.has('evicted')) events.emit('evicted', { key, limiter });
    }
  }
}
