import { describe, expect, it, vi } from 'vitest';
import { RateLimitedError, RateLimiter, RateLimiterGroup, type RateLimiterGroupEvents, type RateLimiterOptions } from '../../src/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { flush, rejectionOf, track } from '../fixtures/promises.js';

function group(options: Omit<RateLimiterOptions, 'clock'>, maxKeys?: number) {
  const clock = new CountingClock({ start: 0 });
  const limiters = new RateLimiterGroup({ ...options, clock }, maxKeys === undefined ? undefined : { maxKeys });
  const evicted: string[] = [];
  limiters.on('evicted', ({ key }) => void evicted.push(key));
  return { clock, limiters, evicted };
}

describe('RateLimiterGroup', () => {
  it('makes one limiter per key, named <group name>:<key>, with the options of the group', async () => {
    const { limiters } = group({ rate: 1, interval: 1_000, name: 'clients' });
    const acme = limiters.get('acme');
    expect(acme).toBeInstanceOf(RateLimiter);
    expect(limiters.get('acme')).toBe(acme);
    expect([acme.name, acme.rate, acme.interval, acme.burst, limiters.maxKeys]).toEqual(['clients:acme', 1, 1_000, 1, 10_000]);
    expect(new RateLimiterGroup({ rate: 1 }).get('k').name).toBeUndefined();
    // Keys are limited apart.
    await limiters.execute('acme', () => 'a');
    await expect(limiters.execute('acme', () => 'again')).rejects.toBeInstanceOf(RateLimitedError);
    await expect(limiters.execute('globex', () => 'g')).resolves.toBe('g');
    expect([...limiters.keys()]).toEqual(['acme', 'globex']);
    expect(limiters.size).toBe(2);
  });

  it('checks its options like a limiter, under its own name, and its key', () => {
    expect(() => new RateLimiterGroup({ rate: 0 })).toThrow(new RangeError('RateLimiterGroup rate must be a whole number ≥ 1, got 0'));
    expect(() => new RateLimiterGroup({ rate: 1, tokensPerInterval: 1 } as RateLimiterOptions)).toThrow(/RateLimiterGroup has no option "tokensPerInterval" \(another library's name: bulwark's is "rate"\)/);
    expect(() => new RateLimiterGroup({ rate: 1 }, { maxKeys: 0 })).toThrow(new RangeError('RateLimiterGroup maxKeys must be a whole number ≥ 1 or Infinity, got 0'));
    expect(() => new RateLimiterGroup({ rate: 1 }, { maxEntries: 1 } as never)).toThrow(TypeError);
    expect(() => new RateLimiterGroup({ rate: 1 }, { maxKey: 5 } as never)).toThrow(new TypeError('RateLimiterGroup has no option "maxKey" (did you mean "maxKeys"?); known options: "maxKeys"'));
    const limiters = new RateLimiterGroup({ rate: 1 });
    expect(() => limiters.get(1 as never)).toThrow(new TypeError('RateLimiterGroup key must be a string, got 1'));
    return expect(limiters.execute(null as never, () => 1)).rejects.toThrow(new TypeError('RateLimiterGroup key must be a string, got null'));
  });

  it('keeps a limiter a call waits on, even once its bucket refilled while a busy event loop had not run its timer', () => {
    vi.useFakeTimers();
    try {
      const limiters = new RateLimiterGroup({ rate: 1, interval: 1_000, maxWait: 5_000 }, { maxKeys: 1 });
      void limiters.execute('a', () => 1);
      void limiters.execute('a', () => 2); // waits 1 s
      vi.setSystemTime(Date.now() + 5_000); // the bucket is full again, and the timer has not run
      limiters.get('b');
      expect([...limiters.keys()]).toEqual(['a', 'b']);
      expect(limiters.peek('a')?.queued).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('forgets a sliding-window limiter never called, which is at rest', () => {
    const { limiters, evicted } = group({ rate: 5, interval: 1_000, algorithm: 'sliding-window' }, 1);
    limiters.get('a');
    limiters.get('b');
    expect(evicted).toEqual(['a']);
    expect([...limiters.keys()]).toEqual(['b']);
  });

  it('forgets the least recently used limiters at rest beyond maxKeys', async () => {
    const { clock, limiters, evicted } = group({ rate: 1, interval: 100 }, 2);
    await limiters.execute('a', () => 1);
    await limiters.execute('b', () => 1);
    await clock.advance(100); // both buckets full again: at rest
    limiters.get('a'); // a is now the most recently used
    limiters.get('c');
    expect(evicted).toEqual(['b']);
    expect([...limiters.keys()]).toEqual(['a', 'c']);
    expect(limiters.has('b')).toBe(false);
  });

  it('keeps a limiter that is not at rest, so the limit is never loosened, and forgets it once it rests', async () => {
    const { clock, limiters, evicted } = group({ rate: 1, interval: 100 }, 2);
    await limiters.execute('a', () => 1); // a's bucket is empty for 100 ms
    await limiters.execute('b', () => 1);
    limiters.get('c');
    limiters.get('d');
    expect(evicted).toEqual([]);
    expect(limiters.size).toBe(4);
    // Still limited: the group did not hand out a fresh limiter for a.
    expect((await rejectionOf(limiters.execute('a', () => 2))) as RateLimitedError).toMatchObject({ reason: 'limit', retryAfter: 100 });
    await clock.advance(100);
    limiters.get('e');
    expect(evicted).toEqual(['b', 'c', 'd']);
    expect([...limiters.keys()]).toEqual(['a', 'e']);
  });

  it('holds at most maxKeys plus the keys used within the last refill time', async () => {
    const { clock, limiters } = group({ rate: 1, interval: 50 }, 10);
    let most = 0;
    for (let step = 0; step < 1_000; step++) {
      await limiters.execute(`key-${step}`, () => step);
      most = Math.max(most, limiters.size);
      await clock.advance(1);
    }
    // A key rests 50 ms after its call: at most 10 + the 50 keys of the last 50 ms.
    expect(most).toBeLessThanOrEqual(10 + 50 + 1);
    expect(most).toBeGreaterThan(10);
    await clock.advance(50);
    limiters.get('last');
    expect(limiters.size).toBe(10);
  });

  it('a limiter with calls waiting is not at rest, even with a sliding window already empty of grants', async () => {
    const { clock, limiters, evicted } = group({ rate: 1, interval: 100, algorithm: 'sliding-window', maxWait: Infinity }, 1);
    await limiters.execute('a', () => 1);
    const waiting = track(limiters.execute('a', () => 2));
    limiters.get('b');
    expect(evicted).toEqual([]);
    await clock.advance(100);
    expect(waiting.value).toBe(2);
    await clock.advance(100);
    limiters.get('c');
    expect(evicted).toEqual(['a', 'b']);
  });

  it('hears the events of every limiter, with its key', async () => {
    const { clock, limiters } = group({ rate: 1, interval: 100, maxWait: 100, maxQueue: 1 });
    const events: [string, RateLimiterGroupEvents['rejected'] | RateLimiterGroupEvents['delayed']][] = [];
    const stopRejected = limiters.on('rejected', (event) => void events.push(['rejected', event]));
    limiters.on('delayed', (event) => void events.push(['delayed', event]));
    const own = vi.fn();
    limiters.get('acme').on('delayed', own);
    void limiters.execute('acme', () => 1);
    const queued = track(limiters.execute('acme', () => 2));
    const refused = track(limiters.execute('acme', () => 3));
    await flush();
    expect(events).toEqual([
      ['delayed', { key: 'acme', wait: 100, queued: 1 }],
      ['rejected', { key: 'acme', error: refused.error, reason: 'limit', retryAfter: 200 }],
    ]);
    expect(own).toHaveBeenCalledTimes(1);
    stopRejected();
    await rejectionOf(limiters.execute('acme', () => 4));
    expect(events).toHaveLength(2);
    await clock.advance(100);
    expect(queued.value).toBe(2);
    expect(() => limiters.on('stateChange' as never, own)).toThrow(TypeError);
  });

  it('peek, has, delete, clear, entries and iteration', () => {
    const limiters = new RateLimiterGroup({ rate: 5 });
    expect(limiters.peek('a')).toBeUndefined();
    const a = limiters.get('a');
    const b = limiters.get('b');
    expect(limiters.peek('a')).toBe(a);
    expect([...limiters.keys()]).toEqual(['a', 'b']); // peek is not a use
    expect([...limiters]).toEqual([
      ['a', a],
      ['b', b],
    ]);
    expect([...limiters.entries()]).toEqual([...limiters]);
    expect(limiters.delete('a')).toBe(true);
    expect(limiters.delete('a')).toBe(false);
    expect(limiters.get('a')).not.toBe(a);
    limiters.clear();
    expect(limiters.size).toBe(0);
  });
});
