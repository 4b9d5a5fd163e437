/**
 * One replica of the multi-process proof: calls a shared RedisRateLimiter as fast as it can for
 * `duration` ms and reports the server's time of every permit it got. With a lease (argv
 * leaseSize > 1) a spare permit's call starts later than the round trip that took it: each call's
 * start is then reported instead, on this host's clock (the processes share it), in µs.
 * argv: port, name, rate, duration, leaseSize, family (ioredis or node-redis).
 */
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { RedisRateLimiter } from '../../src/redis/index.js';

const [port, name, rate, duration, lease = '1', family = 'ioredis'] = process.argv.slice(2);
const leaseSize = Number(lease);
const granted: number[] = [];
let trips = 0; // round trips by EVALSHA (one EVAL after a NOSCRIPT is not counted)
/** The script's answer carries the server's time of the permit: read it on its way back. */
const seen = (answer: unknown): unknown => {
  trips++;
  const [ok, , at] = answer as [number, number, number];
  if (leaseSize === 1 && Number(ok) === 1) granted.push(Number(at));
  return answer;
};
let client: unknown;
let disconnect: () => void;
if (family === 'node-redis') {
  const nodeRedis = createClient({ url: `redis://127.0.0.1:${port}` });
  await nodeRedis.connect();
  const evalSha = nodeRedis.evalSha.bind(nodeRedis);
  (nodeRedis as unknown as { evalSha: unknown }).evalSha = async (...args: Parameters<typeof evalSha>) => seen(await evalSha(...args));
  client = nodeRedis;
  disconnect = () => void nodeRedis.disconnect();
} else {
  const ioredis = new IORedis({ port: Number(port), host: '127.0.0.1' });
  const evalsha = ioredis.evalsha.bind(ioredis);
  (ioredis as unknown as { evalsha: unknown }).evalsha = async (...args: Parameters<typeof evalsha>) => seen(await evalsha(...args));
  client = ioredis;
  disconnect = () => ioredis.disconnect();
}
const limiter = new RedisRateLimiter(client as never, { name: name as string, rate: Number(rate), interval: 1_000, timeout: 2_000, leaseSize });
const work = leaseSize > 1 ? () => void granted.push(Date.now() * 1_000) : () => undefined;

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
    disconnect();
    process.exit(0);
  });
});
process.send?.('ready');
