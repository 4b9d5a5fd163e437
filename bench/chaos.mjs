// What chaos costs when it does not inject: chaos policies left in a stack, switched off in
// production (`enabled: false`, or `rate: 0`), or asked per call and answering no.
//
//   npx tsup && node bench/chaos.mjs [--quick]
//
// Cases, on the success path (`async () => 1`), as ratios to a bare `await` of the function:
// - each strategy (fault, latency, outcome) at `rate: 0`, at `enabled: false`, with an
//   `enabled` function that answers false (asked for every call), and at a rate so small it
//   never injects in a run (1e-12: the random draw is made for every call);
// - the three stacked, off and asked per call;
// - the five built-in policies composed, alone and with the three chaos policies inside,
//   off or asked per call: what chaos left in a real stack costs it.
// A policy that can never inject (rate 0, enabled false) has no hook: the engine enters it
// without a promise, like a layer that lets every call through. A latency that may inject
// decides in `enter` (a call it delays waits there), which costs no promise either. A fault or
// an outcome that may inject must answer in place of the call without the answer being a
// refusal, which only the `run` hook can: a promise hop on every call, and inside a
// `withTimeout` the call then outlives the timeout's first check, so the timeout arms its timer
// for every call (the last two rows tell the two kinds apart).
//
// Method (bench/harness.mjs): every case has its own timing loop; after a warm-up each round
// runs every case once, in a seeded order of its own; a case's figure is the median of its
// rounds, in wall-clock time and in CPU time of the process. No peer library installed here
// (cockatiel, opossum, p-retry, p-timeout, p-limit) injects chaos, so there is no peer row.
// dist/chaos.js imports the core as 'bulwark', which resolves to this package's dist/index.js
// (a package may name itself): the same engine as ../dist/index.js, as in a user's process.
import { Bulkhead, CircuitBreaker, compose, retryWithBackoff, withFallback, withTimeout } from '../dist/index.js';
import { chaosFault, chaosLatency, chaosOutcome } from '../dist/chaos.js';
import { calibrate, callsFor, int, makeLoop, median, ratio, sample, settle, shuffled, spread, table } from './harness.mjs';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 11;
const WARM_MS = quick ? 20 : 200;
const SAMPLE_MS = quick ? 5 : 25;

const work = async () => 1;
const fault = new Error('injected');
const never = () => false;
const strategies = {
  chaosFault: (options) => chaosFault({ fault, ...options }),
  chaosLatency: (options) => chaosLatency({ latency: 1_000, ...options }),
  chaosOutcome: (options) => chaosOutcome({ outcome: 0, ...options }),
};
const fiveStack = (...inner) =>
  compose(withFallback(0), new CircuitBreaker(), retryWithBackoff(), withTimeout(1_000), new Bulkhead({ maxConcurrent: 10 }), ...inner);
const allThree = (options) => Object.values(strategies).map((build) => build(options));

/** [name, policy or undefined for the bare await], in the order printed. */
const setups = [
  ['bare await', undefined],
  ['compose() with no policy', compose()],
  ...Object.entries(strategies).flatMap(([name, build]) => [
    [`${name}, rate 0`, build({ rate: 0 })],
    [`${name}, enabled: false`, build({ rate: 0.5, enabled: false })],
    [`${name}, enabled: () => false`, build({ rate: 0.5, enabled: never })],
    [`${name}, rate 1e-12 (draws, never injects)`, build({ rate: 1e-12 })],
  ]),
  ['the three, enabled: false', compose(...allThree({ rate: 0.5, enabled: false }))],
  ['the three, enabled: () => false', compose(...allThree({ rate: 0.5, enabled: never }))],
  ['the five built-in policies', fiveStack()],
  ['the five + the three, enabled: false', fiveStack(...allThree({ rate: 0.5, enabled: false }))],
  ['the five + the three, enabled: () => false', fiveStack(...allThree({ rate: 0.5, enabled: never }))],
  ['the five + chaosLatency, enabled: () => false', fiveStack(strategies.chaosLatency({ rate: 0.5, enabled: never }))],
  ['the five + chaosFault, enabled: () => false', fiveStack(strategies.chaosFault({ rate: 0.5, enabled: never }))],
];

// Each case's `run` is a function literal of its own (a closure per case), like its loop.
const entries = setups.map(([name, policy]) => ({
  name,
  run: policy === undefined ? () => work() : () => policy.execute(work),
  loop: makeLoop(false),
  fastest: Infinity,
  wall: [],
  cpu: [],
}));

// Every case must answer 1: a policy that injected would have measured something else.
for (const entry of entries) if ((await entry.run()) !== 1) throw new Error(`${entry.name} did not answer the function's value`);

process.stderr.write(`bench: ${entries.length} cases, ${ROUNDS} rounds${quick ? ' (quick)' : ''}\n`);
for (const entry of entries) entry.fastest = await calibrate(entry.loop, entry.run, WARM_MS);
for (let round = -1; round < ROUNDS; round++) {
  for (const entry of shuffled(entries, round + 2)) {
    await settle();
    const { wall, cpu } = await sample(entry.loop, entry.run, callsFor(SAMPLE_MS, entry.fastest));
    entry.fastest = Math.min(entry.fastest, wall);
    if (round >= 0) {
      entry.wall.push(wall);
      entry.cpu.push(cpu);
    }
  }
}

const bare = entries[0];
const bareWall = median(bare.wall);
const bareCpu = median(bare.cpu);
const five = entries.find((entry) => entry.name === 'the five built-in policies');
const rows = [['case', 'ns/call', '× bare await', 'CPU × bare await', 'spread', '× the five']];
for (const entry of entries) {
  const wall = median(entry.wall);
  const vsFive = entry.name.startsWith('the five') ? ratio(wall / median(five.wall)) : '';
  rows.push([entry.name, int(wall), ratio(wall / bareWall), ratio(median(entry.cpu) / bareCpu), `${spread(entry.wall).toFixed(0)} %`, vsFive]);
}
console.log(`node ${process.version}, ${ROUNDS} rounds, median wall-clock ns per call (spread: (max − min) ÷ median of the rounds)\n`);
console.log(table(rows));
