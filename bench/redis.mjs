// bulwark/redis's shared rate limiter against rate-limiter-flexible's RateLimiterRedis and
// bottleneck's Redis clustering, on one redis-server started here, in one run: decisions per
// second (32 callers), p50/p99 latency of one decision (one caller), round trips per decision
// (the server's total_commands_processed), and accuracy under a limit of 500/s hammered for 2 s.
//
// Then, on the same server: the permit lease of RedisRateLimiter (`leaseSize` 1, 5, 20, 100):
// script round trips per call (the server's own count, INFO commandstats) and decisions per
// second; its accuracy cost with 8 replicas sharing 200/s for 10 s, hammered and taking turns;
// and round trips per call of each shared policy (RedisBulkhead's acquire, release and renew
// told apart by their script). BENCH_SECONDS shortens the accuracy runs.
// Run after `npm run build` (or `npx tsup`): node bench/redis.mjs
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { RedisBulkhead, RedisRateLimiter } from '../dist/redis.js';

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

// Script round trips the server has run (EVALSHA and EVAL, a NOSCRIPT refusal included): every
// script of bulwark/redis is one command, one round trip. Nothing else runs scripts meanwhile.
const scriptCalls = async () => {
  let total = 0;
  for (const m of (await admin.info('commandstats')).matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+),.*?rejected_calls=(\d+)/gm)) total += Number(m[1]) + Number(m[2]);
  return total;
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const HUGE_RATE = 1_000_000_000;

console.log('\nRedisRateLimiter leaseSize: script round trips per call (server count) and decisions/s, a limit never reached');
console.log('leaseSize | round trips/call, 1 caller | round trips/call, 32 callers | decisions/s, 32 callers | p50 ms, 1 caller');
for (const leaseSize of [1, 5, 20, 100]) {
  const client = new Redis({ port, host: '127.0.0.1' });
  const limit = new RedisRateLimiter(client, { name: `lease-${unique++}`, rate: HUGE_RATE, leaseSize, timeout: 1_000 });
  const decide = () => limit.execute(() => undefined);
  for (let i = 0; i < 200; i++) await decide();
  let before = await scriptCalls();
  const samples = [];
  for (let i = 0; i < 2_000; i++) {
    const t = performance.now();
    await decide();
    samples.push(performance.now() - t);
  }
  const single = ((await scriptCalls()) - before) / 2_000;
  samples.sort((a, b) => a - b);
  before = await scriptCalls();
  let decisions = 0;
  const until = performance.now() + 1_000;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() < until) {
      await decide();
      decisions++;
    }
  }));
  const many = ((await scriptCalls()) - before) / decisions;
  client.disconnect();
  console.log(`${String(leaseSize).padStart(9)} | ${single.toFixed(3).padStart(26)} | ${many.toFixed(3).padStart(28)} | ${String(decisions).padStart(23)} | ${samples[1_000].toFixed(3).padStart(16)}`);
}

// Accuracy: 8 replicas (each its own connection and limiter) share 200/s (burst 200).
// "hammered": 4 callers per replica call as fast as they can (a refused caller waits 2 ms).
// "primed": each replica makes one call (leasing k − 1 spare), all idle 900 ms (the bucket
// refills, the spares are still good), then all hammer: the spares start early, on top of the
// bucket. "sparse": one replica hammers, the 7 others make one call every 1.5 s, so their spare
// permits lapse unused and the busy one gets less than the bucket would give.
// Each granted call's start is timed on this process's clock.
const R = 200;
const REPLICAS = 8;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
async function share(leaseSize, shape) {
  const name = `accuracy-${unique++}`;
  const replicas = Array.from({ length: REPLICAS }, () => {
    const client = new Redis({ port, host: '127.0.0.1' });
    return { client, limit: new RedisRateLimiter(client, { name, rate: R, interval: 1_000, leaseSize, timeout: 1_000 }) };
  });
  await Promise.all(replicas.map(({ client }) => client.ping()));
  const before = await scriptCalls();
  const starts = [];
  let calls = 0;
  const begin = performance.now();
  const end = begin + SECONDS * 1_000;
  const call = async (limit) => {
    calls++;
    try {
      await limit.execute(() => void starts.push(performance.now()));
    } catch {
      return false;
    }
    return true;
  };
  await Promise.all(replicas.flatMap(({ limit }, r) => Array.from({ length: 4 }, async (_, lane) => {
    if (shape === 'sparse' && r > 0) {
      if (lane > 0) return;
      while (performance.now() < end) {
        await call(limit);
        await sleep(1_500);
      }
      return;
    }
    if (shape === 'primed') {
      if (lane === 0) await call(limit);
      await sleep(900 - (performance.now() - begin));
    }
    while (performance.now() < end) if (!(await call(limit))) await sleep(2);
  })));
  const trips = (await scriptCalls()) - before;
  const held = replicas.reduce((n, { limit }) => n + limit.leased, 0);
  for (const { client } of replicas) client.disconnect();
  starts.sort((a, b) => a - b);
  const span = (starts.at(-1) - starts[0]) / 1_000;
  const allowed = R * span + R;
  let busiest = 0;
  for (let from = 0, to = 0; to < starts.length; to++) {
    while (starts[to] - starts[from] >= 1_000) from++;
    busiest = Math.max(busiest, to - from + 1);
  }
  return { granted: starts.length, span, allowed, busiest, trips: trips / calls, calls, held };
}

