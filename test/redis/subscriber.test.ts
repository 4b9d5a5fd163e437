/**
 * Pub/sub for the shared breaker, with scripted subscriber connections of both families (no
 * server): one SUBSCRIBE per channel however many breakers listen, each push delivered to the
 * breakers of its channel only, a dropped connection told once to each (and its return), the
 * channel unsubscribed when its last breaker leaves, a failed SUBSCRIBE leaving nothing behind,
 * and a breaker that throws never keeping a push from the others. Then the same seen through
 * RedisCircuitBreaker: a pushed change announced and acted on without a round trip.
 */
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from '../../src/index.js';
import { RedisCircuitBreaker } from '../../src/redis/index.js';
import { listen, type ChannelListener } from '../../src/redis/subscriber.js';
import { settle } from './clients.js';

type Style = 'ioredis' | 'node-redis';

/** A subscriber connection: records SUBSCRIBE/UNSUBSCRIBE, confirms them when told, emits connection events. */
class FakeSubscriber extends EventEmitter {
  readonly log: string[] = [];
  /** node-redis: the listener given with each SUBSCRIBE, by channel. */
  readonly given = new Map<string, (message: string) => void>();
  private readonly pending: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  auto = true;

  constructor(readonly style: Style) {
    super();
    // ioredis and iovalkey are told apart by their evalsha.
    if (style === 'ioredis') (this as unknown as { evalsha: () => void }).evalsha = () => {};
  }

