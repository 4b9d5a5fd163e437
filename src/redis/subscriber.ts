/**
 * Pub/sub for the shared breaker: one connection in subscriber mode (ioredis, iovalkey,
 * node-redis v4+, or a cluster client of either), shared by every breaker given it, each
 * channel subscribed once. It tells each breaker when pushes may have been missed (the
 * connection dropped) and when they flow again, so the breaker polls in between.
 */
import { reportUncaught } from '../shared/report.js';
import { show } from '../shared/show.js';

/**
 * A connection bulwark/redis may put in subscriber mode: `client.duplicate()` of the service's
 * client (ioredis and iovalkey connect it at once; node-redis needs `await sub.connect()`).
 * Used: `subscribe` and `unsubscribe` for each channel, and `on` for the connection's
 * `'ready'`, `'close'`, `'end'` and `'error'` (and, with ioredis and iovalkey, `'message'`).
 */
export type RedisSubscriberLike =
  | { subscribe(channel: string): Promise<unknown>; unsubscribe(channel: string): Promise<unknown>; on(event: string, listener: (...args: any[]) => void): unknown }
  | {
      subscribe(channel: string, listener: (...args: any[]) => void): Promise<unknown>;
      unsubscribe(channel: string, listener?: (...args: any[]) => void): Promise<unknown>;
      on(event: string, listener: (...args: any[]) => void): unknown;
    };

/** What a breaker hears from its channel. */
export interface ChannelListener {
  message(text: string): void;
  /** The connection dropped: pushes may be missed until `resumed`. */
  lost(): void;
  /** The connection is back and subscribed again. */
  resumed(): void;
}

interface Connection {
  readonly ioredisStyle: boolean;
  readonly channels: Map<string, Set<ChannelListener>>;
  /** node-redis delivers to the listener given at subscribe time: one per channel. */
  readonly channelListeners: Map<string, (message: string) => void>;
  /** Each channel's SUBSCRIBE, so a second breaker on it waits for the same confirmation. */
  readonly subscribing: Map<string, Promise<unknown>>;
  up: boolean;
}

const connections = new WeakMap<object, Connection>();

type Loose = Record<string, ((...args: unknown[]) => unknown) | undefined>;

function each(connection: Connection, visit: (listener: ChannelListener) => void): void {
  for (const listeners of connection.channels.values()) {
    for (const listener of listeners) {
      try {
        visit(listener);
      } catch (error) {
        reportUncaught('bulwark: RedisCircuitBreaker failed to handle a pub/sub event', error);
      }
    }
  }
}

/** The subscriber option, checked: a `TypeError` unless it has what pub/sub needs. */
export function checkSubscriber(owner: string, subscriber: unknown): RedisSubscriberLike {
  const sub = subscriber as Loose | null;
  if (typeof sub !== 'object' || sub === null || typeof sub['subscribe'] !== 'function' || typeof sub['unsubscribe'] !== 'function' || typeof sub['on'] !== 'function') {
    throw new TypeError(`${owner} subscriber must be a Redis connection for pub/sub (client.duplicate() of an ioredis, iovalkey or node-redis client), got ${show(subscriber)}`);
  }
  return subscriber as RedisSubscriberLike;
}

function connectionOf(owner: string, subscriber: unknown): Connection {
  const sub = checkSubscriber(owner, subscriber) as unknown as Loose;
  const known = connections.get(sub);
  if (known !== undefined) return known;
  const connection: Connection = { ioredisStyle: typeof sub['evalsha'] === 'function', channels: new Map(), channelListeners: new Map(), subscribing: new Map(), up: true };
  connections.set(sub, connection);
  const on = (sub['on'] as (...args: unknown[]) => unknown).bind(sub) as (event: string, listener: (...args: unknown[]) => void) => unknown;
  if (connection.ioredisStyle) {
    on('message', (channel: unknown, message: unknown) => {
      const listeners = connection.channels.get(String(channel));
      if (listeners !== undefined) for (const listener of listeners) deliver(listener, String(message));
    });
  }
  const lost = (): void => {
    if (!connection.up) return;
    connection.up = false;
    each(connection, (listener) => listener.lost());
  };
  // Both families emit 'ready' once connected and subscribed again (they resubscribe on their own).
  on('ready', () => {
    if (connection.up) return;
    connection.up = true;
    each(connection, (listener) => listener.resumed());
  });
  on('close', lost);
  on('end', lost);
  on('reconnecting', lost);
  // A listener for 'error' keeps the client's own error from becoming an uncaught exception.
  on('error', lost);
  return connection;
}

function deliver(listener: ChannelListener, message: string): void {
  try {
    listener.message(message);
  } catch (error) {
    reportUncaught('bulwark: RedisCircuitBreaker failed to handle a pushed change', error);
  }
}

/**
 * Subscribes `listener` to `channel` on `subscriber`. Resolves once Redis confirmed the
 * subscription (from then on, changes are pushed), with the function that unsubscribes.
 */
export async function listen(owner: string, subscriber: RedisSubscriberLike, channel: string, listener: ChannelListener): Promise<() => Promise<void>> {
  const connection = connectionOf(owner, subscriber);
  const sub = subscriber as unknown as Loose;
  let listeners = connection.channels.get(channel);
  if (listeners === undefined) {
    listeners = new Set();
    connection.channels.set(channel, listeners);
    const all = listeners;
    let subscribed: Promise<unknown>;
    if (connection.ioredisStyle) {
      subscribed = (sub['subscribe'] as (channel: string) => Promise<unknown>).call(sub, channel);
    } else {
      const onMessage = (message: string): void => {
        for (const each of all) deliver(each, String(message));
      };
      connection.channelListeners.set(channel, onMessage);
      subscribed = (sub['subscribe'] as (channel: string, listener: (message: string) => void) => Promise<unknown>).call(sub, channel, onMessage);
    }
    connection.subscribing.set(channel, subscribed);
  }
  listeners.add(listener);
  try {
    await connection.subscribing.get(channel);
  } catch (error) {
    listeners.delete(listener);
    // Stryker disable next-line ConditionalExpression,LogicalOperator: a channel's set leaves the map only once empty, so it is still there until its last listener's failure.
    if (listeners.size === 0 && connection.channels.get(channel) === listeners) {
      connection.channels.delete(channel);
      connection.channelListeners.delete(channel);
      connection.subscribing.delete(channel);
    }
    throw error;
  }
  return async () => {
    const current = connection.channels.get(channel);
    if (current === undefined || !current.delete(listener) || current.size > 0) return;
    connection.channels.delete(channel);
    connection.subscribing.delete(channel);
    const onMessage = connection.channelListeners.get(channel);
    connection.channelListeners.delete(channel);
    if (connection.ioredisStyle) await (sub['unsubscribe'] as (channel: string) => Promise<unknown>).call(sub, channel);
    else await (sub['unsubscribe'] as (channel: string, listener: unknown) => Promise<unknown>).call(sub, channel, onMessage);
  };
}
