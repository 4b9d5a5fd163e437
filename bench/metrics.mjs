// What tracking costs: the success path of the full five-policy stack, untracked and tracked
// by a MetricsRegistry (every member named), as a ratio to the untracked stack. Rounds
// interleave the cases, and each figure is the median of the rounds after a warm-up, so a
// noisy machine moves every case alike. The budget: tracked ≤ 1.2× untracked.
//
//   npm run build && node bench/metrics.mjs
//   node bench/metrics.mjs /path/to/another/dist/index.js    (or BULWARK_DIST=/path/to/index.js)
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const entry = process.argv[2] ?? process.env.BULWARK_DIST;
const { Bulkhead, CircuitBreaker, MetricsRegistry, compose, retryWithBackoff, withFallback, withTimeout } =
  await import(entry === undefined ? '../dist/index.js' : pathToFileURL(resolve(entry)).href);

const fullStack = (name) =>
  compose(
    withFallback(0, { name }),
    new CircuitBreaker({ name }),
    retryWithBackoff({ name }),
    withTimeout(1_000, { name }),
    new Bulkhead({ maxConcurrent: 10, name }),
  );

const work = async () => 1;
const untracked = fullStack('untracked');
const tracked = fullStack('tracked');
new MetricsRegistry().track(tracked);
const listened = fullStack('listened');
const withListener = new MetricsRegistry();
withListener.track(listened);
let samples = 0;
withListener.onCall(() => samples++);
// The same tracking with a clock that costs nothing: what the bookkeeping costs without the
// two clock reads per call (latencies all read 0 here; only the cost is of interest).
const freeClock = fullStack('freeClock');
new MetricsRegistry({ now: () => 0 }).track(freeClock);

const cases = [
  ['untracked', () => untracked.execute(work)],
  ['tracked', () => tracked.execute(work)],
  ['tracked + onCall', () => listened.execute(work)],
  ['tracked, free clock', () => freeClock.execute(work)],
];

async function nsPerCall(run, calls) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await run();
  return Number(process.hrtime.bigint() - start) / calls;
}

const CALLS = 100_000;
const ROUNDS = Number(process.env.ROUNDS ?? 7);
for (const [, run] of cases) await nsPerCall(run, CALLS / 2); // warm-up
const results = new Map(cases.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of cases) results.get(name).push(await nsPerCall(run, CALLS));
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const base = median(results.get('untracked'));
console.log(`node ${process.version}, full five-policy stack, ${CALLS} calls per round, median of ${ROUNDS} rounds`);
console.log('case'.padEnd(20), 'ns/call'.padStart(8), ' × untracked');
for (const [name, values] of results) {
  const ns = median(values);
  console.log(name.padEnd(20), ns.toFixed(0).padStart(8), `  ${(ns / base).toFixed(2)}×`);
}
if (samples === 0) throw new Error('the onCall listener never ran: the bench measured nothing');
