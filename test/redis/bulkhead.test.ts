/**
 * RedisBulkhead against a real redis-server, with ioredis and with node-redis: a cap shared by
 * two clients, refusals, queueing, aborts, and the store's failure modes.
 */
import { describe, expect, it } from 'vitest';
import { BulkheadRejectedError, MetricsRegistry, isRefusal } from '../../src/index.js';
import { renderPrometheus } from '../../src/prometheus/index.js';
import { RedisBulkhead, RedisStoreError, type RedisBulkheadOptions } from '../../src/redis/index.js';
import { settle, useRedisServer, type Family, type TestClient } from './clients.js';
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
    const a = make(c, { name, maxConcurrent: 1, leaseTime: 60 });
    const b = make(await client(family), { name, maxConcurrent: 1, leaseTime: 60 });
    const g = gate();
    const running = a.execute(g.work);
    await eventually(() => a.active === 1);
    await sleep(200); // more than three lease times
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
