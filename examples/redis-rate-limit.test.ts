import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '../test/redis/server.js';
import { callPartner, partnerStack } from './redis-rate-limit.js';

let server: RedisServer;
const clients: IORedis[] = [];
beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await server?.close();
});

describe('examples/redis-rate-limit', () => {
  it('three replicas share one budget of 50: the 51st call at once is answered 429 with Retry-After', async () => {
    const replicas = [0, 1, 2].map(() => {
      const client = new IORedis({ port: server.port, host: '127.0.0.1' });
      clients.push(client);
      return partnerStack(client).policy;
    });
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => callPartner(replicas[i % 3]!, async () => 'ok')));
    const ok = answers.filter((answer) => answer.status === 200).length;
    // 50 at once, and a few more reserved within maxWait (200 ms at 50/s: up to 10).
    expect(ok).toBeGreaterThanOrEqual(50);
    expect(ok).toBeLessThanOrEqual(60);
    for (const answer of answers.filter((a) => a.status === 429)) expect(answer.retryAfter).toBe(1);
  });
});
