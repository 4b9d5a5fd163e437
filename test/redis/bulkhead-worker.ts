/**
 * One replica of the fleet-wide bulkhead's proofs. argv: port, name, maxConcurrent, mode, arg.
 * mode 'run': calls the shared bulkhead from 6 lanes for `arg` ms, each call's work framed by the
 * server's TIME (µs), and reports the intervals. mode 'hold': takes `arg` slots (leaseTime
 * 1 500 ms), says 'held' and holds them until it is killed.
 */
import { Redis as IORedis } from 'ioredis';
import { RedisBulkhead } from '../../src/redis/index.js';

const [port, name, max, mode, arg] = process.argv.slice(2);
const client = new IORedis({ port: Number(port), host: '127.0.0.1' });
const serverTime = async (): Promise<number> => {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1e6 + Number(micros);
};

process.once('message', async () => {
  if (mode === 'hold') {
    const bulkhead = new RedisBulkhead(client, { name: name as string, maxConcurrent: Number(max), leaseTime: 1_500, timeout: 2_000 });
    for (let i = 0; i < Number(arg); i++) void bulkhead.execute(() => new Promise(() => {}));
    while (bulkhead.active < Number(arg)) await new Promise((resolve) => setTimeout(resolve, 5));
    process.send?.('held');
    return;
  }
  const bulkhead = new RedisBulkhead(client, { name: name as string, maxConcurrent: Number(max), maxQueue: Infinity, timeout: 2_000, retryInterval: 5 });
  const intervals: [number, number][] = [];
  let failed = 0;
  const until = Date.now() + Number(arg);
  const lanes = Array.from({ length: 6 }, async () => {
    while (Date.now() < until) {
      try {
        await bulkhead.execute(async () => {
          const start = await serverTime();
          await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 8));
          intervals.push([start, await serverTime()]);
        });
      } catch {
        failed++;
      }
    }
  });
  await Promise.all(lanes);
  process.send?.({ intervals, failed, storeUp: bulkhead.storeUp }, () => {
    client.disconnect();
    process.exit(0);
  });
});
process.send?.('ready');
