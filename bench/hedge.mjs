// Hedging against a long tail, on a real local HTTP server, and its cost when no hedge fires.
//
//   npx tsup && node bench/hedge.mjs [--quick]
//
// 1. Tail latency. A node:http server on 127.0.0.1 answers after 5 ms, or after 100 ms for 5 %
//    of the requests (drawn per request from a seeded random, so a hedge's request has its own
//    draw, as on a real server). CALLS calls go through `fetch` with CONCURRENCY in flight, first
//    bare, then through `hedge({ delay })` with one hedged attempt; the delay is the 90th
//    percentile of the bare run, standing for the p95 of the normal answers: with 5 % of the
//    answers in the tail, the p95 itself sits on the tail's edge, and any noise puts it at
//    100 ms. Printed: p50/p95/p99 as callers saw them, and the load (requests the server
//    received per call) beside the hedge rate. The target: p99 at least 3× lower with
//    one hedge, load up by at most the hedge rate.
// 2. Cost on the success path (`async () => 1`, answered long before any delay): ns per call of
//    a bare `await`, of `hedge()` and, for scale, of `withTimeout()` and `retryWithBackoff()`,
//    measured in the same rounds (bench/harness.mjs), as ratios to the bare `await`. None of the
//    peer libraries installed here (cockatiel, opossum, p-retry, p-timeout, p-limit) hedges, so
//    there is no peer row.
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { hedge, retryWithBackoff, withTimeout } from '../dist/index.js';
import { calibrate, callsFor, int, makeLoop, median, ratio, sample, settle, shuffled, spread, table } from './harness.mjs';

const quick = process.argv.includes('--quick');
const CALLS = quick ? 400 : 2_000;
const CONCURRENCY = 4;
const TAIL_SHARE = 0.05;
const FAST_MS = 5;
const SLOW_MS = 100;
const ROUNDS = quick ? 3 : 9;
const WARM_MS = quick ? 20 : 200;
const SAMPLE_MS = quick ? 5 : 25;

/** Mulberry32: a seeded random, so every run draws the same tail. */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ── The server: a process of its own, so the client's work does not delay its answers ────────

