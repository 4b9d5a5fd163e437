import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisServer } from '../test/redis/server.js';
import { charge, paymentsStack } from './redis-breaker.js';

let server: RedisServer;
const clients: IORedis[] = [];
const connect = (): IORedis => {
  const client = new IORedis({ port: server.port, host: '127.0.0.1' });
  clients.push(client);
  return client;
};
beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await server?.close();
});

describe('examples/redis-breaker', () => {
  it('ten failures spread over three pods open the breaker for all three: each answers 503 with Retry-After', async () => {
    const pods = [0, 1, 2].map(() => {
      const redis = connect();
      return paymentsStack(redis, redis.duplicate());
    });
    for (const pod of pods) expect(await charge(pod.policy, async () => 'paid')).toEqual({ status: 200, body: 'paid' });
    // Ten failures in a row, spread over the pods: none of them alone reaches ten.
    for (let i = 0; i < 10; i++) expect((await charge(pods[i % 3]!.policy, async () => Promise.reject(new Error('provider down')))).status).toBe(502);
    for (const pod of pods) await vi.waitFor(() => expect(pod.breaker.state).toBe('open'));
    for (const pod of pods) expect(await charge(pod.policy, async () => 'paid')).toEqual({ status: 503, body: 'payments unavailable', retryAfter: 5 });
  });
});
