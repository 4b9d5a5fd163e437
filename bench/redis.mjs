// bulwark/redis's shared rate limiter against rate-limiter-flexible's RateLimiterRedis and
// bottleneck's Redis clustering, on one redis-server started here, in one run: decisions per
// second (32 callers), p50/p99 latency of one decision (one caller), round trips per decision
// (the server's total_commands_processed), and accuracy under a limit of 500/s hammered for 2 s.
// Run after `npm run build` (or `npx tsup`): node bench/redis.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { RedisRateLimiter } from '../dist/redis.js';

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const dir = mkdtempSync(join(tmpdir(), 'bulwark-bench-redis-'));
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
await new Promise((resolve, reject) => {
  server.once('error', reject);
  setTimeout(resolve, 300);
});
const admin = new Redis({ port, host: '127.0.0.1' });
const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await admin.info('stats'))[1]);

let unique = 0;
const contenders = {
  'bulwark RedisRateLimiter': (rate) => {
    const client = new Redis({ port, host: '127.0.0.1' });
    const limit = new RedisRateLimiter(client, { name: `bench-${unique++}`, rate, interval: 1_000, timeout: 1_000 });
    return { decide: () => limit.execute(() => undefined).then(() => true, () => false), close: () => client.disconnect() };
  },
  'rate-limiter-flexible RateLimiterRedis': (rate) => {
    const client = new Redis({ port, host: '127.0.0.1' });
    const limit = new RateLimiterRedis({ storeClient: client, points: rate, duration: 1, keyPrefix: `rlf-${unique++}` });
    return { decide: () => limit.consume('k').then(() => true, () => false), close: () => client.disconnect() };
  },
  'bottleneck (datastore: ioredis)': (rate) => {
    const limit = new Bottleneck({
      id: `bn-${unique++}`,
      datastore: 'ioredis',
      clientOptions: { port, host: '127.0.0.1' },
      clearDatastore: true,
      reservoir: rate,
      reservoirRefreshAmount: rate,
      reservoirRefreshInterval: 1_000,
      highWater: 0,
      strategy: Bottleneck.strategy.OVERFLOW,
    });
    limit.on('error', () => {});
    return { decide: () => limit.schedule(() => Promise.resolve()).then(() => true, () => false), close: () => limit.disconnect() };
  },
};

const HUGE = 1_000_000_000;
const rows = [];
for (const [name, make] of Object.entries(contenders)) {
  // Latency: one caller, a limit never reached.
  let c = make(HUGE);
  for (let i = 0; i < 200; i++) await c.decide();
  const samples = [];
  const before = await commands();
  for (let i = 0; i < 2_000; i++) {
    const t = performance.now();
    await c.decide();
    samples.push(performance.now() - t);
  }
  const roundTrips = ((await commands()) - before - 1) / 2_000;
  samples.sort((a, b) => a - b);
  // Throughput: 32 callers for 1 s.
  let decisions = 0;
  const until = performance.now() + 1_000;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() < until) {
      await c.decide();
      decisions++;
    }
  }));
  await c.close();
  // Accuracy: 500/s, 32 callers for 2 s.
  const R = 500;
  c = make(R);
  await new Promise((resolve) => setTimeout(resolve, 200));
  let granted = 0;
  const start = performance.now();
  const end = start + 2_000;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() < end) {
      if (await c.decide()) granted++;
      else await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }));
  const seconds = (performance.now() - start) / 1_000;
  await c.close();
  rows.push({ name, perSecond: decisions, p50: samples[1_000], p99: samples[1_980], roundTrips, granted, seconds });
}

console.log(`redis-server on 127.0.0.1:${port}; Node ${process.version}`);
console.log('contender                                | decisions/s (32 callers) | p50 ms | p99 ms | server commands/decision (inner calls of a script counted) | granted at 500/s over ~2 s');
for (const r of rows) {
  console.log(
    `${r.name.padEnd(40)} | ${String(r.perSecond).padStart(24)} | ${r.p50.toFixed(3).padStart(6)} | ${r.p99.toFixed(3).padStart(6)} | ${r.roundTrips.toFixed(2).padStart(57)} | ${r.granted} (${r.seconds.toFixed(2)} s; token bucket allows ${Math.round(500 * r.seconds + 500)}, fixed windows up to ${500 * Math.ceil(r.seconds + 1)})`,
  );
}
const ours = rows[0];
for (const r of rows.slice(1)) console.log(`bulwark / ${r.name}: ${(ours.perSecond / r.perSecond).toFixed(2)}× the decisions per second, ${(ours.p50 / r.p50).toFixed(2)}× the p50`);
admin.disconnect();
server.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });
