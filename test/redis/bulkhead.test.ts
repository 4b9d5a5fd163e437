/**
 * RedisBulkhead against a real redis-server, with ioredis and with node-redis: a cap shared by
 * two clients, refusals, queueing, aborts, and the store's failure modes; then on a scripted Redis
 * with fake timers: retries, deadlines, renewals, give-backs, close() and what each leaves behind.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BulkheadRejectedError, MetricsRegistry, isRefusal } from '../../src/index.js';
import { renderPrometheus } from '../../src/prometheus/index.js';
import { RedisBulkhead, RedisStoreError, type RedisBulkheadOptions } from '../../src/redis/index.js';
import { settle, useRedisServer, type Family, type TestClient } from './clients.js';
import { ACQUIRE_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT } from '../../src/redis/lease-script.js';
import { RedisServer } from './server.js';

const { client } = useRedisServer();
let unique = 0;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A function whose work lasts until `end()`. */
function gate() {
  let end!: () => void;
  const done = new Promise<void>((resolve) => (end = resolve));
  return { work: () => done.then(() => 'ran'), end };
}

async function eventually(check: () => Promise<boolean> | boolean, ms = 2_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe.each<Family>(['ioredis', 'node-redis'])('RedisBulkhead with %s', (family) => {
  const make = (c: TestClient, options: Partial<RedisBulkheadOptions> & { name: string }) => new RedisBulkhead(c.client, { maxConcurrent: 3, timeout: 2_000, ...options });
  const held = async (c: TestClient, b: RedisBulkhead) => Number(await c.command('ZCARD', b.key));

  it('a cap of 3 shared by two clients: never more than 3 at once, every queued call runs', async () => {
    const name = `shared-${family}-${unique++}`;
    const c = await client(family);
    const [a, b] = [make(c, { name, maxQueue: Infinity, retryInterval: 5 }), make(await client(family), { name, maxQueue: Infinity, retryInterval: 5 })];
    let running = 0;
    let most = 0;
    const work = async () => {
      most = Math.max(most, ++running);
      await sleep(3);
      running--;
      return 'ran';
    };
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => settle(((i % 2 === 0 ? a : b) as RedisBulkhead).execute(work))));
    expect(answers.every((answer) => 'value' in answer)).toBe(true);
    expect(most).toBe(3);
    await eventually(async () => (await held(c, a as RedisBulkhead)) === 0);
  });

  it('full with no queue: BulkheadRejectedError "full" (a refusal); a queued call past queueTimeout: "queue-timeout"', async () => {
    const name = `full-${family}-${unique++}`;
    const l = make(await client(family), { name, maxConcurrent: 1 });
    const q = make(await client(family), { name, maxConcurrent: 1, maxQueue: 1, queueTimeout: 50 });
    const g = gate();
    const first = l.execute(g.work);
    await eventually(() => l.active === 1);
    const refused = await settle(l.execute(() => 'no'));
    expect(refused).toMatchObject({ error: expect.any(BulkheadRejectedError) });
    expect((refused as { error: BulkheadRejectedError }).error.reason).toBe('full');
    expect(isRefusal((refused as { error: unknown }).error)).toBe(true);
    const waited = settle(q.execute(() => 'no'));
    expect(await settle(q.execute(() => 'no'))).toMatchObject({ error: { reason: 'full' } }); // the one queue place is taken
    expect(await waited).toMatchObject({ error: { reason: 'queue-timeout' } });
    g.end();
    expect(await first).toBe('ran');
  });

  it('a call running past leaseTime keeps its slot: its lease is renewed, so another replica is still refused; once it ends the slot is free', async () => {
    const name = `renew-${family}-${unique++}`;
    const c = await client(family);
    // Renewed every 100 ms: a lease of 300 ms survives an event loop stalled for up to 200 ms under load.
    const a = make(c, { name, maxConcurrent: 1, leaseTime: 300 });
    const b = make(await client(family), { name, maxConcurrent: 1, leaseTime: 300 });
    const g = gate();
    const running = a.execute(g.work);
    await eventually(() => a.active === 1);
    await sleep(700); // more than two lease times
    expect(await held(c, a)).toBe(1);
    const refused = await settle(b.execute(() => 'no'));
    expect((refused as { error: BulkheadRejectedError }).error).toBeInstanceOf(BulkheadRejectedError);
    expect((refused as { error: BulkheadRejectedError }).error.reason).toBe('full');
    g.end();
    expect(await running).toBe('ran');
    await eventually(async () => (await held(c, a)) === 0);
    expect(await b.execute(() => 'ran')).toBe('ran');
  });

  it('aborts free the slot: while asking, while queued, and while running (once the work ends)', async () => {
    const name = `abort-${family}-${unique++}`;
    const c = await client(family);
    const b = make(c, { name, maxConcurrent: 1, maxQueue: 5 });
    const reason = new Error('caller gave up');
    const asking = new AbortController();
    const p1 = settle(b.execute(() => 'ran', { signal: asking.signal }));
    asking.abort(reason);
    expect(await p1).toEqual({ error: reason });
    await eventually(async () => (await held(c, b)) === 0);
    const g = gate();
    const running = new AbortController();
    const p2 = settle(b.execute(({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => setTimeout(() => reject(signal.reason), 20))), { signal: running.signal }));
    await eventually(() => b.active === 1);
    const queued = new AbortController();
    const p3 = settle(b.execute(g.work, { signal: queued.signal }));
    await eventually(() => b.queued === 1);
    queued.abort(reason);
    expect(await p3).toEqual({ error: reason });
    expect(b.queued).toBe(0);
    running.abort(reason);
    expect(await p2).toEqual({ error: reason });
    expect(await held(c, b)).toBe(1); // the work has not ended yet: the slot is still held
    await eventually(async () => (await held(c, b)) === 0);
    expect(b.active).toBe(0);
  });

  it('Redis stopped: a local cap of the same options, storeDown; restarted: storeUp, shared again, nothing fails', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client(family, own.port);
      const b = new RedisBulkhead(c.client, { name: `down-${family}`, maxConcurrent: 2, timeout: 100, probeInterval: 50 });
      const seen: string[] = [];
      b.on('storeDown', () => seen.push('down'));
      b.on('storeUp', () => seen.push('up'));
      expect(await b.execute(() => 'ran')).toBe('ran');
      await own.stop();
      const g = gate();
      const two = [b.execute(g.work), b.execute(g.work)];
      await eventually(() => b.active === 2);
      expect(b.storeUp).toBe(false);
      expect(await settle(b.execute(() => 'no'))).toMatchObject({ error: { reason: 'full' } }); // the local cap
      g.end();
      expect(await Promise.all(two)).toEqual(['ran', 'ran']);
      await own.start();
      // While the client reconnects, the acquires that timed out while Redis was down may still
      // reach it and hold a slot until their releases follow: a call may be refused then, never fail otherwise.
      await eventually(async () => {
        const answer = await settle(b.execute(() => 'ran'));
        if ('error' in answer) expect(answer.error).toBeInstanceOf(BulkheadRejectedError);
        await sleep(20);
        return b.storeUp;
      }, 5_000);
      expect(seen).toEqual(['down', 'up']);
      await eventually(async () => Number(await c.command('ZCARD', b.key)) === 0);
      const answers = await Promise.all(Array.from({ length: 2 }, () => settle(b.execute(() => 'ran'))));
      expect(answers).toEqual([{ value: 'ran' }, { value: 'ran' }]);
    } finally {
      await own.close();
    }
  });

  it('failClosed: while Redis is down calls are refused with RedisStoreError (a refusal)', async () => {
    const own = await RedisServer.start();
    try {
      const c = await client(family, own.port);
      const b = new RedisBulkhead(c.client, { name: `closed-${family}`, maxConcurrent: 2, timeout: 100, failClosed: true });
      await own.stop();
      const answer = await settle(b.execute(() => 'no'));
      expect(answer).toMatchObject({ error: expect.any(RedisStoreError) });
      expect(isRefusal((answer as { error: unknown }).error)).toBe(true);
    } finally {
      await own.close();
    }
  });
});

