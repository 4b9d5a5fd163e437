import { afterEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, CircuitBreakerGroup, CircuitOpenError, type CircuitBreakerOptions, type CircuitBreakerGroupOptions } from '../../src/index.js';
import { manualClock } from '../fixtures/clock.js';
import { deferred, rejectionOf } from '../fixtures/promises.js';

afterEach(() => {
  vi.useRealTimers();
});

const down = (): Promise<never> => Promise.reject(new Error('down'));

/** A group of breakers that open on their first failure and stay open 1 s. */
function groupOf(maxKeys: number, options: CircuitBreakerOptions = {}) {
  const time = manualClock();
  const group = new CircuitBreakerGroup({ failureThreshold: 1, recoveryTimeout: 1_000, clock: time.clock, ...options }, { maxKeys });
  return { group, ...time };
}

describe('CircuitBreakerGroup: one breaker per key', () => {
  it('get(key) makes the key’s breaker once and returns the same one after', () => {
    const { group } = groupOf(10);
    const a = group.get('a');
    expect(a).toBeInstanceOf(CircuitBreaker);
    expect(group.get('a')).toBe(a);
    expect(group.get('b')).not.toBe(a);
    expect(group.size).toBe(2);
  });

  it('execute(key, fn) runs through the key’s breaker only: one failing host does not open another', async () => {
    const { group } = groupOf(10);
    await expect(group.execute('bad.example', down)).rejects.toThrow('down');
    expect(group.get('bad.example').state).toBe('open');
    const error = await rejectionOf(group.execute('bad.example', () => 'never'));
    expect(error).toBeInstanceOf(CircuitOpenError);
    await expect(group.execute('good.example', () => 'fine')).resolves.toBe('fine');
    expect(group.get('good.example').state).toBe('closed');
  });

  it('execute passes the options (the caller’s signal) on', async () => {
    const { group } = groupOf(10);
    const controller = new AbortController();
    const reason = new Error('caller left');
    const call = group.execute('a', () => new Promise<never>(() => {}), { signal: controller.signal });
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(group.get('a').state).toBe('closed'); // a caller's abort is not a failure
  });

  it('every breaker gets the group’s options', () => {
    const { group } = groupOf(10, { halfOpenMaxCalls: 3, name: 'per-host' });
    expect([group.get('x').halfOpenMaxCalls, group.get('x').failureThreshold, group.get('y').name]).toEqual([3, 1, 'per-host']);
  });

  it('has, peek, delete, keys, entries, iteration and clear', () => {
    const { group } = groupOf(10);
    const a = group.get('a');
    group.get('b');
    expect(group.has('a')).toBe(true);
    expect(group.has('zzz')).toBe(false);
    expect(group.peek('a')).toBe(a);
    expect(group.peek('zzz')).toBeUndefined();
    expect(group.size).toBe(2); // has and peek make nothing
    expect([...group.keys()].sort()).toEqual(['a', 'b']);
    expect(new Map(group.entries()).get('a')).toBe(a);
    expect(new Map(group).get('a')).toBe(a);
    expect(group.delete('a')).toBe(true);
    expect(group.delete('a')).toBe(false);
    expect(group.has('a')).toBe(false);
    expect(group.get('a')).not.toBe(a);
    group.clear();
    expect(group.size).toBe(0);
  });

  it('refuses a key that is not a string: get throws, execute rejects', async () => {
    const { group } = groupOf(10);
    expect(() => group.get(42 as unknown as string)).toThrow(TypeError);
    expect(() => group.get(42 as unknown as string)).toThrow(/key must be a string, got number/);
    const fn = vi.fn(() => 'ran');
    await expect(group.execute(undefined as unknown as string, fn)).rejects.toThrow(TypeError);
    expect(fn).not.toHaveBeenCalled();
    expect(group.size).toBe(0);
  });

  it('names what a key that is not a string is: null apart from other objects', () => {
    const { group } = groupOf(10);
    expect(() => group.get(null as unknown as string)).toThrow(new TypeError('CircuitBreakerGroup key must be a string, got null'));
    expect(() => group.get({} as unknown as string)).toThrow(new TypeError('CircuitBreakerGroup key must be a string, got object'));
  });
});

describe('CircuitBreakerGroup: bounded memory', () => {
  it('beyond maxKeys forgets the least recently used closed breaker; get and execute count as uses', async () => {
    const { group } = groupOf(3);
    const evicted: string[] = [];
    group.on('evicted', ({ key }) => evicted.push(key));
    const a = group.get('a');
    group.get('b');
    group.get('c');
    group.get('a'); // a is now the most recently used
    await group.execute('b', () => 'ok');
    group.get('d');
    expect(evicted).toEqual(['c']);
    expect([...group.keys()].sort()).toEqual(['a', 'b', 'd']);
    expect(group.get('a')).toBe(a);
    group.get('e');
    expect(evicted).toEqual(['c', 'b']);
    expect(group.size).toBe(3);
  });

  it('never forgets an open, half-open or isolated breaker, and trims back once they close', async () => {
    const { group, advance } = groupOf(2);
    await rejectionOf(group.execute('open', down));
    await rejectionOf(group.execute('half-open', down));
    advance(1_000);
    expect(group.get('half-open').state).toBe('half-open');
    group.get('isolated').isolate();
    for (const key of ['x', 'y', 'z']) group.get(key);
    // the three tripped breakers stay; of the closed ones only the one just made is kept
    expect([...group.keys()].sort()).toEqual(['half-open', 'isolated', 'open', 'z']);
    expect(group.get('open').state).toBe('half-open'); // the same breaker, its state kept
    await group.execute('open', () => 'recovered');
    await group.execute('half-open', () => 'recovered');
    group.get('isolated').reset();
    expect(group.size).toBe(4);
    group.get('w');
    expect(group.size).toBe(2);
    expect([...group.keys()].sort()).toEqual(['isolated', 'w']); // 'isolated' was closed last: the most recent of the old ones
  });

  it('keeps a breaker that opens while others are added, even when it was the least recently used', async () => {
    const { group } = groupOf(2);
    const first = group.get('first');
    group.get('second');
    await rejectionOf(first.execute(down)); // used directly: opens without touching recency
    group.get('third');
    expect(group.peek('first')).toBe(first);
    expect(group.has('second')).toBe(false);
  });

  it('a forgotten breaker still works for whoever holds it, but the group no longer reports it', async () => {
    const { group } = groupOf(1);
    const changes: string[] = [];
    group.on('stateChange', ({ key, to }) => changes.push(`${key}:${to}`));
    const kept = group.get('a');
    group.get('b');
    expect(group.has('a')).toBe(false);
    await rejectionOf(kept.execute(down));
    expect(kept.state).toBe('open');
    expect(changes).toEqual([]);
    expect(group.get('a')).not.toBe(kept);
  });

  it('100 000 idle breakers arm no timer', async () => {
    vi.useFakeTimers();
    const group = new CircuitBreakerGroup(
      { failureRate: { threshold: 0.5, window: { duration: 60_000 } }, slowCall: { duration: 1_000, rateThreshold: 0.5 }, halfOpenMaxWait: 5_000 },
      { maxKeys: 100_000 },
    );
    for (let i = 0; i < 100_000; i++) group.get(`tenant-${i}`);
    await group.execute('tenant-7', () => 'ok');
    await rejectionOf(group.execute('tenant-8', down));
    expect(group.size).toBe(100_000);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(group.get('tenant-8').stats().calls).toBe(0); // its window emptied by the clock alone
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('CircuitBreakerGroup: events', () => {
  it('stateChange carries the key, the breaker and the reason', async () => {
    const { group, advance } = groupOf(10);
    const changes: unknown[] = [];
    group.on('stateChange', ({ key, breaker, from, to, reason }) => changes.push({ key, same: breaker === group.peek(key), from, to, reason }));
    await rejectionOf(group.execute('api', down));
    advance(1_000);
    await group.execute('api', () => 'ok');
    expect(changes).toEqual([
      { key: 'api', same: true, from: 'closed', to: 'open', reason: 'failure-threshold' },
      { key: 'api', same: true, from: 'open', to: 'half-open', reason: 'recovery-timeout' },
      { key: 'api', same: true, from: 'half-open', to: 'closed', reason: 'trial-success' },
    ]);
  });

  it('a throwing group listener breaks no call, and a listener that resets the breaker keeps the books right', async () => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    try {
      const { group } = groupOf(1);
      group.on('stateChange', () => {
        throw new Error('dashboard down');
      });
      const breaker = group.get('a');
      breaker.on('stateChange', ({ to }) => {
        if (to === 'open') breaker.reset();
      });
      await expect(group.execute('a', down)).rejects.toThrow('down');
      expect(breaker.state).toBe('closed');
      group.get('b');
      expect(group.has('a')).toBe(false); // counted as closed, so it could be evicted
      expect(reportError).toHaveBeenCalled();
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('a breaker restored into the open state is never evicted', () => {
    const { group, clock } = groupOf(1);
    const source = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    source.isolate();
    group.get('restored').restore(source.toJSON());
    group.get('other');
    expect(group.peek('restored')?.state).toBe('isolated');
  });

  it('a breaker of the group still takes listeners of its own', async () => {
    const { group } = groupOf(10);
    const breaker = group.get('a');
    const seen = vi.fn();
    breaker.on('stateChange', seen);
    await rejectionOf(breaker.execute(down));
    expect(seen).toHaveBeenCalledWith({ from: 'closed', to: 'open', reason: 'failure-threshold' });
  });
});

describe('CircuitBreakerGroup: options', () => {
  it.each<[string, () => unknown, typeof TypeError | typeof RangeError, RegExp]>([
    ['maxKeys 0', () => new CircuitBreakerGroup({}, { maxKeys: 0 }), RangeError, /maxKeys.*0/],
    ['maxKeys fractional', () => new CircuitBreakerGroup({}, { maxKeys: 1.5 }), RangeError, /maxKeys.*1\.5/],
    ['maxKeys a string', () => new CircuitBreakerGroup({}, { maxKeys: '10' } as unknown as CircuitBreakerGroupOptions), TypeError, /maxKeys.*"10"/],
    ['group options a number', () => new CircuitBreakerGroup({}, 5 as unknown as CircuitBreakerGroupOptions), TypeError, /CircuitBreakerGroup options/],
    ['a bad breaker option', () => new CircuitBreakerGroup({ failureThreshold: 0 }), RangeError, /CircuitBreakerGroup failureThreshold.*0/],
    ['a bad rate', () => new CircuitBreakerGroup({ failureRate: { threshold: 2 } }), RangeError, /failureRate\.threshold.*2/],
    ['initialState for every key', () => new CircuitBreakerGroup({ initialState: new CircuitBreaker().toJSON() }), TypeError, /initialState.*restore/],
    ['breaker options null', () => new CircuitBreakerGroup(null as unknown as CircuitBreakerOptions), TypeError, /^CircuitBreakerGroup options must be an object/],
  ])('%s is refused', (_, build, errorClass, message) => {
    expect(build).toThrow(errorClass);
    expect(build).toThrow(message);
  });

  it('defaults maxKeys to 10 000 and accepts Infinity', () => {
    expect(new CircuitBreakerGroup().maxKeys).toBe(10_000);
    expect(new CircuitBreakerGroup({}, { maxKeys: Infinity }).maxKeys).toBe(Infinity);
  });

  it('reads and checks the breaker options once, when the group is built', () => {
    let reads = 0;
    const options = {
      get failureThreshold(): number {
        reads++;
        return 2;
      },
    };
    const group = new CircuitBreakerGroup(options);
    const readsToBuild = reads;
    expect(readsToBuild).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) group.get(String(i));
    expect(reads).toBe(readsToBuild);
    expect(group.get('0').failureThreshold).toBe(2);
  });

  it('a half-open breaker of the group admits exactly halfOpenMaxCalls trials when 100 callers race', async () => {
    const { group, advance } = groupOf(10, { halfOpenMaxCalls: 2 });
    await rejectionOf(group.execute('api', down));
    advance(1_000);
    const gate = deferred<string>();
    const fn = vi.fn(() => gate.promise);
    const calls = Array.from({ length: 100 }, () => group.execute('api', fn).catch((error: unknown) => error));
    expect(fn).toHaveBeenCalledTimes(2);
    gate.resolve('ok');
    const outcomes = await Promise.all(calls);
    expect(outcomes.filter((outcome) => outcome === 'ok')).toHaveLength(2);
    expect(group.get('api').state).toBe('closed');
  });
});
