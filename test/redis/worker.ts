/**
 * One replica of the multi-process proof: calls a shared RedisRateLimiter as fast as it can for
 * `duration` ms and reports the server's time of every permit it got. With a lease (argv
 * leaseSize > 1) a spare permit's call starts later than the round trip that took it: each call's
 * start is then reported instead, on this host's clock (the processes share it), in µs.
 * argv: port, name, rate, duration[, leaseSize].
 */
import { Redis as IORedis } from 'ioredis';
import { RedisRateLimiter } from '../../src/redis/index.js';

const [port, name, rate, duration, lease = '1'] = process.argv.slice(2);
const leaseSize = Number(lease);
const client = new IORedis({ port: Number(port), host: '127.0.0.1' });
const limiter = new RedisRateLimiter(client, { name: name as string, rate: Number(rate), interval: 1_000, timeout: 2_000, leaseSize });
const granted: number[] = [];
const work = leaseSize > 1 ? () => void granted.push(Date.now() * 1_000) : () => undefined;
// The script's answer carries the server's time of the permit; read it through a wrapped client.
const original = client.evalsha.bind(client);
let trips = 0; // round trips by EVALSHA (one EVAL after a NOSCRIPT is not counted)
(client as unknown as { evalsha: typeof client.evalsha }).evalsha = (async (...args: Parameters<typeof client.evalsha>) => {
  trips++;
  const answer = (await original(...args)) as [number, number, number];
  if (leaseSize === 1 && Number(answer[0]) === 1) granted.push(Number(answer[2]));
  return answer;
}) as typeof client.evalsha;

process.once('message', async () => {
  const until = Date.now() + Number(duration);
  let refused = 0;
  let failed = 0;
  const lanes = Array.from({ length: 4 }, async () => {
    while (Date.now() < until) {
      try {
        await limiter.execute(work);
      } catch (error) {
        if ((error as Error).name === 'RateLimitedError') {
          refused++;
          await new Promise((resolve) => setTimeout(resolve, 2));
        } else failed++;
      }
    }
  });
  await Promise.all(lanes);
  process.send?.({ granted, refused, failed, trips, storeUp: limiter.storeUp }, () => {
    client.disconnect();
    process.exit(0);
  });
});
process.send?.('ready');