  subscribe(channel: string, listener?: (message: string) => void): Promise<void> {
    this.log.push(`subscribe ${channel}${listener === undefined ? '' : ' +listener'}`);
    if (listener !== undefined) this.given.set(channel, listener);
    if (this.auto) return Promise.resolve();
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  unsubscribe(channel: string, ...rest: unknown[]): Promise<void> {
    // ioredis takes channels only: a second argument would be a channel too.
    const listener = rest[0];
    const same = listener !== undefined && listener === this.given.get(channel);
    this.log.push(`unsubscribe ${channel}${rest.length === 0 ? '' : same ? ' same-listener' : ' other-listener'}`);
    return Promise.resolve();
  }

  confirm(): void {
    for (const p of this.pending.splice(0)) p.resolve();
  }

  fail(error: unknown): void {
    for (const p of this.pending.splice(0)) p.reject(error);
  }

  /** A message on `channel`, the way the family delivers it. */
  push(channel: string, message: string): void {
    if (this.style === 'ioredis') this.emit('message', channel, message);
    else this.given.get(channel)?.(message);
  }
}

function recorder(name: string, log: string[]): ChannelListener {
  return {
    message: (text) => log.push(`${name} message ${text}`),
    lost: () => log.push(`${name} lost`),
    resumed: () => log.push(`${name} resumed`),
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe.each<Style>(['ioredis', 'node-redis'])('listen() on a %s subscriber', (style) => {
  it('two breakers on one channel share one SUBSCRIBE and both hear each push; the channel is unsubscribed when the last leaves', async () => {
    const sub = new FakeSubscriber(style);
    const heard: string[] = [];
    const leaveA = await listen('Owner', sub as never, 'chan', recorder('a', heard));
    const leaveB = await listen('Owner', sub as never, 'chan', recorder('b', heard));
    expect(sub.log).toEqual([style === 'ioredis' ? 'subscribe chan' : 'subscribe chan +listener']);
    sub.push('chan', '7 open 100 failure-threshold 1 50');
    expect(heard).toEqual(['a message 7 open 100 failure-threshold 1 50', 'b message 7 open 100 failure-threshold 1 50']);
    await leaveA();
    expect(sub.log).toHaveLength(1);
    sub.push('chan', 'after');
    expect(heard.slice(2)).toEqual(['b message after']);
    await leaveA(); // twice: nothing more
    expect(sub.log).toHaveLength(1);
    await leaveB();
    expect(sub.log).toEqual([sub.log[0], style === 'ioredis' ? 'unsubscribe chan' : 'unsubscribe chan same-listener']);
    sub.push('chan', 'gone');
    expect(heard).toHaveLength(3);
    // Listening again subscribes again.
    await listen('Owner', sub as never, 'chan', recorder('c', heard));
    expect(sub.log).toHaveLength(3);
    sub.push('chan', 'back');
    expect(heard.slice(3)).toEqual(['c message back']);
  });

  it('a push goes to the breakers of its channel only', async () => {
    const sub = new FakeSubscriber(style);
    const heard: string[] = [];
    await listen('Owner', sub as never, 'one', recorder('one', heard));
    await listen('Owner', sub as never, 'two', recorder('two', heard));
    sub.push('two', 'x');
    sub.push('three', 'y');
    expect(heard).toEqual(['two message x']);
    expect(sub.log).toHaveLength(2);
  });

  it('a second breaker on a channel whose SUBSCRIBE is not yet confirmed waits for the same confirmation', async () => {
    const sub = new FakeSubscriber(style);
    sub.auto = false;
    const order: string[] = [];
    const a = listen('Owner', sub as never, 'chan', recorder('a', order)).then(() => order.push('a listening'));
    const b = listen('Owner', sub as never, 'chan', recorder('b', order)).then(() => order.push('b listening'));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(order).toEqual([]);
    expect(sub.log).toHaveLength(1);
    sub.confirm();
    await Promise.all([a, b]);
    expect(order).toEqual(['a listening', 'b listening']);
  });

  it('a failed SUBSCRIBE rejects every breaker waiting on it and leaves nothing behind: the next one subscribes again', async () => {
    const sub = new FakeSubscriber(style);
    sub.auto = false;
    const heard: string[] = [];
    const refused = new Error('NOPERM');
    const a = settle(listen('Owner', sub as never, 'chan', recorder('a', heard)));
    const b = settle(listen('Owner', sub as never, 'chan', recorder('b', heard)));
    sub.fail(refused);
    expect(await a).toEqual({ error: refused });
    expect(await b).toEqual({ error: refused });
    sub.push('chan', 'lost');
    expect(heard).toEqual([]);
    sub.auto = true;
    await listen('Owner', sub as never, 'chan', recorder('c', heard));
    expect(sub.log).toHaveLength(2);
    sub.push('chan', 'heard');
    expect(heard).toEqual(['c message heard']);
    // A connection drop reaches only the breaker still listening.
    sub.emit('close');
    expect(heard).toEqual(['c message heard', 'c lost']);
  });

  it('a failed SUBSCRIBE of the one breaker on a channel leaves nothing behind: the next breaker subscribes again', async () => {
    const sub = new FakeSubscriber(style);
    sub.auto = false;
    const heard: string[] = [];
    const first = settle(listen('Owner', sub as never, 'chan', recorder('a', heard)));
    sub.fail(new Error('NOPERM'));
    expect(await first).toMatchObject({ error: { message: 'NOPERM' } });
    sub.auto = true;
    const leave = await listen('Owner', sub as never, 'chan', recorder('b', heard));
    expect(sub.log).toHaveLength(2);
    sub.push('chan', 'x');
    expect(heard).toEqual(['b message x']);
    await leave();
    expect(sub.log.at(-1)).toBe(style === 'ioredis' ? 'unsubscribe chan' : 'unsubscribe chan same-listener');
  });

  it.each(['close', 'end', 'reconnecting', 'error'])('the connection drops (%s): every breaker is told once, and once more when it is ready again', async (event) => {
    const sub = new FakeSubscriber(style);
    const heard: string[] = [];
    await listen('Owner', sub as never, 'one', recorder('a', heard));
    await listen('Owner', sub as never, 'two', recorder('b', heard));
    sub.emit('ready'); // ready while up: nothing to tell
    expect(heard).toEqual([]);
    sub.emit(event, new Error('socket closed'));
    sub.emit('close');
    sub.emit('end');
    expect(heard).toEqual(['a lost', 'b lost']);
    sub.emit('ready');
    sub.emit('ready');
    expect(heard).toEqual(['a lost', 'b lost', 'a resumed', 'b resumed']);
    sub.emit('reconnecting');
    expect(heard.slice(4)).toEqual(['a lost', 'b lost']);
  });

  it('a breaker that throws on a push or a drop is reported; the others still hear it', async () => {
    const reports: unknown[][] = [];
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void reports.push(args));
    const original = (globalThis as { reportError?: unknown }).reportError;
    (globalThis as { reportError?: unknown }).reportError = undefined;
    try {
      const sub = new FakeSubscriber(style);
      const heard: string[] = [];
      const broken = new Error('listener broke');
      const thrower: ChannelListener = {
        message: () => {
          throw broken;
        },
        lost: () => {
          throw broken;
        },
        resumed: () => {
          throw broken;
        },
      };
      await listen('Owner', sub as never, 'chan', thrower);
      await listen('Owner', sub as never, 'chan', recorder('ok', heard));
      sub.push('chan', 'x');
      sub.emit('close');
      sub.emit('ready');
      expect(heard).toEqual(['ok message x', 'ok lost', 'ok resumed']);
      expect(reports).toEqual([
        ['bulwark: RedisCircuitBreaker failed to handle a pushed change', broken],
        ['bulwark: RedisCircuitBreaker failed to handle a pub/sub event', broken],
        ['bulwark: RedisCircuitBreaker failed to handle a pub/sub event', broken],
      ]);
    } finally {
      (globalThis as { reportError?: unknown }).reportError = original;
    }
  });

  it('listens once to each connection event however many channels and breakers share the connection', async () => {
    const sub = new FakeSubscriber(style);
    for (const channel of ['a', 'b', 'a']) await listen('Owner', sub as never, channel, recorder(channel, []));
    const counts = ['ready', 'close', 'end', 'reconnecting', 'error', 'message'].map((event) => sub.listenerCount(event));
    expect(counts).toEqual([1, 1, 1, 1, 1, style === 'ioredis' ? 1 : 0]);
  });

  it('refuses a subscriber that cannot subscribe, naming the owner', async () => {
    await expect(listen('Owner', { on() {} } as never, 'chan', recorder('a', []))).rejects.toThrow(
      new TypeError('Owner subscriber must be a Redis connection for pub/sub (client.duplicate() of an ioredis, iovalkey or node-redis client), got an object'),
    );
  });
});