describe.each<Family>(['ioredis', 'node-redis'])('RedisBulkhead.close() with %s', (family) => {
  const make = (c: TestClient, options: Partial<RedisBulkheadOptions> & { name: string }) => new RedisBulkhead(c.client, { maxConcurrent: 2, timeout: 2_000, ...options });
  const held = async (c: TestClient, b: RedisBulkhead) => Number(await c.command('ZCARD', b.key));

  it('waits for the give-back of a call that just ended, so a disconnect right after drops no slot', async () => {
    const name = `close-back-${family}-${unique++}`;
    const c = await client(family);
    const b = make(c, { name });
    expect(await b.execute(() => 'ran')).toBe('ran'); // its give-back is on its way, off the caller's path
    await b.close();
    await c.quit();
    const other = await client(family);
    expect(await held(other, b)).toBe(0);
  });

  it('waits for calls still running to end and give their slots back; waiting calls move to the local cap', async () => {
    const name = `close-running-${family}-${unique++}`;
    const c = await client(family);
    const b = make(c, { name, maxConcurrent: 1, maxQueue: 5, retryInterval: 5 });
    const running = gate();
    const first = b.execute(running.work);
    await eventually(async () => (await held(c, b)) === 1);
    const queued = b.execute(() => 'queued ran');
    await eventually(() => b.queued === 1);
    let closed = false;
    const closing = b.close().then(() => (closed = true));
    // The queued call is decided by the local cap of 1, which is free: it runs at once.
    expect(await queued).toBe('queued ran');
    await sleep(20);
    expect(closed).toBe(false); // the running call still holds its lease
    expect(await held(c, b)).toBe(1);
    running.end();
    expect(await first).toBe('ran');
    await closing;
    expect(await held(c, b)).toBe(0);
  });

  it('after close(), calls are decided by the local cap alone: no script runs', async () => {
    const name = `close-local-${family}-${unique++}`;
    const c = await client(family);
    const b = make(c, { name, maxConcurrent: 1 });
    await b.close();
    const before = await c.command('INFO', 'commandstats');
    const hold = gate();
    const one = b.execute(hold.work);
    const refused = await settle(b.execute(() => 'two'));
    expect('error' in refused && refused.error).toBeInstanceOf(BulkheadRejectedError);
    hold.end();
    expect(await one).toBe('ran');
    const scripts = (info: unknown) => Number(/cmdstat_evalsha:calls=(\d+)/.exec(String(info))?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(String(info))?.[1] ?? 0);
    expect(scripts(await c.command('INFO', 'commandstats'))).toBe(scripts(before));
  });
});

