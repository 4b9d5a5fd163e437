/**
 * One replica of the fleet-wide bulkhead's proofs. argv: port, family (`ioredis` or
 * `node-redis`), name, maxConcurrent, mode, arg.
 * mode 'run': calls the shared bulkhead from 6 lanes for `arg` ms, each call's work framed by the
 * server's TIME (µs), and reports the intervals. mode 'hold': takes `arg` slots (leaseTime
 * 1 500 ms), says 'held' and holds them until it is killed.
 */
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { RedisBulkhead } from '../../src/redis/index.js';

const [port, family, name, max, mode, arg] = process.argv.slice(2);

interface Connection {
  client: never;
  time(): Promise<[string, string]>;
  quit(): Promise<void>;
}

async function connect(): Promise<Connection> {
  if (family === 'node-redis') {
    const client = createClient({ url: `redis://127.0.0.1:${port}` });
    client.on('error', () => {});
    await client.connect();
    return {
      client: client as never,
      time: () => client.sendCommand(['TIME']) as Promise<[string, string]>,
      // QUIT, not disconnect(): the last call's lease, given back as it ended, must reach Redis, or
      // the others wait for it to expire (leaseTime).
      quit: async () => void (await client.quit().catch(() => {})),
    };
  }
  if (family !== 'ioredis') throw new Error(`bulkhead-worker: unknown client family ${family}`);
  const client = new IORedis({ port: Number(port), host: '127.0.0.1' });
  return { client: client as never, time: () => client.call('TIME') as Promise<[string, string]>, quit: async () => void (await client.quit().catch(() => {})) };
}

const connection = await connect();
const serverTime = async (): Promise<number> => {
  const [seconds, micros] = await connection.time();
  return Number(seconds) * 1e6 + Number(micros);
};

process.once('message', async () => {
  if (mode === 'hold') {
    const bulkhead = new RedisBulkhead(connection.client, { name: name as string, maxConcurrent: Number(max), leaseTime: 1_500, timeout: 2_000 });
    for (let i = 0; i < Number(arg); i++) void bulkhead.execute(() => new Promise(() => {}));
    while (bulkhead.active < Number(arg)) await new Promise((resolve) => setTimeout(resolve, 5));
    process.send?.('held');
    return;
  }
  const bulkhead = new RedisBulkhead(connection.client, { name: name as string, maxConcurrent: Number(max), maxQueue: Infinity, timeout: 2_000, retryInterval: 5 });
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
    void connection.quit().then(() => process.exit(0));
  });
});
process.send?.('ready');
