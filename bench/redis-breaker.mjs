// bulwark/redis's shared circuit breaker, on one redis-server started here, in one run:
//
// 1. The happy path: ns per call of RedisCircuitBreaker (closed, changes pushed) against the
//    core's CircuitBreaker of the same options and a bare `await`, interleaved rounds, medians
//    (the goal: at most 1.2× the local breaker). With `failureThreshold` alone (successes
//    are no news) and with a failure-rate window (successes are reported in batches).
// 2. Round trips per call (the server's INFO commandstats for EVALSHA + EVAL): the same calls
//    with 1 % failures, at a steady pace for 2 s, for syncInterval 100 ms; and the local
//    decisions of an open circuit (no round trip).
// 3. How fast an opening reaches the other replicas: 8 replicas in this process, each with its
//    own connections (a subscriber each, or none: polling), ms from the failure that opened it
//    to each replica's stateChange.
// Run after `npm run build` (or `npx tsup`): node bench/redis-breaker.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { CircuitBreaker } from '../dist/index.js';
import { RedisCircuitBreaker } from '../dist/redis.js';
import { makeLoop, median } from './harness.mjs';

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});
const dir = mkdtempSync(join(tmpdir(), 'bulwark-bench-breaker-'));
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
await new Promise((resolve, reject) => {
  server.once('error', reject);
  setTimeout(resolve, 300);
});
const connections = [];
const connect = () => {
  const client = new Redis({ port, host: '127.0.0.1' });
  connections.push(client);
  return client;
};
const admin = connect();
const scriptCalls = async () => {
  const info = await admin.info('commandstats');
  let calls = 0;
  for (const name of ['evalsha', 'eval']) {
    const match = new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info);
    if (match) calls += Number(match[1]);
  }
  return calls;
};
const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let unique = 0;
const ok = () => undefined;

// 1. The happy path.
const shapes = {
  'failureThreshold: 5': { failureThreshold: 5 },
  'failureRate window of 100 calls': { failureRate: { threshold: 0.5, window: { calls: 100 } } },
};
console.log('Happy path, ns per call (median of 15 interleaved rounds of 200 000 calls), one run:');
for (const [label, options] of Object.entries(shapes)) {
  const shared = new RedisCircuitBreaker(connect(), { name: `bench-${unique++}`, subscriber: connect(), ...options });
  // Pushes are live once the subscription is confirmed and the view read after it.
  for (let i = 0; i < 30; i++) {
    await shared.execute(ok);
    await tick(10);
  }
  const local = new CircuitBreaker(options);
  const cases = {
    'bare await': async () => undefined,
    'CircuitBreaker (core, local)': () => local.execute(ok),
    'RedisCircuitBreaker (shared)': () => shared.execute(ok),
  };
  const loops = Object.fromEntries(Object.keys(cases).map((name) => [name, makeLoop(false)]));
  for (const [name, run] of Object.entries(cases)) await loops[name](run, 200_000); // warm up
  const rounds = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  for (let round = 0; round < 15; round++) {
    for (const [name, run] of Object.entries(cases)) rounds[name].push(await loops[name](run, 200_000));
  }
  const ns = Object.fromEntries(Object.entries(rounds).map(([name, values]) => [name, median(values)]));
  console.log(`  ${label}:`);
  for (const name of Object.keys(cases)) console.log(`    ${name.padEnd(32)} ${ns[name].toFixed(1).padStart(7)} ns  ${(ns[name] / ns['bare await']).toFixed(2)}× bare`);
  const ratio = ns['RedisCircuitBreaker (shared)'] / ns['CircuitBreaker (core, local)'];
  console.log(`    shared ÷ local: ${ratio.toFixed(3)}× (goal ≤ 1.2×: ${ratio <= 1.2 ? 'met' : 'NOT met'})`);
  await shared.close();
}

// 2. Round trips per call.
console.log('\nRound trips to Redis per call (INFO commandstats: EVALSHA + EVAL), syncInterval 100 ms, steady 2 s:');
for (const [label, options] of Object.entries(shapes)) {
  const breaker = new RedisCircuitBreaker(connect(), { name: `trips-${unique++}`, subscriber: connect(), ...options, failureThreshold: 1_000 });
  await breaker.execute(ok);
  await tick(50);
  const before = await scriptCalls();
  let calls = 0;
  const until = Date.now() + 2_000;
  while (Date.now() < until) {
    for (let i = 0; i < 100; i++) {
      calls++;
      await breaker.execute(calls % 100 === 0 ? () => Promise.reject(new Error('1 % fail')) : ok).catch(() => {});
    }
    await tick(1);
  }
  await tick(150);
  const trips = (await scriptCalls()) - before;
  console.log(`  ${label}, 1 % failures: ${calls} calls, ${trips} round trips: ${(trips / calls).toFixed(5)} per call (${(trips / 2).toFixed(1)} per second)`);
  await breaker.close();
}
{
  const breaker = new RedisCircuitBreaker(connect(), { name: `open-${unique++}`, subscriber: connect(), failureThreshold: 1, recoveryTimeout: 60_000 });
  await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
  await tick(50);
  const before = await scriptCalls();
  let refused = 0;
  for (let i = 0; i < 100_000; i++) await breaker.execute(ok).catch(() => refused++);
  const trips = (await scriptCalls()) - before;
  console.log(`  open circuit: ${refused} calls refused locally, ${trips} round trips`);
  await breaker.close();
}

// 3. How fast an opening reaches the other replicas.
console.log('\nAn opening reaching 8 replicas (ms from the failure that opened it to each replica\'s stateChange, the failing one included):');
for (const push of [true, false]) {
  const name = `spread-${unique++}`;
  const replicas = Array.from({ length: 8 }, () => new RedisCircuitBreaker(connect(), { name, failureThreshold: 1, recoveryTimeout: 60_000, subscriber: push ? connect() : undefined, syncInterval: 100 }));
  const delays = [];
  let openedAt = 0;
  const heard = replicas.map(
    (replica) =>
      new Promise((resolve) => {
        replica.on('stateChange', ({ to }) => {
          if (to !== 'open') return;
          delays.push(performance.now() - openedAt);
          resolve();
        });
      }),
  );
  for (let i = 0; i < 20; i++) {
    await Promise.all(replicas.map((replica) => replica.execute(ok)));
    await tick(10);
  }
  // Traffic on every replica (a replica with no calls has nothing to decide), then one failure on the first.
  const lanes = replicas.slice(1).map(async (replica) => {
    while (replica.state !== 'open') {
      await replica.execute(ok).catch(() => {});
      await tick(2);
    }
  });
  openedAt = performance.now();
  await replicas[0].execute(() => Promise.reject(new Error('down'))).catch(() => {});
  await Promise.all([...heard, ...lanes]);
  delays.sort((a, b) => a - b);
  console.log(`  ${push ? 'pub/sub' : 'polling (no subscriber)'}: median ${median(delays).toFixed(1)} ms, max ${delays.at(-1).toFixed(1)} ms`);
  await Promise.all(replicas.map((replica) => replica.close()));
}

for (const client of connections) client.disconnect();
server.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });
