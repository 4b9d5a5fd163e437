// Success-path cost of each policy alone and of the full five-policy stack, as a ratio to a
// bare `await` measured in the same process. Rounds interleave the cases, and each figure is
// the median of five rounds after a warm-up, so a noisy machine moves every case alike.
//
//   npm run build && node bench/hot-path.mjs
import { Bulkhead, CircuitBreaker, compose, retryWithBackoff, withFallback, withTimeout } from '../dist/index.js';

const work = async () => 1;
const policies = {
  'bare await': undefined,
  CircuitBreaker: new CircuitBreaker(),
  retryWithBackoff: retryWithBackoff(),
  withTimeout: withTimeout(1_000),
  Bulkhead: new Bulkhead({ maxConcurrent: 10 }),
  withFallback: withFallback(0),
  'full stack': compose(withFallback(0), new CircuitBreaker(), retryWithBackoff(), withTimeout(1_000), new Bulkhead({ maxConcurrent: 10 })),
};
const cases = Object.entries(policies).map(([name, policy]) => [name, policy === undefined ? work : () => policy.execute(work)]);

async function nsPerCall(run, calls) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await run();
  return Number(process.hrtime.bigint() - start) / calls;
}

const CALLS = 100_000;
const ROUNDS = 5;
for (const [, run] of cases) await nsPerCall(run, CALLS / 2); // warm-up
const samples = new Map(cases.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of cases) samples.get(name).push(await nsPerCall(run, CALLS));
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const bare = median(samples.get('bare await'));
console.log(`node ${process.version}, ${CALLS} calls per round, median of ${ROUNDS} rounds`);
console.log('case'.padEnd(18), 'ns/call'.padStart(8), ' × bare await');
for (const [name, values] of samples) {
  const ns = median(values);
  console.log(name.padEnd(18), ns.toFixed(0).padStart(8), `  ${(ns / bare).toFixed(1)}×`);
}
