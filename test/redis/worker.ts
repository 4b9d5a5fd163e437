/**
 * One replica of the multi-process proof: calls a shared RedisRateLimiter as fast as it can for
 * `duration` ms and reports the server's time of every permit it got.
 * argv: port, name, rate, duration.
 */
import { Redis as IORedis } from 'ioredis';
import { RedisRateLimiter } from '../../src/redis/index.js';

const [port, name, rate, duration] = process.argv.slice(2);
const client = new IORedis({ port: Number(port), host: '127.0.0.1' });
const limiter = new RedisRateLimiter(client, { name: name as string, rate: Number(rate), interval: 1_000, timeout: 2_000 });
const granted: number[] = [];
// The script's answer carries the server's time of the permit; read it through a wrapped client.
const original = client.evalsha.bind(client);
(client as unknown as { evalsha: typeof client.evalsha }).evalsha = (async (...args: Parameters<typeof client.evalsha>) => {
  const answer = (await original(...args)) as [number, number, number];
  if (Number(answer[0]) === 1) granted.push(Number(answer[2]));
  return answer;
}) as typeof client.evalsha;

process.once('message', async () => {
  const until = Date.now() + Number(duration);
  let refused = 0;
  let failed = 0;
  const lanes = Array.from({ length: 4 }, async () => {
    while (Date.now() < until) {
      try {
        await limiter.execute(() => undefined);
      } catch (error) {
        if ((error as Error).name === 'RateLimitedError') {
          refused++;
          await new Promise((resolve) => setTimeout(resolve, 2));
        } else failed++;
      }
    }
  });
  await Promise.all(lanes);
  process.send?.({ granted, refused, failed, storeUp: limiter.storeUp }, () => {
    client.disconnect();
    process.exit(0);
  });
});
process.send?.('ready');