describe('RedisBulkhead observed and configured', () => {
  it('MetricsRegistry and renderPrometheus read its gauges', async () => {
    const c = await client('ioredis');
    const b = new RedisBulkhead(c.client, { name: 'observed-bulkhead', maxConcurrent: 1, timeout: 2_000 });
    const registry = new MetricsRegistry();
    registry.track(b);
    const g = gate();
    const running = b.execute(g.work);
    await eventually(() => b.active === 1);
    await settle(b.execute(() => 'no'));
    const mine = registry.snapshot().policies.find((policy) => policy.kind === 'shared-bulkhead') as Record<string, unknown>;
    expect(mine).toMatchObject({ name: 'observed-bulkhead', active: 1, queued: 0, redisStoreUp: 1, rejections: 1 });
    expect(renderPrometheus(registry)).toMatch(/bulwark_bulkhead_active_calls\{[^}]*policy="observed-bulkhead"[^}]*\} 1/);
    g.end();
    await running;
  });

  const fake = { evalsha: async () => [1, 0, 1], eval: async () => [1, 0, 1] };
  it('checks every option and names ours for the peers\'', () => {
    expect(() => new RedisBulkhead(fake, { maxConcurrent: 1 } as never)).toThrow(/name is required/);
    expect(() => new RedisBulkhead(fake, { name: 'x' } as never)).toThrow(/maxConcurrent is required/);
    expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurrent: 0 })).toThrow(RangeError);
    expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1, maxQueue: -1 })).toThrow(RangeError);
    expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1, leaseTime: 2 })).toThrow(/leaseTime/);
    expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1, timeout: 0 })).toThrow(RangeError);
    // Each is a timer's delay: beyond 2³¹−1 ms Node would fire it at once.
    for (const option of ['retryInterval', 'leaseTime', 'timeout'] as const) {
      expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1, [option]: 2 ** 31 })).toThrow(new RangeError(`RedisBulkhead ${option} must be a duration in ms from 0 to 2147483647, got 2147483648`));
      expect(new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1, [option]: 2 ** 31 - 1 })[option]).toBe(2 ** 31 - 1);
    }
    expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1, failClosed: 1 as never })).toThrow(TypeError);
    expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1, concurrency: 2 } as never)).toThrow(/concurrency.*"maxConcurrent"/s);
    expect(new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1e9, maxQueue: Infinity, queueTimeout: Infinity, leaseTime: 3 }).key).toBe('{bulwark:x}:slots');
  });

  it.each<[string, unknown, ErrorConstructor, string]>([
    ['no options', undefined, TypeError, 'RedisBulkhead(client, options): options with name and maxConcurrent are required, got undefined'],
    ['null', null, TypeError, 'RedisBulkhead(client, options): options with name and maxConcurrent are required, got null'],
    ['a number', 3, TypeError, 'RedisBulkhead(client, options): options with name and maxConcurrent are required, got 3'],
    ['no name', { maxConcurrent: 1 }, TypeError, 'RedisBulkhead name is required: every replica sharing the cap uses the same name'],
    ['a name that is not a string', { name: 7, maxConcurrent: 1 }, TypeError, 'RedisBulkhead name must be a string, got 7'],
    ['an empty name', { name: '', maxConcurrent: 1 }, RangeError, 'RedisBulkhead name must be a non-empty string, got ""'],
    ['no maxConcurrent', { name: 'x' }, TypeError, 'RedisBulkhead maxConcurrent is required'],
    ['maxConcurrent 0', { name: 'x', maxConcurrent: 0 }, RangeError, 'RedisBulkhead maxConcurrent must be a whole number ≥ 1, got 0'],
    ['maxConcurrent Infinity', { name: 'x', maxConcurrent: Infinity }, RangeError, 'RedisBulkhead maxConcurrent must be a whole number ≥ 1, got Infinity'],
    ['maxQueue -1', { name: 'x', maxConcurrent: 1, maxQueue: -1 }, RangeError, 'RedisBulkhead maxQueue must be a whole number ≥ 0 or Infinity, got -1'],
    ['queueTimeout -1', { name: 'x', maxConcurrent: 1, queueTimeout: -1 }, RangeError, 'RedisBulkhead queueTimeout must be a duration in ms from 0 to 2147483647 or Infinity, got -1'],
    ['retryInterval 0', { name: 'x', maxConcurrent: 1, retryInterval: 0 }, RangeError, 'RedisBulkhead retryInterval must be a finite duration in ms > 0, got 0'],
    ['leaseTime 0', { name: 'x', maxConcurrent: 1, leaseTime: 0 }, RangeError, 'RedisBulkhead leaseTime must be a finite duration in ms > 0, got 0'],
    ['leaseTime 2.9', { name: 'x', maxConcurrent: 1, leaseTime: 2.9 }, RangeError, 'RedisBulkhead leaseTime must be at least 3 ms (it is renewed every leaseTime / 3), got 2.9'],
    ['timeout 0', { name: 'x', maxConcurrent: 1, timeout: 0 }, RangeError, 'RedisBulkhead timeout must be a finite duration in ms > 0, got 0'],
    ['probeInterval -1', { name: 'x', maxConcurrent: 1, probeInterval: -1 }, RangeError, 'RedisBulkhead probeInterval must be a duration in ms from 0 to 2147483647, got -1'],
    ['failClosed 1', { name: 'x', maxConcurrent: 1, failClosed: 1 }, TypeError, 'RedisBulkhead failClosed must be true or false, got 1'],
  ])('refuses %s with the whole rule', (_, options, type, message) => {
    expect(() => new RedisBulkhead(fake, options as never)).toThrow(new type(message));
    expect(() => new RedisBulkhead(fake, options as never)).toThrow(type);
  });

  it('its defaults, and every option given is the one in force', () => {
    expect({ ...new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1 }) }).toMatchObject({
      name: 'x',
      maxConcurrent: 1,
      maxQueue: 0,
      queueTimeout: Infinity,
      retryInterval: 20,
      leaseTime: 10_000,
      timeout: 100,
      probeInterval: 1_000,
      failClosed: false,
      key: '{bulwark:x}:slots',
    });
    const given = { name: 'y', maxConcurrent: 4, maxQueue: 7, queueTimeout: 0, retryInterval: 5, leaseTime: 3, timeout: 1, probeInterval: 0, failClosed: true };
    expect({ ...new RedisBulkhead(fake, given) }).toMatchObject({ ...given, key: '{bulwark:y}:slots' });
    expect(new RedisBulkhead(fake, { ...given, failClosed: false }).failClosed).toBe(false);
  });

  it('refuses a value that is not a client, naming what it lacks', () => {
    expect(() => new RedisBulkhead({} as never, { name: 'x', maxConcurrent: 1 })).toThrow(
      new TypeError('RedisBulkhead client must be an ioredis, iovalkey or node-redis (v4+) client or cluster (with evalsha/evalSha and eval), got an object'),
    );
  });

  const KNOWN = 'known options: "name", "maxConcurrent", "maxQueue", "queueTimeout", "retryInterval", "leaseTime", "timeout", "probeInterval", "failClosed"';
  it('a misspelt option: a TypeError naming it, the nearest, and every option it has', () => {
    expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurent: 1 } as never)).toThrow(
      new TypeError(`RedisBulkhead has no option "maxConcurent" (did you mean "maxConcurrent"?); ${KNOWN}`),
    );
  });

  it.each([
    ['concurrency', 'maxConcurrent'],
    ['limit', 'maxConcurrent'],
    ['maxConcurrentCalls', 'maxConcurrent'],
    ['permitLimit', 'maxConcurrent'],
    ['maxConcurrentLeases', 'maxConcurrent'],
    ['queueLimit', 'maxQueue'],
    ['maxWait', 'queueTimeout'],
    ['maxWaitDuration', 'queueTimeout'],
    ['ttl', 'leaseTime'],
    ['leaseDuration', 'leaseTime'],
  ])('another library\'s option %s: a TypeError naming ours, %s', (peer, ours) => {
    expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1, [peer]: 1 } as never)).toThrow(
      new TypeError(`RedisBulkhead has no option "${peer}" (another library's name: bulwark's is "${ours}"); ${KNOWN}`),
    );
  });

  it('a clock option: a TypeError saying time is the Redis server\'s', () => {
    expect(() => new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1, clock: {} } as never)).toThrow(
      new TypeError(`RedisBulkhead has no option "clock" (another library's name: bulwark's is none: time is the Redis server's); ${KNOWN}`),
    );
  });

  it('on() accepts its four events and names them for any other', () => {
    const b = new RedisBulkhead(fake, { name: 'x', maxConcurrent: 1 });
    for (const event of ['rejected', 'storeError', 'storeDown', 'storeUp'] as const) expect(b.on(event, () => {})).toBeTypeOf('function');
    expect(() => b.on('delayed' as never, () => {})).toThrow(new TypeError('Unknown event "delayed": expected one of "rejected", "storeError", "storeDown", "storeUp"'));
  });
});