console.log(`\nAccuracy: ${REPLICAS} replicas share ${R}/s (burst ${R}) for ${SECONDS} s. Bucket allows ${R} × span + ${R}; a lease of k lets the fleet start up to ${REPLICAS} × (k − 1) early, and leaves up to that much unused`);
console.log('shape    | leaseSize | granted | bucket allows | granted − allowed | 8 × (k − 1) | busiest 1 s (bucket: ≤ 400) | spare held at end | round trips/call (all calls)');
for (const shape of ['hammered', 'primed', 'sparse']) {
  for (const leaseSize of [1, 5, 20, 100]) {
    const r = await share(leaseSize, shape);
    console.log(
      `${shape.padEnd(8)} | ${String(leaseSize).padStart(9)} | ${String(r.granted).padStart(7)} | ${r.allowed.toFixed(0).padStart(13)} | ${(r.granted - r.allowed).toFixed(0).padStart(17)} | ${String(REPLICAS * (leaseSize - 1)).padStart(11)} | ${String(r.busiest).padStart(27)} | ${String(r.held).padStart(17)} | ${r.trips.toFixed(3)} (${r.calls} calls)`,
    );
  }
}

// Round trips per call of each shared policy, told apart by script: a counting wrapper around
// the client (which the server's count above confirms in total).
const known = new Map();
function counted(client) {
  const counts = {};
  const name = (source) => (source.includes("'XX'") ? 'renew' : source.includes('ZCARD') ? 'acquire' : source.includes("'ZREM'") ? 'release' : source.includes('ARGV[5]') ? 'lease' : 'rate');
  // An EVALSHA of a script the server lacks (its first run after SCRIPT FLUSH) is refused NOSCRIPT, then sent by EVAL.
  const count = (sha) => void (counts[known.get(sha) ?? 'NOSCRIPT'] = (counts[known.get(sha) ?? 'NOSCRIPT'] ?? 0) + 1);
  const evalsha = client.evalsha.bind(client);
  const evalSource = client.eval.bind(client);
  client.evalsha = (sha, ...rest) => (count(sha), evalsha(sha, ...rest));
  client.eval = (source, ...rest) => {
    const sha = createHash('sha1').update(source).digest('hex');
    known.set(sha, name(source));
    count(sha);
    return evalSource(source, ...rest);
  };
  return counts;
}

async function perCall(make, work, seconds) {
  const client = new Redis({ port, host: '127.0.0.1' });
  const counts = counted(client);
  const policy = make(client);
  const before = await scriptCalls();
  let calls = 0;
  const until = performance.now() + seconds * 1_000;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() < until) {
      await policy.execute(work).catch(() => {});
      calls++;
    }
  }));
  await sleep(50); // the last releases
  const server = ((await scriptCalls()) - before) / calls;
  client.disconnect();
  const split = Object.entries(counts).map(([script, n]) => `${script} ${(n / calls).toFixed(3)}`).join(' + ');
  return { calls, server, split };
}

await admin.call('SCRIPT', 'FLUSH'); // every script's first run is then an EVAL the wrapper names
console.log('\nRound trips per call of each shared policy (32 callers for 2 s, none refused)');
console.log('policy                                            | round trips/call (server) | by script (client wrapper)');
const policies = [
  ['RedisRateLimiter (leaseSize 1)', (c) => new RedisRateLimiter(c, { name: `rt-${unique++}`, rate: HUGE_RATE, timeout: 1_000 }), () => undefined],
  ['RedisRateLimiter (leaseSize 20)', (c) => new RedisRateLimiter(c, { name: `rt-${unique++}`, rate: HUGE_RATE, leaseSize: 20, timeout: 1_000 }), () => undefined],
  ['RedisBulkhead (calls of 1 ms, leaseTime 10 s)', (c) => new RedisBulkhead(c, { name: `rt-${unique++}`, maxConcurrent: 1_000, timeout: 1_000 }), () => sleep(1)],
  ['RedisBulkhead (calls of 150 ms, leaseTime 300 ms)', (c) => new RedisBulkhead(c, { name: `rt-${unique++}`, maxConcurrent: 1_000, leaseTime: 300, timeout: 1_000 }), () => sleep(150)],
];
for (const [name, make, work] of policies) {
  const r = await perCall(make, work, 2);
  console.log(`${name.padEnd(49)} | ${r.server.toFixed(3).padStart(25)} | ${r.split} (${r.calls} calls)`);
}
admin.disconnect();
server.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });
