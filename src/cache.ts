import { systemClock, type Clock } from './shared/clock.js';
import { synchronousAnswer } from './shared/report.js';
import * as validate from './shared/validate.js';

/**
 * A key-value store for last known good values. {@link MemoryCache} keeps them in memory;
 * implement this to keep them in Redis, a database or anything else (methods may be async).
 */
export interface CacheStore<V> {
  /** The value stored under `key`, or `undefined` when there is none or it expired. */
  get(key: string): V | undefined | PromiseLike<V | undefined>;
  /** Stores `value` under `key`; `ttl` (ms) overrides the store's default time to live. */
  set(key: string, value: V, ttl?: number): void | PromiseLike<void>;
  /** Forgets `key`. */
  delete(key: string): void | PromiseLike<void>;
}

/** Options of {@link MemoryCache}. */
export interface MemoryCacheOptions {
  /**
   * How many entries it keeps; storing one more forgets the least recently used.
   * `Infinity`: no bound.
   * @default 1_000
   */
  maxEntries?: number | undefined;
  /**
   * How long, in ms, an entry stays valid: any number ≥ 0 (the cache arms no timer, so
   * there is no timer's limit). `Infinity`: until evicted.
   * @default Infinity
   */
  ttl?: number | undefined;
  /**
   * The source of time. Expiry is checked on read: the cache arms no timer.
   * @default systemClock
   */
  clock?: Clock | undefined;
}

const MEMORY_CACHE_KEYS: readonly (keyof MemoryCacheOptions)[] = ['maxEntries', 'ttl', 'clock'];

interface Entry<V> {
  readonly value: V;
  readonly expiresAt: number;
}

/**
 * A bounded in-memory {@link CacheStore}: least recently used entries go first, and entries
 * expire after `ttl` ms.
 *
 * @example
 * ```ts
 * const profiles = new MemoryCache<Profile>({ maxEntries: 10_000, ttl: 5 * 60_000 });
 * ```
 */
export class MemoryCache<V> implements CacheStore<V> {
  /** The {@link MemoryCacheOptions.maxEntries | maxEntries} in force. */
  readonly maxEntries: number;
  /** The {@link MemoryCacheOptions.ttl | ttl} in force. */
  readonly ttl: number;
  private readonly clock: Clock;
  // A Map iterates in insertion order: re-inserting on read makes its first key the least recently used.
  private readonly entries = new Map<string, Entry<V>>();

  constructor(options?: MemoryCacheOptions) {
    const opts = validate.options('MemoryCache', options, MEMORY_CACHE_KEYS, { max: '"maxEntries"' });
    this.maxEntries = opts.maxEntries === undefined ? 1_000 : validate.count('MemoryCache maxEntries', opts.maxEntries, 1, true);
    // Any span: expiry is compared with the clock on read, no timer waits for it.
    this.ttl = opts.ttl === undefined ? Infinity : validate.span('MemoryCache ttl', opts.ttl);
    this.clock = opts.clock === undefined ? systemClock : validate.clock('MemoryCache clock', opts.clock);
  }

  /** How many entries it holds now, expired ones not yet read included. */
  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= this.clock.now()) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, ttl: number = this.ttl): void {
    const lifetime = ttl === this.ttl ? ttl : validate.span('MemoryCache set(key, value, ttl): ttl', ttl);
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: lifetime === Infinity ? Infinity : this.clock.now() + lifetime });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Forgets every entry. */
  clear(): void {
    this.entries.clear();
  }
}

/** Options of {@link withCacheFallback}. */
export interface CacheFallbackOptions<A extends unknown[], R> {
  /** Where last known good results are kept. */
  cache: CacheStore<R>;
  /** The cache key of a call, from its arguments. */
  key: (...args: A) => string;
  /**
   * What to answer when the call fails and the cache has nothing: a value, or a function of
   * the error and the arguments. Without it, the error is rethrown.
   */
  default?: R | ((error: unknown, ...args: A) => R | PromiseLike<R>) | undefined;
  /**
   * Decides whether an error may be answered from the cache; one it declines is rethrown.
   * @default every error
   */
  handles?: ((error: unknown) => boolean) | undefined;
}

/**
 * Serves the last known good value when a call fails: every success is stored under its key,
 * and a failure answers with the stored value, else with `default`, else with the error.
 * A cache that throws on write never fails a call that succeeded.
 *
 * @example
 * ```ts
 * const getProfile = withCacheFallback(profileStack.wrap(fetchProfile), {
 *   cache: new MemoryCache<Profile>({ maxEntries: 10_000, ttl: 5 * 60_000 }),
 *   key: (userId: string) => userId,
 *   default: GUEST_PROFILE,
 * });
 * ```
 */
export function withCacheFallback<A extends unknown[], R>(
  fn: (...args: A) => R | PromiseLike<R>,
  options: CacheFallbackOptions<A, R>,
): (...args: A) => Promise<R> {
  validate.fn('withCacheFallback(fn)', fn);
  if (typeof options !== 'object' || options === null) throw new TypeError('withCacheFallback(fn, options): options with cache and key are required');
  validate.options('withCacheFallback', options, ['cache', 'key', 'default', 'handles']);
  const { cache, key } = options;
  if (typeof cache !== 'object' || cache === null || typeof cache.get !== 'function' || typeof cache.set !== 'function') {
    throw new TypeError('withCacheFallback cache must be a CacheStore with get() and set()');
  }
  validate.fn('withCacheFallback key', key);
  const handles = options.handles === undefined ? undefined : validate.fn('withCacheFallback handles', options.handles);
  const hasDefault = 'default' in options && options.default !== undefined;
  const fallback = options.default;

  return async (...args: A): Promise<R> => {
    const cacheKey = synchronousAnswer('withCacheFallback key', key(...args)) as string;
    let result: R;
    try {
      result = await fn(...args);
    } catch (error) {
      if (handles !== undefined && !synchronousAnswer('withCacheFallback handles', handles(error))) throw error;
      let cached: R | undefined;
      try {
        cached = await cache.get(cacheKey);
      } catch {
        cached = undefined; // an unreachable cache is an empty one: go on to the default
      }
      if (cached !== undefined) return cached;
      if (!hasDefault) throw error;
      return typeof fallback === 'function' ? await (fallback as (error: unknown, ...args: A) => R | PromiseLike<R>)(error, ...args) : (fallback as R);
    }
    try {
      await cache.set(cacheKey, result);
    } catch {
      // The value is good; a cache that cannot store it only costs the next fallback.
    }
    return result;
  };
}