/**
 * The lease scripts of a bulkhead run in memory on `Date.now()` (faked with the timers), shared
 * by every replica built on one store: each call's operation is recorded, the store can fail
 * every call at once (a lost connection) or hold its answers until `resume()` (a slow Redis).
 */
class LeaseStore {
  readonly leases = new Map<string, number>();
  readonly ops: string[] = [];
  failing = false;
  paused = false;
  private readonly pending: (() => void)[] = [];

  client() {
    const run = (_sha: unknown, _keys: unknown, _key: unknown, ...args: string[]): Promise<unknown> => {
      const op = args.length === 1 ? 'release' : args[1]?.includes(':') === true ? 'renew' : 'acquire';
      this.ops.push(op);
      if (this.failing) return Promise.reject(new Error('connection lost'));
      const answer = () => this.run(op, args);
      if (!this.paused) return Promise.resolve(answer());
      return new Promise((resolve, reject) => this.pending.push(() => (this.failing ? reject(new Error('connection lost')) : resolve(answer()))));
    };
    return { evalsha: run, eval: run };
  }

  /** Runs the answers held while paused, in order (failing them if the store fails now). */
  resume(): void {
    this.paused = false;
    for (const next of this.pending.splice(0)) next();
  }

  /** Runs one answer held while paused (the `index`th still held), failing it if `fail`; the others stay held. */
  answer(index: number, fail = false): void {
    const [next] = this.pending.splice(index, 1);
    const failing = this.failing;
    this.failing = fail;
    next?.();
    this.failing = failing;
  }

  count(op: string): number {
    return this.ops.filter((o) => o === op).length;
  }

  private run(op: string, args: string[]): unknown {
    const now = Date.now();
    for (const [id, expiry] of this.leases) if (expiry <= now) this.leases.delete(id);
    if (op === 'acquire') {
      const [max, lease, id] = args as [string, string, string];
      if (this.leases.size >= Number(max)) return [0, now * 1000, this.leases.size];
      this.leases.set(id, now + Number(lease));
      return [1, now * 1000, this.leases.size];
    }
    if (op === 'release') return [this.leases.delete(args[0] as string) ? 1 : 0, now * 1000];
    let renewed = 0;
    for (const id of args.slice(1)) {
      if (!this.leases.has(id)) continue;
      this.leases.set(id, now + Number(args[0]));
      renewed++;
    }
    return renewed;
  }
}

/** Lets every promise reaction run (setImmediate is left real). */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));
const FAKE: Parameters<typeof vi.useFakeTimers>[0] = { toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] };

