import { describe, expect, it, vi } from 'vitest';
import {
  MemoryCache,
  compose,
  retryWithBackoff,
  withCacheFallback,
  withTimeout,
  type CacheFallbackOptions,
  type CacheStore,
  type MemoryCacheOptions,
} from '../src/index.js';
import { manualClock } from './fixtures/clock.js';

interface User {
  id: string;
  name: string;
}

/** A CacheStore whose every method is async, like a Redis-backed one. */
class AsyncStore<V> implements CacheStore<V> {
  readonly map = new Map<string, V>();
  async get(key: string): Promise<V | undefined> {
    await Promise.resolve();
    return this.map.get(key);
  }
  async set(key: string, value: V): Promise<void> {
    await Promise.resolve();
    this.map.set(key, value);
  }
  async delete(key: string): Promise<void> {
    await Promise.resolve();
    this.map.delete(key);
  }
}

describe('MemoryCache: least recently used eviction', () => {
  it('forgets the least recently written entry when one more is stored', () => {
    const cache = new MemoryCache<number>({ maxEntries: 2 });
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
    expect(cache.get('c')).toBe(3);
    expect(cache.size).toBe(2);
  });

  it('keeps an entry that was read: a read makes it the most recently used', () => {
    const cache = new MemoryCache<number>({ maxEntries: 2 });
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1);
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.get('c')).toBe(3);
  });

  it('overwrites a key in place without evicting another entry, and refreshes it', () => {
    const cache = new MemoryCache<number>({ maxEntries: 2 });
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 10);
    expect(cache.size).toBe(2);
    cache.set('c', 3);
    expect(cache.get('a')).toBe(10);
    expect(cache.get('b')).toBeUndefined();
  });

  it.each([1, 3, 100])('never holds more than maxEntries %i entries', (maxEntries) => {
    const cache = new MemoryCache<number>({ maxEntries });
    for (let i = 0; i < 250; i++) cache.set(`k${i}`, i);
    expect(cache.size).toBe(maxEntries);
    expect(cache.get(`k${249}`)).toBe(249);
    expect(cache.get(`k${249 - maxEntries}`)).toBeUndefined();
  });

  it('with maxEntries Infinity forgets nothing', () => {
    const cache = new MemoryCache<number>({ maxEntries: Infinity });
    for (let i = 0; i < 2_500; i++) cache.set(`k${i}`, i);
    expect(cache.size).toBe(2_500);
    expect(cache.get('k0')).toBe(0);
  });

  it('keeps 1 000 entries by default', () => {
    const cache = new MemoryCache<number>();
    expect(cache.maxEntries).toBe(1_000);
    for (let i = 0; i < 1_001; i++) cache.set(`k${i}`, i);
    expect(cache.size).toBe(1_000);
    expect(cache.get('k0')).toBeUndefined();
    expect(cache.get('k1')).toBe(1);
  });
});

