import type { ExecuteOptions, ExecutionContext } from '../engine/contract.js';
import { Emitter, type Listener, type Unsubscribe } from '../events.js';
import * as validate from '../shared/validate.js';
import { breakerWithSettings, machineOf, type CircuitBreaker } from './breaker.js';
import { BreakerSettings } from './options.js';
import type { CircuitBreakerOptions, CircuitState, CircuitStateChangeReason } from './types.js';

/** Options of the group itself (the second argument of {@link CircuitBreakerGroup}). */
export interface CircuitBreakerGroupOptions {
  /**
   * How many breakers the group keeps. Beyond it, adding a key forgets the least recently used
   * *closed* breakers; open, half-open and isolated ones are never forgotten, so the group can
   * hold more than `maxKeys` while many keys are failing. `Infinity`: no bound.
   * @default 10_000
   */
  maxKeys?: number | undefined;
}

/** Events of a {@link CircuitBreakerGroup}. */
export interface CircuitBreakerGroupEvents {
  /** The `breaker` of `key` changed state `from` one `to` another, for `reason`. */
  stateChange: {
    readonly key: string;
    readonly breaker: CircuitBreaker;
    readonly from: CircuitState;
    readonly to: CircuitState;
    readonly reason: CircuitStateChangeReason;
  };
  /** The closed `breaker` of `key` was forgotten to stay within `maxKeys` (drop its metrics labels here). */
  evicted: { readonly key: string; readonly breaker: CircuitBreaker };
}

const DEFAULT_MAX_KEYS = 10_000;
const EVENT_NAMES: readonly (keyof CircuitBreakerGroupEvents)[] = ['stateChange', 'evicted'];

function checkKey(key: unknown): void {
  if (typeof key !== 'string') throw new TypeError(`CircuitBreakerGroup key must be a string, got ${key === null ? 'null' : typeof key}`);
}

/**
 * One {@link CircuitBreaker} per key (per host, per tenant, per endpoint), all built from the
 * same options, with a bound on how many it keeps. A breaker is made the first time its key is
 * used. Beyond `maxKeys`, the least recently used closed breakers are forgotten (a closed
 * breaker holds little worth keeping); open, half-open and isolated ones never are. An idle
 * breaker arms no timer and holds no window until its first call.
 *
 * Recency counts `get` and `execute`; a breaker you keep and call directly is not touched by
 * that. A forgotten breaker still works for whoever holds it, but the group no longer reports
 * it, and the key gets a fresh breaker next time.
 *
 * @example
 * ```ts
 * const perHost = new CircuitBreakerGroup({ failureRate: { threshold: 0.5, minimumCalls: 20 } }, { maxKeys: 1_000 });
 * perHost.on('stateChange', ({ key, from, to, reason }) => log.warn({ host: key, from, to, reason }, 'circuit'));
 * const page = await perHost.execute(new URL(url).host, ({ signal }) => fetch(url, { signal }));
 * ```
 */
export class CircuitBreakerGroup {
  /** How many breakers the group keeps before it forgets closed ones. */
  readonly maxKeys: number;
  private readonly settings: BreakerSettings;
  /** Closed breakers, least recently used first: the only ones eviction may take. */
  private readonly closed = new Map<string, CircuitBreaker>();
  /** Open, half-open and isolated breakers: never evicted. */
  private readonly tripped = new Map<string, CircuitBreaker>();
  private events: Emitter<CircuitBreakerGroupEvents> | undefined = undefined;

  constructor(options?: CircuitBreakerOptions, groupOptions?: CircuitBreakerGroupOptions) {
    if (typeof options === 'object' && options !== null && options.initialState !== undefined) {
      throw new TypeError('CircuitBreakerGroup options cannot carry initialState (every key would start from it): restore a key with group.get(key).restore(snapshot)');
    }
    this.settings = new BreakerSettings(options, 'CircuitBreakerGroup');
    const opts = validate.options('CircuitBreakerGroup', groupOptions, ['maxKeys']);
    this.maxKeys = opts.maxKeys === undefined ? DEFAULT_MAX_KEYS : validate.count('CircuitBreakerGroup maxKeys', opts.maxKeys, 1, true);
  }

  /** How many breakers the group holds now. */
  get size(): number {
    return this.closed.size + this.tripped.size;
  }