describe('RedisBulkhead on a scripted Redis, with fake timers', () => {
  beforeAll(() => {
    // The scripts' SHA-1s, which the store computes once by Web Crypto (off the fake timers), are
    // set here: no bulkhead code runs outside a test (Stryker would re-run every test for it).
    for (const script of [ACQUIRE_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT]) script.sha ??= createHash('sha1').update(script.source).digest('hex');
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const other = (store: LeaseStore, id = 'other-replica:1') => store.leases.set(id, Date.now() + 3_600_000);
  const make = (store: LeaseStore, options: Partial<RedisBulkheadOptions> = {}) => new RedisBulkhead(store.client(), { name: 'scripted', maxConcurrent: 1, ...options });
  const open = () => {
    let end!: () => void;
    const done = new Promise<string>((resolve) => (end = () => resolve('ran')));
    return { work: () => done, end };
  };
  const pending = <T,>(promise: Promise<T>) => {
    const box: { answer?: { value: T } | { error: unknown } } = {};
    void settle(promise).then((answer) => (box.answer = answer));
    return box;
  };

  it('a queued call is refused at queueTimeout when a retry falls on it, with the whole message, and leaves no timer behind', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 1, queueTimeout: 90, retryInterval: 30 });
    const seen: unknown[] = [];
    b.on('rejected', (event) => seen.push(event));
    const waiting = pending(b.execute(() => 'no'));
    await settled();
    expect(b.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(89);
    expect(waiting.answer).toBeUndefined();
    expect(store.count('acquire')).toBe(3); // asked at 0, 30 and 60
    await vi.advanceTimersByTimeAsync(1);
    const error = new BulkheadRejectedError('queue-timeout', 1, 1);
    expect(waiting.answer).toEqual({ error });
    expect((waiting.answer as { error: Error }).error.message).toBe(error.message);
    expect(seen).toEqual([{ error, reason: 'queue-timeout' }]);
    expect(store.count('acquire')).toBe(3); // refused at its deadline without asking again
    expect(b.queued).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a slot this replica frees goes to its first waiting call at once, and the next waiting call asks right after, not a retryInterval later', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxConcurrent: 2, maxQueue: 5, retryInterval: 60_000 });
    const x = open();
    const running = b.execute(x.work);
    await settled();
    const q1 = pending(b.execute(() => 'q1'));
    const q2 = pending(b.execute(() => 'q2'));
    await settled();
    expect([b.active, b.queued]).toEqual([1, 2]);
    store.leases.delete('other-replica:1'); // the other replica's call ended: nothing tells this one
    x.end();
    expect(await running).toBe('ran');
    await settled();
    expect(q1.answer).toEqual({ value: 'q1' });
    expect(q2.answer).toEqual({ value: 'q2' });
    expect([b.active, b.queued, store.leases.size]).toEqual([0, 0, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a running call\'s lease is renewed every leaseTime / 3 for as long as it runs, and renewal stops with the last lease this replica holds', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    const b = make(store, { maxConcurrent: 2, leaseTime: 300 });
    expect(vi.getTimerCount()).toBe(0);
    const [first, second] = [open(), open()];
    const one = b.execute(first.work);
    const two = b.execute(second.work);
    await settled();
    expect(store.leases.size).toBe(2);
    await vi.advanceTimersByTimeAsync(99);
    expect(store.count('renew')).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(store.count('renew')).toBe(1);
    first.end();
    expect(await one).toBe('ran');
    await settled();
    await vi.advanceTimersByTimeAsync(600); // twice its leaseTime: the other call keeps its slot
    expect(store.count('renew')).toBe(7);
    const [id, expiry] = [...store.leases][0] as [string, number];
    expect(store.leases.size).toBe(1);
    expect(expiry).toBeGreaterThan(Date.now());
    expect(await settle(new RedisBulkhead(store.client(), { name: 'scripted', maxConcurrent: 1 }).execute(() => 'no'))).toMatchObject({ error: { reason: 'full' } });
    second.end();
    expect(await two).toBe('ran');
    await settled();
    expect(store.leases.has(id)).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(store.count('renew')).toBe(7);
    expect(vi.getTimerCount()).toBe(0);
    // A later call is renewed again: the timer is armed anew.
    const third = open();
    const three = b.execute(third.work);
    await settled();
    await vi.advanceTimersByTimeAsync(100);
    expect(store.count('renew')).toBe(8);
    third.end();
    expect(await three).toBe('ran');
    await settled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a renewal that fails says storeError and storeDown (the slot may be lost); the next one that succeeds says storeUp', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    const b = make(store, { leaseTime: 300, timeout: 50 });
    const events: string[] = [];
    for (const event of ['storeError', 'storeDown', 'storeUp'] as const) b.on(event, (payload) => events.push('error' in payload ? `${event}: ${payload.error.message}` : event));
    const g = open();
    const running = b.execute(g.work);
    await settled();
    store.failing = true;
    await vi.advanceTimersByTimeAsync(100);
    const failed = 'RedisBulkhead: Redis failed: connection lost';
    expect(events).toEqual([`storeError: ${failed}`, `storeDown: ${failed}`]);
    expect(b.storeUp).toBe(false);
    store.failing = false;
    await vi.advanceTimersByTimeAsync(100);
    expect(events.slice(2)).toEqual(['storeUp']);
    expect(b.storeUp).toBe(true);
    // Down again at the next renewal; the give-back that follows is what finds Redis back.
    store.failing = true;
    await vi.advanceTimersByTimeAsync(100);
    expect(events.slice(3)).toEqual([`storeError: ${failed}`, `storeDown: ${failed}`]);
    store.failing = false;
    g.end();
    expect(await running).toBe('ran');
    await settled();
    expect(events.slice(5)).toEqual(['storeUp']);
    expect(store.leases.size).toBe(0);
  });

  it('a give-back that fails says storeError and storeDown; the lease is left to expire after leaseTime', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    const b = make(store, { leaseTime: 3_000 });
    const events: string[] = [];
    for (const event of ['storeError', 'storeDown', 'storeUp'] as const) b.on(event, (payload) => events.push('error' in payload ? `${event}: ${payload.error.message}` : event));
    const g = open();
    const running = b.execute(g.work);
    await settled();
    store.failing = true;
    g.end();
    expect(await running).toBe('ran');
    await settled();
    const failed = 'RedisBulkhead: Redis failed: connection lost';
    expect(events).toEqual([`storeError: ${failed}`, `storeDown: ${failed}`]);
    store.failing = false;
    const otherReplica = new RedisBulkhead(store.client(), { name: 'scripted', maxConcurrent: 1 });
    expect(await settle(otherReplica.execute(() => 'no'))).toMatchObject({ error: { reason: 'full' } });
    await vi.advanceTimersByTimeAsync(3_000);
    expect(await otherReplica.execute(() => 'ran')).toBe('ran');
  });

  it('aborting the last waiting call clears the retry timer: it asks no more, and nothing is left behind', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 1, retryInterval: 50 });
    const reason = new Error('caller gave up');
    const controller = new AbortController();
    const waiting = pending(b.execute(() => 'no', { signal: controller.signal }));
    await settled();
    expect(b.queued).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    controller.abort(reason);
    await settled();
    expect(waiting.answer).toEqual({ error: reason });
    expect(b.queued).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(store.count('acquire')).toBe(1);
  });

  it('a call aborted while its retry asks: a slot granted then goes straight back, and no timer is left', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 1, retryInterval: 50, leaseTime: 60_000 });
    const reason = new Error('caller gave up');
    const controller = new AbortController();
    const waiting = pending(b.execute(() => 'no', { signal: controller.signal }));
    await settled();
    store.paused = true;
    store.leases.clear(); // the other replica's slot is free when the retry runs
    await vi.advanceTimersByTimeAsync(50);
    expect(store.count('acquire')).toBe(2);
    controller.abort(reason);
    await settled();
    expect(waiting.answer).toEqual({ error: reason });
    store.resume();
    await settled();
    expect(store.ops).toEqual(['acquire', 'acquire', 'release']);
    expect(store.leases.size).toBe(0);
    expect([b.active, b.queued]).toEqual([0, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an acquire that timed out but ran later gives its slot back at once; one that was refused sends nothing more', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    store.paused = true;
    const b = make(store, { timeout: 50, leaseTime: 60_000, probeInterval: 60_000 });
    const call = pending(b.execute(() => 'decided locally'));
    await vi.advanceTimersByTimeAsync(50);
    expect(call.answer).toEqual({ value: 'decided locally' });
    expect(b.storeUp).toBe(false);
    store.resume();
    await settled();
    expect(store.ops).toEqual(['acquire', 'release']);
    expect(store.leases.size).toBe(0);

    const full = new LeaseStore();
    other(full);
    full.paused = true;
    const c = make(full, { timeout: 50, probeInterval: 60_000 });
    const refused = pending(c.execute(() => 'decided locally'));
    await vi.advanceTimersByTimeAsync(50);
    expect(refused.answer).toEqual({ value: 'decided locally' });
    full.resume();
    await settled();
    expect(full.ops).toEqual(['acquire']);
  });

  it('when a waiting call\'s retry finds Redis down, every waiting call moves to the local cap and runs there', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 5, retryInterval: 30 });
    const events: string[] = [];
    b.on('storeDown', () => events.push('storeDown'));
    const w1 = pending(b.execute(() => 'one'));
    const w2 = pending(b.execute(() => 'two'));
    await settled();
    expect(b.queued).toBe(2);
    store.failing = true;
    await vi.advanceTimersByTimeAsync(30);
    expect(w1.answer).toEqual({ value: 'one' });
    expect(w2.answer).toEqual({ value: 'two' });
    expect(events).toEqual(['storeDown']);
    expect(store.count('acquire')).toBe(3);
    expect([b.active, b.queued]).toEqual([0, 0]);
    // The retry timer armed before the answer fires once more, finds no waiting call, and stops.
    await vi.advanceTimersByTimeAsync(30);
    expect(store.count('acquire')).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a call aborted while its first ask is on its way, which then fails: it takes no local slot', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    store.paused = true;
    const b = make(store, { timeout: 2_000 });
    const reason = new Error('caller gave up');
    const controller = new AbortController();
    const waiting = pending(b.execute(() => 'no', { signal: controller.signal }));
    await settled();
    controller.abort(reason);
    await settled();
    expect(waiting.answer).toEqual({ error: reason });
    store.failing = true;
    store.resume();
    await settled();
    expect(b.storeUp).toBe(false);
    expect([b.active, b.queued]).toEqual([0, 0]);
    expect(await b.execute(() => 'local')).toBe('local');
  });

  it('failClosed: while Redis is down a call is refused with RedisStoreError (whole message) and a "store-down" rejected event; after close() the local cap decides', async () => {
    const store = new LeaseStore();
    store.failing = true;
    const b = make(store, { failClosed: true });
    const seen: unknown[] = [];
    b.on('rejected', (event) => seen.push(event));
    const answer = await settle(b.execute(() => 'no'));
    const error = (answer as { error: RedisStoreError }).error;
    expect(error).toBeInstanceOf(RedisStoreError);
    expect(error.message).toBe('RedisBulkhead: Redis is down and failClosed is set');
    expect(seen).toEqual([{ error, reason: 'store-down' }]);
    await b.close();
    expect(await b.execute(() => 'local')).toBe('local');
  });

  it('while Redis is down the local cap keeps the options: its queue, queueTimeout (a rejected event each), and an abort leaves its queue', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    store.failing = true;
    const b = make(store, { maxQueue: 1, queueTimeout: 100 });
    const seen: unknown[] = [];
    b.on('rejected', (event) => seen.push(event));
    const g = open();
    const running = b.execute(g.work);
    await settled();
    expect(b.storeUp).toBe(false);
    const waiting = pending(b.execute(() => 'no'));
    await settled();
    expect([b.active, b.queued]).toEqual([1, 1]);
    const full = new BulkheadRejectedError('full', 1, 1);
    expect(await settle(b.execute(() => 'no'))).toEqual({ error: full });
    await vi.advanceTimersByTimeAsync(99);
    expect(waiting.answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    const late = new BulkheadRejectedError('queue-timeout', 1, 1);
    expect(waiting.answer).toEqual({ error: late });
    expect(seen).toEqual([
      { error: full, reason: 'full' },
      { error: late, reason: 'queue-timeout' },
    ]);
    const reason = new Error('caller gave up');
    const controller = new AbortController();
    const aborted = pending(b.execute(() => 'no', { signal: controller.signal }));
    await settled();
    expect(b.queued).toBe(1);
    controller.abort(reason);
    await settled();
    expect(aborted.answer).toEqual({ error: reason });
    expect(b.queued).toBe(0);
    const next = pending(b.execute(() => 'next'));
    await settled();
    expect(b.queued).toBe(1); // the aborted call's place is free
    g.end();
    expect(await running).toBe('ran');
    await settled();
    expect(next.answer).toEqual({ value: 'next' });
    expect(seen).toHaveLength(2);
  });

  it('close() while a waiting call\'s retry is on its way and the local cap is full: the call runs once, and the local cap is whole again after', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    const b = make(store, { maxQueue: 5, retryInterval: 30, probeInterval: 0 });
    store.failing = true;
    const local = open();
    const running = b.execute(local.work); // Redis down: it holds the local cap's one slot
    await settled();
    expect([b.storeUp, b.active]).toEqual([false, 1]);
    store.failing = false;
    other(store);
    let runs = 0;
    const waiting = pending(b.execute(() => ++runs)); // Redis is back, and full: the call waits for a slot there
    await settled();
    expect([b.storeUp, b.queued]).toEqual([true, 1]);
    store.paused = true;
    await vi.advanceTimersByTimeAsync(30); // its retry is on its way
    const closed = pending(b.close()); // it moves to the local cap, full: it waits there
    await settled();
    store.leases.clear();
    store.resume(); // the retry's answer: a slot in Redis
    await settled();
    local.end();
    expect(await running).toBe('ran');
    await settled();
    expect(waiting.answer).toEqual({ value: 1 });
    expect(runs).toBe(1);
    expect(closed.answer).toEqual({ value: undefined });
    expect(store.leases.size).toBe(0);
    expect([b.active, b.queued]).toEqual([0, 0]);
    expect(await b.execute(() => 'after close')).toBe('after close');
  });

  it('while Redis is down, calls do not wait on it: one call per probeInterval asks, the others are decided by the local cap at once', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    store.paused = true; // Redis hangs
    const b = make(store, { maxConcurrent: 5, timeout: 50, probeInterval: 1_000 });
    const first = pending(b.execute(() => 'first'));
    await vi.advanceTimersByTimeAsync(50);
    expect(first.answer).toEqual({ value: 'first' });
    expect(b.storeUp).toBe(false);
    const next = [pending(b.execute(() => 'second')), pending(b.execute(() => 'third'))];
    await settled();
    expect(next.map((call) => call.answer)).toEqual([{ value: 'second' }, { value: 'third' }]);
    expect(store.count('acquire')).toBe(1);
    await vi.advanceTimersByTimeAsync(999); // one probeInterval after Redis was found down (at 50)
    expect(await b.execute(() => 'not yet')).toBe('not yet');
    expect(store.count('acquire')).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const probe = pending(b.execute(() => 'probe'));
    const meanwhile = pending(b.execute(() => 'meanwhile'));
    await settled();
    expect(store.count('acquire')).toBe(2); // the probe asks; the call beside it does not
    expect([probe.answer, meanwhile.answer]).toEqual([undefined, { value: 'meanwhile' }]);
    await vi.advanceTimersByTimeAsync(50);
    expect(probe.answer).toEqual({ value: 'probe' });
  });

  it('however many calls wait, one retry timer and one ask at a time; aborting one waiting call leaves the others retried', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 5, retryInterval: 30 });
    const controller = new AbortController();
    const w1 = pending(b.execute(() => 'one', { signal: controller.signal }));
    const w2 = pending(b.execute(() => 'two'));
    await settled();
    expect(b.queued).toBe(2);
    expect(vi.getTimerCount()).toBe(1);
    store.paused = true;
    await vi.advanceTimersByTimeAsync(30);
    expect(store.count('acquire')).toBe(3); // the first waiting call asks
    await vi.advanceTimersByTimeAsync(60);
    expect(store.count('acquire')).toBe(3); // its answer has not come: nobody asks beside it
    // A new call's own ask, answered first: the retry still on its way keeps the others from asking.
    const w3 = pending(b.execute(() => 'three'));
    await settled();
    store.answer(1);
    await settled();
    expect(b.queued).toBe(3);
    await vi.advanceTimersByTimeAsync(30);
    expect(store.count('acquire')).toBe(4);
    store.resume();
    await settled();
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await settled();
    expect(w1.answer).toEqual({ error: reason });
    expect(b.queued).toBe(2);
    store.leases.clear();
    await vi.advanceTimersByTimeAsync(30); // the others are still retried
    expect(w2.answer).toEqual({ value: 'two' });
    expect(w3.answer).toEqual({ value: 'three' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a first ask that fails while a retry is on its way: the retry still keeps the others from asking', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxConcurrent: 2, maxQueue: 5, retryInterval: 30, probeInterval: 60_000 });
    other(store, 'other-replica:2');
    const w1 = pending(b.execute(() => 'one'));
    await settled();
    store.paused = true;
    await vi.advanceTimersByTimeAsync(30);
    expect(store.count('acquire')).toBe(2);
    const w2 = pending(b.execute(() => 'two'));
    await settled();
    store.answer(1, true); // its ask fails: Redis is down, it runs on the local cap
    await settled();
    expect(w2.answer).toEqual({ value: 'two' });
    await vi.advanceTimersByTimeAsync(30);
    expect(store.count('acquire')).toBe(3); // nobody asked beside the retry on its way
    store.leases.clear();
    store.resume();
    await settled();
    expect(w1.answer).toEqual({ value: 'one' });
  });

  it('after a retry found Redis down, calls that wait again later are retried again', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 5, retryInterval: 30, probeInterval: 0 });
    const w1 = pending(b.execute(() => 'one'));
    await settled();
    store.failing = true;
    await vi.advanceTimersByTimeAsync(30);
    expect(w1.answer).toEqual({ value: 'one' }); // moved to the local cap
    store.failing = false;
    const w2 = pending(b.execute(() => 'two')); // the probe: Redis answers, full
    await settled();
    expect([b.storeUp, b.queued]).toEqual([true, 1]);
    const asked = store.count('acquire');
    store.leases.clear();
    await vi.advanceTimersByTimeAsync(30);
    expect(store.count('acquire')).toBe(asked + 1);
    expect(w2.answer).toEqual({ value: 'two' });
  });

  it('a call refused at its deadline while its retry is on its way: a slot granted then goes straight back', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 1, queueTimeout: 60, retryInterval: 30, leaseTime: 60_000 });
    const waiting = pending(b.execute(() => 'no'));
    await settled();
    store.paused = true;
    await vi.advanceTimersByTimeAsync(60);
    expect(waiting.answer).toEqual({ error: new BulkheadRejectedError('queue-timeout', 1, 1) });
    store.leases.clear();
    store.resume();
    await settled();
    expect(store.ops).toEqual(['acquire', 'acquire', 'release']);
    expect(store.leases.size).toBe(0);
    expect([b.active, b.queued]).toEqual([0, 0]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(store.count('renew')).toBe(0);
  });

  it('a call aborted while its first ask is on its way, which Redis then refuses: nothing more is sent', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    store.paused = true;
    const b = make(store, { maxQueue: 1 });
    const controller = new AbortController();
    const waiting = pending(b.execute(() => 'no', { signal: controller.signal }));
    await settled();
    controller.abort(new Error('caller gave up'));
    store.resume();
    await settled();
    expect(waiting.answer).toEqual({ error: new Error('caller gave up') });
    expect(store.ops).toEqual(['acquire']);
    expect([b.active, b.queued]).toEqual([0, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close() while a waiting call\'s retry is on its way and the local cap is free: the call runs there once, and the slot Redis grants after goes back', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 5, retryInterval: 30, leaseTime: 60_000 });
    let runs = 0;
    const waiting = pending(b.execute(() => ++runs));
    await settled();
    store.paused = true;
    await vi.advanceTimersByTimeAsync(30);
    const closed = pending(b.close());
    await settled();
    expect(waiting.answer).toEqual({ value: 1 }); // the local cap, free, let it run at once
    store.leases.clear();
    store.resume();
    await settled();
    expect(closed.answer).toEqual({ value: undefined });
    expect(runs).toBe(1);
    expect(store.ops).toEqual(['acquire', 'acquire', 'release']);
    expect(store.leases.size).toBe(0);
    expect([b.active, b.queued]).toEqual([0, 0]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(store.count('renew')).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close() while a waiting call\'s retry is on its way and the local queue is full: the call is refused "full", and the slot Redis grants after goes back', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    const b = make(store, { maxQueue: 1, retryInterval: 30, probeInterval: 0, leaseTime: 60_000 });
    store.failing = true;
    const local = open();
    const running = b.execute(local.work); // Redis down: the local cap's one slot
    await settled();
    const queuedLocally = pending(b.execute(() => 'queued locally')); // and its one queue place
    await settled();
    expect([b.storeUp, b.active, b.queued]).toEqual([false, 1, 1]);
    store.failing = false;
    other(store);
    const waiting = pending(b.execute(() => 'no')); // Redis is back, and full: the call waits there
    await settled();
    expect([b.storeUp, b.queued]).toEqual([true, 2]);
    store.paused = true;
    await vi.advanceTimersByTimeAsync(30);
    const closed = pending(b.close());
    await settled();
    expect(waiting.answer).toEqual({ error: new BulkheadRejectedError('full', 1, 1) });
    store.leases.clear();
    store.resume();
    await settled();
    expect(store.leases.size).toBe(0);
    local.end();
    expect(await running).toBe('ran');
    await settled();
    expect(queuedLocally.answer).toEqual({ value: 'queued locally' });
    expect(closed.answer).toEqual({ value: undefined });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(store.count('renew')).toBe(0);
    expect([b.active, b.queued]).toEqual([0, 0]);
  });

  it('a queued call is refused at its queueTimeout even when retryInterval is longer, and the next waiting call at its own', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 2, queueTimeout: 100, retryInterval: 1_000 });
    const w1 = pending(b.execute(() => 'no'));
    await vi.advanceTimersByTimeAsync(40);
    const w2 = pending(b.execute(() => 'no'));
    await vi.advanceTimersByTimeAsync(59);
    expect([w1.answer, w2.answer]).toEqual([undefined, undefined]);
    await vi.advanceTimersByTimeAsync(1);
    const late = { error: new BulkheadRejectedError('queue-timeout', 1, 2) };
    expect([w1.answer, w2.answer]).toEqual([late, undefined]);
    await vi.advanceTimersByTimeAsync(39);
    expect(w2.answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(w2.answer).toEqual(late);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close() while a call\'s first ask is on its way, which Redis then refuses: the local cap decides it, and nothing is left waiting', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    store.paused = true;
    const b = make(store, { maxQueue: 5, retryInterval: 30 });
    const call = pending(b.execute(() => 'ran locally'));
    await settled();
    const closed = pending(b.close());
    store.resume();
    await settled();
    expect(call.answer).toEqual({ value: 'ran locally' });
    expect(closed.answer).toEqual({ value: undefined });
    expect([b.active, b.queued]).toEqual([0, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a waiting call aborted while its retry asks, which Redis refuses: the next waiting call asks at once', async () => {
    vi.useFakeTimers(FAKE);
    const store = new LeaseStore();
    other(store);
    const b = make(store, { maxQueue: 5, retryInterval: 30 });
    const controller = new AbortController();
    const w1 = pending(b.execute(() => 'one', { signal: controller.signal }));
    const w2 = pending(b.execute(() => 'two'));
    await settled();
    store.paused = true;
    await vi.advanceTimersByTimeAsync(30);
    expect(store.count('acquire')).toBe(3);
    controller.abort(new Error('caller gave up'));
    store.resume(); // full
    await settled();
    expect(w1.answer).toEqual({ error: new Error('caller gave up') });
    expect(store.count('acquire')).toBe(4); // without waiting for the next retry
    store.leases.clear();
    await vi.advanceTimersByTimeAsync(30);
    expect(w2.answer).toEqual({ value: 'two' });
    expect(vi.getTimerCount()).toBe(0);
  });
});