describe('MemoryCache: time to live', () => {
  it.each<[number, string | undefined]>([
    [0, 'v'],
    [99, 'v'],
    [100, undefined],
    [10_000, undefined],
  ])('with ttl 100, an entry read %i ms after it was stored gives %s', (elapsed, expected) => {
    const { clock, advance } = manualClock();
    const cache = new MemoryCache<string>({ ttl: 100, clock });
    cache.set('k', 'v');
    advance(elapsed);
    expect(cache.get('k')).toBe(expected);
  });

  it('counts the lifetime from the write: reading does not extend it', () => {
    const { clock, advance } = manualClock();
    const cache = new MemoryCache<string>({ ttl: 100, clock });
    cache.set('k', 'v');
    advance(60);
    expect(cache.get('k')).toBe('v');
    advance(40);
    expect(cache.get('k')).toBeUndefined();
  });

  it('restarts the lifetime when the key is written again', () => {
    const { clock, advance } = manualClock();
    const cache = new MemoryCache<string>({ ttl: 100, clock });
    cache.set('k', 'old');
    advance(80);
    cache.set('k', 'new');
    advance(80);
    expect(cache.get('k')).toBe('new');
  });

  it('drops an expired entry when it is read', () => {
    const { clock, advance } = manualClock();
    const cache = new MemoryCache<string>({ ttl: 100, clock });
    cache.set('k', 'v');
    advance(100);
    expect(cache.get('k')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps entries forever by default (ttl Infinity)', () => {
    const { clock, advance } = manualClock();
    const cache = new MemoryCache<string>({ clock });
    expect(cache.ttl).toBe(Infinity);
    cache.set('k', 'v');
    advance(10 * 365 * 24 * 3_600_000);
    expect(cache.get('k')).toBe('v');
  });

  it('lets one entry override the default ttl, shorter or longer', () => {
    const { clock, advance } = manualClock();
    const cache = new MemoryCache<string>({ ttl: 100, clock });
    cache.set('short', 's', 10);
    cache.set('long', 'l', 1_000);
    cache.set('forever', 'f', Infinity);
    cache.set('default', 'd');
    advance(10);
    expect(cache.get('short')).toBeUndefined();
    expect(cache.get('default')).toBe('d');
    advance(90);
    expect(cache.get('default')).toBeUndefined();
    expect(cache.get('long')).toBe('l');
    advance(900);
    expect(cache.get('long')).toBeUndefined();
    expect(cache.get('forever')).toBe('f');
  });

  it('gives an entry a finite ttl even when the default is Infinity', () => {
    const { clock, advance } = manualClock();
    const cache = new MemoryCache<string>({ clock });
    cache.set('k', 'v', 50);
    advance(50);
    expect(cache.get('k')).toBeUndefined();
  });

  it('arms no timer', () => {
    vi.useFakeTimers();
    try {
      const cache = new MemoryCache<string>({ ttl: 100 });
      cache.set('k', 'v');
      cache.set('j', 'w', 5);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('MemoryCache: delete and clear', () => {
  it('delete forgets one key and leaves the others', () => {
    const cache = new MemoryCache<number>();
    cache.set('a', 1);
    cache.set('b', 2);
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
    expect(cache.size).toBe(1);
    expect(() => cache.delete('missing')).not.toThrow();
  });

  it('clear forgets every key', () => {
    const cache = new MemoryCache<number>();
    cache.set('a', 1);
    cache.set('b', 2);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBeUndefined();
  });

  it('stores falsy values and gives them back', () => {
    const cache = new MemoryCache<number | string | null | boolean>();
    cache.set('zero', 0);
    cache.set('empty', '');
    cache.set('null', null);
    cache.set('false', false);
    expect([cache.get('zero'), cache.get('empty'), cache.get('null'), cache.get('false')]).toEqual([0, '', null, false]);
  });
});

describe('MemoryCache: options', () => {
  it.each<[string, Record<string, unknown>, typeof RangeError | typeof TypeError, RegExp]>([
    ['maxEntries 0', { maxEntries: 0 }, RangeError, /maxEntries.*0/],
    ['negative maxEntries', { maxEntries: -1 }, RangeError, /maxEntries.*-1/],
    ['fractional maxEntries', { maxEntries: 1.5 }, RangeError, /maxEntries.*1\.5/],
    ['NaN maxEntries', { maxEntries: Number.NaN }, RangeError, /maxEntries.*NaN/],
    ['a string maxEntries', { maxEntries: '10' }, TypeError, /maxEntries.*"10"/],
    ['negative ttl', { ttl: -1 }, RangeError, /ttl.*-1/],
    ['NaN ttl', { ttl: Number.NaN }, RangeError, /ttl.*NaN/],
    ['a clock without now', { clock: {} }, TypeError, /clock/],
  ])('rejects %s with an error naming the option and the value', (_label, options, type, message) => {
    expect(() => new MemoryCache(options as MemoryCacheOptions)).toThrow(type);
    expect(() => new MemoryCache(options as MemoryCacheOptions)).toThrow(message);
  });

  it("refuses lru-cache's max, naming bulwark's maxEntries", () => {
    expect(() => new MemoryCache({ max: 10 } as MemoryCacheOptions)).toThrow(
      new TypeError(`MemoryCache has no option "max" (another library's name: bulwark's is "maxEntries"); known options: "maxEntries", "ttl", "clock"`),
    );
  });

  it.each([-1, Number.NaN])('rejects a per-entry ttl of %d with a RangeError and stores nothing', (ttl) => {
    const cache = new MemoryCache<string>({ ttl: 100 });
    expect(() => cache.set('k', 'v', ttl)).toThrow(RangeError);
    expect(() => cache.set('k', 'v', ttl)).toThrow(/ttl/);
    expect(cache.get('k')).toBeUndefined();
  });
});

describe('withCacheFallback', () => {
  const alice: User = { id: 'u1', name: 'Alice' };
  const guest: User = { id: 'guest', name: 'Guest' };

  it('returns a success and stores it under the call’s key', async () => {
    const cache = new MemoryCache<User>();
    const fetchUser = vi.fn(async (id: string) => (id === 'u1' ? alice : guest));
    const getUser = withCacheFallback(fetchUser, { cache, key: (id) => `user:${id}` });
    await expect(getUser('u1')).resolves.toBe(alice);
    expect(fetchUser).toHaveBeenCalledWith('u1');
    expect(cache.get('user:u1')).toBe(alice);
  });

  it('answers a failure with the value cached for that key', async () => {
    const cache = new MemoryCache<User>();
    let up = true;
    const getUser = withCacheFallback(
      async (id: string) => {
        if (!up) throw new Error('service down');
        return { id, name: `fresh ${id}` };
      },
      { cache, key: (id) => id },
    );
    const first = await getUser('u1');
    up = false;
    await expect(getUser('u1')).resolves.toBe(first);
  });

  it('does not answer one key with another key’s cached value', async () => {
    const cache = new MemoryCache<User>();
    cache.set('u1', alice);
    const error = new Error('service down');
    const getUser = withCacheFallback((_id: string): Promise<User> => Promise.reject(error), { cache, key: (id) => id });
    await expect(getUser('u2')).rejects.toBe(error);
  });

  it('prefers a fresh success over the cached value and refreshes the cache', async () => {
    const cache = new MemoryCache<string>();
    cache.set('k', 'stale');
    const get = withCacheFallback(async () => 'fresh', { cache, key: () => 'k' });
    await expect(get()).resolves.toBe('fresh');
    expect(cache.get('k')).toBe('fresh');
  });

  it('serves a cached falsy value rather than the default', async () => {
    const cache = new MemoryCache<number>();
    cache.set('count', 0);
    const getCount = withCacheFallback((): Promise<number> => Promise.reject(new Error('down')), { cache, key: () => 'count', default: 99 });
    await expect(getCount()).resolves.toBe(0);
  });

  it('answers with the default value when nothing is cached', async () => {
    const getUser = withCacheFallback((_id: string): Promise<User> => Promise.reject(new Error('down')), {
      cache: new MemoryCache<User>(),
      key: (id) => id,
      default: guest,
    });
    await expect(getUser('u9')).resolves.toBe(guest);
  });

  it('rethrows the error when default is given as undefined and nothing is cached', async () => {
    const error = new Error('down');
    const getUser = withCacheFallback((_id: string): Promise<User> => Promise.reject(error), { cache: new MemoryCache<User>(), key: (id) => id, default: undefined });
    await expect(getUser('u9')).rejects.toBe(error);
  });

  it('calls a default function with the error and the call’s arguments', async () => {
    const error = new Error('down');
    const makeDefault = vi.fn((_error: unknown, id: string, locale: string): User => ({ id, name: `Guest (${locale})` }));
    const getUser = withCacheFallback((_id: string, _locale: string): Promise<User> => Promise.reject(error), {
      cache: new MemoryCache<User>(),
      key: (id) => id,
      default: makeDefault,
    });
    await expect(getUser('u9', 'fr')).resolves.toEqual({ id: 'u9', name: 'Guest (fr)' });
    expect(makeDefault).toHaveBeenCalledTimes(1);
    expect(makeDefault.mock.calls[0]?.[0]).toBe(error);
    expect(makeDefault.mock.calls[0]?.slice(1)).toEqual(['u9', 'fr']);
  });

  it('awaits an async default function, and rejects with what it threw', async () => {
    const getUser = withCacheFallback((_id: string): Promise<User> => Promise.reject(new Error('down')), {
      cache: new MemoryCache<User>(),
      key: (id) => id,
      default: async (_error, id) => ({ id, name: 'async guest' }),
    });
    await expect(getUser('u3')).resolves.toEqual({ id: 'u3', name: 'async guest' });

    const broken = new Error('default failed');
    const failing = withCacheFallback((): Promise<User> => Promise.reject(new Error('down')), {
      cache: new MemoryCache<User>(),
      key: () => 'k',
      default: () => Promise.reject(broken),
    });
    await expect(failing()).rejects.toBe(broken);
  });

  it('rethrows the very same error when nothing is cached and there is no default', async () => {
    const error = new Error('down');
    const getUser = withCacheFallback((_id: string): Promise<User> => Promise.reject(error), { cache: new MemoryCache<User>(), key: (id) => id });
    await expect(getUser('u1')).rejects.toBe(error);
  });

  it('rethrows a synchronous throw of fn when nothing is cached', async () => {
    const error = new Error('sync');
    const get = withCacheFallback(
      (): string => {
        throw error;
      },
      { cache: new MemoryCache<string>(), key: () => 'k' },
    );
    await expect(get()).rejects.toBe(error);
  });

  it('rethrows an error handles declines, even with a cached value and a default', async () => {
    const cache = new MemoryCache<User>();
    cache.set('u1', alice);
    const error = new Error('401 unauthorized');
    const handles = vi.fn(() => false);
    const getUser = withCacheFallback((_id: string): Promise<User> => Promise.reject(error), { cache, key: (id) => id, default: guest, handles });
    await expect(getUser('u1')).rejects.toBe(error);
    expect(handles).toHaveBeenCalledWith(error);
  });

  it('serves the cache for an error handles accepts', async () => {
    const cache = new MemoryCache<User>();
    cache.set('u1', alice);
    const getUser = withCacheFallback((_id: string): Promise<User> => Promise.reject(new Error('503')), {
      cache,
      key: (id) => id,
      handles: (error) => (error as Error).message === '503',
    });
    await expect(getUser('u1')).resolves.toBe(alice);
  });

  it('rejects with what a throwing handles threw', async () => {
    const broken = new Error('handles is broken');
    const get = withCacheFallback((): Promise<string> => Promise.reject(new Error('down')), {
      cache: new MemoryCache<string>(),
      key: () => 'k',
      default: 'd',
      handles: () => {
        throw broken;
      },
    });
    await expect(get()).rejects.toBe(broken);
  });

  it.each<[string, () => void | Promise<void>]>([
    ['throws', () => {
      throw new Error('cache full');
    }],
    ['rejects', () => Promise.reject(new Error('cache unreachable'))],
  ])('does not fail a successful call when the cache’s set %s', async (_label, set) => {
    const cache: CacheStore<string> = { get: () => undefined, set, delete: () => {} };
    const get = withCacheFallback(async () => 'fresh', { cache, key: () => 'k' });
    await expect(get()).resolves.toBe('fresh');
  });

  it.each<[string, () => string | undefined | Promise<string | undefined>]>([
    ['throws', () => {
      throw new Error('cache broken');
    }],
    ['rejects', () => Promise.reject(new Error('cache unreachable'))],
  ])('falls through to the default when the cache’s get %s', async (_label, get) => {
    const cache: CacheStore<string> = { get, set: () => {}, delete: () => {} };
    const call = withCacheFallback((): Promise<string> => Promise.reject(new Error('down')), { cache, key: () => 'k', default: 'default' });
    await expect(call()).resolves.toBe('default');
  });

  it('rethrows the call’s own error, not the cache’s, when get throws and there is no default', async () => {
    const error = new Error('down');
    const cache: CacheStore<string> = {
      get: () => {
        throw new Error('cache broken');
      },
      set: () => {},
      delete: () => {},
    };
    const call = withCacheFallback((): Promise<string> => Promise.reject(error), { cache, key: () => 'k' });
    await expect(call()).rejects.toBe(error);
  });

  it('works with an async CacheStore', async () => {
    const store = new AsyncStore<User>();
    let up = true;
    const getUser = withCacheFallback(
      async (id: string): Promise<User> => {
        if (!up) throw new Error('down');
        return { id, name: 'Alice' };
      },
      { cache: store, key: (id) => `user:${id}`, default: guest },
    );
    const fresh = await getUser('u1');
    expect(store.map.get('user:u1')).toBe(fresh);
    up = false;
    await expect(getUser('u1')).resolves.toBe(fresh);
    await expect(getUser('u2')).resolves.toBe(guest);
  });

  it('reads as the seed’s ServiceWithFallback: service through a policy stack, else cache, else default', async () => {
    vi.useFakeTimers();
    try {
      const { clock, advance } = manualClock();
      const cache = new MemoryCache<User>({ maxEntries: 100, ttl: 60_000, clock });
      let failures = 0;
      const service = vi.fn(async (id: string): Promise<User> => {
        if (failures > 0) {
          failures--;
          throw new Error('flaky');
        }
        return { id, name: `user ${id}` };
      });
      const stack = compose(retryWithBackoff({ maxRetries: 1, baseDelay: 10, jitter: 'none' }), withTimeout(1_000));
      const getUser = withCacheFallback(stack.wrap(service), { cache, key: (id) => id, default: guest });

      const first = getUser('u1');
      await vi.advanceTimersByTimeAsync(0);
      const fresh = await first;
      expect(fresh).toEqual({ id: 'u1', name: 'user u1' });

      failures = 1; // one failure: the retry answers
      const retried = getUser('u1');
      await vi.advanceTimersByTimeAsync(10);
      await expect(retried).resolves.toEqual({ id: 'u1', name: 'user u1' });

      failures = 10; // the service is down: the cache answers for a known key, the default for others
      const cached = getUser('u1');
      const unknown = getUser('u2');
      await vi.advanceTimersByTimeAsync(10);
      await expect(cached).resolves.toEqual({ id: 'u1', name: 'user u1' });
      await expect(unknown).resolves.toBe(guest);

      advance(60_000); // the cached value expired: the default answers
      const expired = getUser('u1');
      await vi.advanceTimersByTimeAsync(10);
      await expect(expired).resolves.toBe(guest);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  const required = 'withCacheFallback(fn, options): options with cache and key are required';
  const noStore = 'withCacheFallback cache must be a CacheStore with get() and set()';
  it.each<[string, unknown, string]>([
    ['no options', undefined, required],
    ['null options', null, required],
    ['options a string', 'users', required],
    ['no cache', { key: () => 'k' }, noStore],
    ['a null cache', { cache: null, key: () => 'k' }, noStore],
    ['a cache that is a function', { cache: Object.assign(() => undefined, { get: () => undefined, set: () => undefined }), key: () => 'k' }, noStore],
    ['a cache without get', { cache: { set: () => {} }, key: () => 'k' }, noStore],
    ['a cache without set', { cache: { get: () => undefined }, key: () => 'k' }, noStore],
    ['a non-function key', { cache: new MemoryCache(), key: 'k' }, 'withCacheFallback key must be a function, got "k"'],
    ['a non-function handles', { cache: new MemoryCache(), key: () => 'k', handles: true }, 'withCacheFallback handles must be a function, got true'],
  ])('throws a TypeError at build time for %s, with the whole rule', (_label, options, message) => {
    expect(() => withCacheFallback(async () => 'x', options as CacheFallbackOptions<[], string>)).toThrow(new TypeError(message));
  });
});