  /**
   * The key's breaker, made (closed) when the key has none. Counts as a use of the key.
   *
   * @example
   * ```ts
   * const inventory = compose(perHost.get('inventory.internal'), withTimeout(500));
   * ```
   */
  get(key: string): CircuitBreaker {
    const closed = this.closed.get(key);
    if (closed !== undefined) {
      // Move to the most recently used end.
      this.closed.delete(key);
      this.closed.set(key, closed);
      return closed;
    }
    const tripped = this.tripped.get(key);
    if (tripped !== undefined) return tripped;
    checkKey(key);
    const breaker = breakerWithSettings(this.settings);
    machineOf(breaker).onTransition = (from, to, reason) => this.moved(key, breaker, from, to, reason);
    this.closed.set(key, breaker);
    this.evictBeyond(breaker);
    return breaker;
  }

  /**
   * Runs `fn` through the key's breaker (made when absent).
   *
   * @example
   * ```ts
   * const profile = await perTenant.execute(tenantId, ({ signal }) => loadProfile(tenantId, { signal }));
   * ```
   */
  execute<T>(key: string, fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T> {
    let breaker: CircuitBreaker;
    try {
      breaker = this.get(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return breaker.execute(fn, options);
  }

  /** The key's breaker if the group holds one, without making it or counting a use. */
  peek(key: string): CircuitBreaker | undefined {
    return this.closed.get(key) ?? this.tripped.get(key);
  }

  /** True when the group holds a breaker for the key (does not count as a use). */
  has(key: string): boolean {
    return this.closed.has(key) || this.tripped.has(key);
  }

  /** Forgets the key's breaker, whatever its state; true if there was one. */
  delete(key: string): boolean {
    const breaker = this.peek(key);
    if (breaker === undefined) return false;
    this.closed.delete(key);
    this.tripped.delete(key);
    machineOf(breaker).onTransition = undefined;
    return true;
  }

  /** Forgets every breaker. */
  clear(): void {
    for (const [, breaker] of this.entries()) machineOf(breaker).onTransition = undefined;
    this.closed.clear();
    this.tripped.clear();
  }

  /** The keys the group holds: closed breakers from least to most recently used, then the others. */
  *keys(): IterableIterator<string> {
    yield* this.closed.keys();
    yield* this.tripped.keys();
  }

  /** `[key, breaker]` pairs, in the order of {@link CircuitBreakerGroup.keys}. */
  *entries(): IterableIterator<[string, CircuitBreaker]> {
    yield* this.closed.entries();
    yield* this.tripped.entries();
  }

  /** Iterates `[key, breaker]` pairs, as {@link CircuitBreakerGroup.entries}. */
  [Symbol.iterator](): IterableIterator<[string, CircuitBreaker]> {
    return this.entries();
  }

  /**
   * Subscribes to an event of any of the group's breakers; returns the function that
   * unsubscribes.
   *
   * @example
   * ```ts
   * perHost.on('evicted', ({ key }) => breakerStateGauge.remove({ host: key }));
   * ```
   */
  on<K extends keyof CircuitBreakerGroupEvents>(event: K, listener: Listener<CircuitBreakerGroupEvents[K]>): Unsubscribe {
    return (this.events ??= new Emitter<CircuitBreakerGroupEvents>(EVENT_NAMES)).on(event, listener);
  }

  /** A breaker of the group changed state: keeps the closed/tripped split true, then tells listeners. */
  private moved(key: string, breaker: CircuitBreaker, from: CircuitState, to: CircuitState, reason: CircuitStateChangeReason): void {
    // The state now, not `to`: a listener that reset or isolated the breaker during an earlier
    // change may already have moved it on.
    // Stryker disable ConditionalExpression: the breaker is in one of the two maps whenever this runs (forgetting it unhooks it), and Map.set keeps a present key's place
    if (machineOf(breaker).current === 'closed') {
      if (this.tripped.get(key) === breaker) {
        this.tripped.delete(key);
        this.closed.set(key, breaker);
      }
    } else if (this.closed.get(key) === breaker) {
      this.closed.delete(key);
      this.tripped.set(key, breaker);
    }
    // Stryker restore ConditionalExpression
    const events = this.events;
    if (events !== undefined && events.has('stateChange')) events.emit('stateChange', { key, breaker, from, to, reason });
  }

  /** Forgets least recently used closed breakers while the group holds more than `maxKeys`, sparing `added`. */
  private evictBeyond(added: CircuitBreaker): void {
    while (this.size > this.maxKeys) {
      const oldest = this.closed.entries().next();
      if (oldest.done === true || oldest.value[1] === added) return;
      const [key, breaker] = oldest.value;
      this.closed.delete(key);
      machineOf(breaker).onTransition = undefined;
      const events = this.events;
      if (events !== undefined && events.has('evicted')) events.emit('evicted', { key, breaker });
    }
  }
}