function serve() {
  let received = 0;
  let random = seededRandom(13);
  const server = http.createServer((request, response) => {
    received++;
    const timer = setTimeout(() => response.end('ok'), random() < TAIL_SHARE ? SLOW_MS : FAST_MS);
    // An aborted request (a hedge's loser) closes its connection: its answer is not written.
    request.on('close', () => {
      if (!response.writableEnded) clearTimeout(timer);
    });
  });
  process.on('message', (message) => {
    if (message === 'reset') {
      random = seededRandom(13);
      received = 0;
    }
    if (message === 'close') server.close(() => process.exit(0));
    else process.send({ received });
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
}

// ── 1. Tail latency through fetch ────────────────────────────────────────────────────────────

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
};
const ms = (value) => `${value.toFixed(1)} ms`;

async function tailLatency() {
  const server = fork(fileURLToPath(import.meta.url), ['--server']);
  const ask = (message) =>
    new Promise((resolve) => {
      server.once('message', resolve);
      if (message !== undefined) server.send(message);
    });
  const { port } = await ask();
  const url = `http://127.0.0.1:${port}/`;
  const get = (signal) => fetch(url, { signal }).then((response) => response.text());

  /** Runs CALLS calls of `call()`, CONCURRENCY at a time: each call's latency in ms, and the requests the server got. */
  const measure = async (calls, call) => {
    await ask('reset');
    const latencies = [];
    let next = 0;
    const worker = async () => {
      while (next < calls) {
        next++;
        const start = performance.now();
        await call();
        latencies.push(performance.now() - start);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const { received } = await ask('count');
    return { latencies, requests: received };
  };

  await measure(CALLS / 4, () => get()); // warm-up: connections, JIT
  const bare = await measure(CALLS, () => get());
  const delay = Math.ceil(percentile(bare.latencies, 0.9));
  const policy = hedge({ delay, maxHedgedAttempts: 1 });
  let hedges = 0;
  let wins = 0;
  policy.on('hedge', () => void hedges++);
  policy.on('won', () => void wins++);
  await measure(CALLS / 4, () => policy.execute(({ signal }) => get(signal)));
  hedges = 0;
  wins = 0;
  const hedged = await measure(CALLS, () => policy.execute(({ signal }) => get(signal)));
  server.send('close');

  const row = (name, { latencies, requests }) => [
    name,
    ms(percentile(latencies, 0.5)),
    ms(percentile(latencies, 0.95)),
    ms(percentile(latencies, 0.99)),
    ms(Math.max(...latencies)),
    (requests / CALLS).toFixed(3),
  ];
  console.log(`## Tail latency: ${int(CALLS)} calls through fetch, ${CONCURRENCY} in flight; the server answers in ${FAST_MS} ms, ${TAIL_SHARE * 100} % in ${SLOW_MS} ms\n`);
  console.log(table([['', 'p50', 'p95', 'p99', 'max', 'requests per call'], row('bare fetch', bare), row(`hedge({ delay: ${delay} })`, hedged)]));
  const p99Ratio = percentile(bare.latencies, 0.99) / percentile(hedged.latencies, 0.99);
  const hedgeRate = hedges / CALLS;
  const loadRise = (hedged.requests - bare.requests) / CALLS;
  console.log(`\nhedges started: ${hedges} (${(hedgeRate * 100).toFixed(1)} % of calls), won: ${wins}`);
  console.log(`p99 ${ratio(p99Ratio)} lower with one hedge (target ≥ 3×): ${p99Ratio >= 3 ? 'met' : 'NOT met'}`);
  console.log(`load +${(loadRise * 100).toFixed(1)} % for a hedge rate of ${(hedgeRate * 100).toFixed(1)} % (target: at most the hedge rate): ${loadRise <= hedgeRate + 1e-9 ? 'met' : 'NOT met'}`);
}

// ── 2. Cost on the success path ──────────────────────────────────────────────────────────────

async function successPath() {
  const work = async () => 1;
  const hedging = hedge();
  const parallel = hedge({ delay: 0 });
  const timeout = withTimeout(2_000);
  const retry = retryWithBackoff();
  const cases = [
    ['await work()', () => work()],
    ['hedge() (delay 2 000, 1 hedge)', () => hedging.execute(work)],
    ['hedge({ delay: 0 }) (both attempts at once)', () => parallel.execute(work)],
    ['withTimeout(2 000)', () => timeout.execute(work)],
    ['retryWithBackoff()', () => retry.execute(work)],
  ].map(([name, run]) => ({ name, run, loop: makeLoop(false), fastest: Infinity, samples: [] }));
  for (const entry of cases) {
    if ((await entry.run()) !== 1) throw new Error(`${entry.name} did not answer 1`);
    entry.fastest = await calibrate(entry.loop, entry.run, WARM_MS);
  }
  for (let round = -1; round < ROUNDS; round++) {
    // Round -1 is one more warm-up, interleaved like the others, and thrown away.
    for (const entry of shuffled(cases, round + 2)) {
      await settle();
      const { wall } = await sample(entry.loop, entry.run, callsFor(SAMPLE_MS, entry.fastest));
      entry.fastest = Math.min(entry.fastest, wall);
      if (round >= 0) entry.samples.push(wall);
    }
  }
  const base = median(cases[0].samples);
  console.log(`\n## Success path (no hedge fires): median of ${ROUNDS} rounds, ns per call\n`);
  console.log(table([['', 'ns per call', 'vs await', 'spread'], ...cases.map((entry) => [entry.name, int(median(entry.samples)), ratio(median(entry.samples) / base), `${spread(entry.samples).toFixed(0)} %`])]));
}

if (process.argv.includes('--server')) {
  serve();
} else {
  console.log(`Node ${process.version}, ${os.cpus().length} cores, 1-min load average ${os.loadavg()[0].toFixed(2)}\n`);
  await tailLatency();
  await successPath();
}
