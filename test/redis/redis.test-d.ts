/**
 * The types of bulwark/redis: the connection a breaker subscribes on is any supported client's
 * own connection type, checked by the compiler (a client release that changes its pub/sub
 * signatures fails here, not in a user's build).
 */
import { Valkey } from 'iovalkey';
import { Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import type { RedisSubscriberLike } from 'bulwark/redis';
import { describe, expectTypeOf, it } from 'vitest';

describe('RedisSubscriberLike', () => {
  it("accepts the pub/sub connection of every supported client, and nothing without subscribe, unsubscribe and on", () => {
    expectTypeOf<ReturnType<Redis['duplicate']>>().toMatchTypeOf<RedisSubscriberLike>();
    expectTypeOf<ReturnType<Valkey['duplicate']>>().toMatchTypeOf<RedisSubscriberLike>();
    expectTypeOf<ReturnType<ReturnType<typeof createClient>['duplicate']>>().toMatchTypeOf<RedisSubscriberLike>();
    expectTypeOf<ReturnType<typeof createCluster>>().toMatchTypeOf<RedisSubscriberLike>();
    expectTypeOf<{ subscribe(channel: string): Promise<unknown> }>().not.toMatchTypeOf<RedisSubscriberLike>();
  });
});
