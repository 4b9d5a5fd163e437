// What tracking costs: the success path of the full five-policy stack, untracked and tracked
// by a MetricsRegistry (every member named), as a ratio to the untracked stack. The budget of
// tracking's own bookkeeping: the "tracked, free clock" row (a clock that costs nothing) at most
// 1.25× untracked; the clock reads any timing needs come on top (the last line).
//
//   npm run build && node bench/metrics.mjs
//   node bench/metrics.mjs /path/to/another/dist/index.js    (or BULWARK_DIST=/path/to/index.js)
//   ROUNDS=15 node bench/metrics.mjs                          (more rounds; default 11)
//
// Method: every case loads a copy of bulwark of its own (dist/index.js imported under its own
// URL; only the shared chunk it imports, the error-message helper, is one for all), and the
// rounds interleave the cases in one process. With one copy for all, the
// engine's code would see the untracked stack and the tracked ones at the same call sites, and
// how V8 compiled them for one case would depend on what the others did first: the same case
// measured 1.4× and 1.9× from one ordering to the next. With a copy each, a case is compiled
// for itself alone, while a busy machine still slows every case alike. Each figure is the
// median of the rounds, in CPU time of the process. The bench also times two clock reads, the
// least that timing a call costs, against the untracked stack: the part of the budget no
// bookkeeping can save.
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { makeLoop, median, sample } from './harness.mjs';

const entryArg = process.argv[2] ?? process.env.BULWARK_DIST;
const entry = entryArg === undefined ? new URL('../dist/index.js', import.meta.url).href : pathToFileURL(resolve(entryArg)).href;
const ROUNDS = Number(process.env.ROUNDS ?? 11);
const CALLS = 100_000;
const work = async () => 1;

async function fullStack(name) {
  const bulwark = await import(`${entry}?copy=${encodeURIComponent(name)}`);
  const { Bulkhead, CircuitBreaker, compose, retryWithBackoff, withFallback, withTimeout } = bulwark;
  const stack = compose(
    withFallback(0, { name }),
    new CircuitBreaker({ name }),
    retryWithBackoff({ name }),
    withTimeout(1_000, { name }),
    new Bulkhead({ maxConcurrent: 10, name }),
  );
  return { stack, MetricsRegistry: bulwark.MetricsRegistry };
}

let samples = 0;
const cases = [];
// Each case's `run` is a function literal of its own, like its loop, so no call site is shared.
const addCase = (name, run) => cases.push({ name, run, loop: makeLoop(false) });
{
  const { stack } = await fullStack('untracked');
  addCase('untracked', () => stack.execute(work));
}
{
  const { stack, MetricsRegistry } = await fullStack('tracked');
  new MetricsRegistry().track(stack);
  addCase('tracked', () => stack.execute(work));
}
{
  const { stack, MetricsRegistry } = await fullStack('tracked + onCall');
  const registry = new MetricsRegistry();
  registry.track(stack);
  registry.onCall(() => samples++);
  addCase('tracked + onCall', () => stack.execute(work));
}
{
  // The same tracking with a clock that costs nothing: the bookkeeping without the two clock
  // reads per call (latencies all read 0 here; only the cost is of interest).
  const { stack, MetricsRegistry } = await fullStack('tracked, free clock');
  new MetricsRegistry({ now: () => 0 }).track(stack);
  addCase('tracked, free clock', () => stack.execute(work));
}

const cpuNsPerCall = async ({ loop, run }, calls) => (await sample(loop, run, calls)).cpu;

for (let round = 0; round < 3; round++) for (const entry of cases) await cpuNsPerCall(entry, CALLS / 2); // warm-up
const results = new Map(cases.map(({ name }) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const entry of round % 2 === 0 ? cases : [...cases].reverse()) results.get(entry.name).push(await cpuNsPerCall(entry, CALLS));
}
if (samples === 0) throw new Error('the onCall listener never ran: the bench measured nothing');

const clockPair = timeClockPair();
const base = median(results.get('untracked'));
console.log(`node ${process.version}, full five-policy stack, ${CALLS} calls per round, CPU ns per call, median of ${ROUNDS} rounds`);
console.log('case'.padEnd(22), 'ns/call'.padStart(8), ' × untracked');
for (const [name, values] of results) {
  const ns = median(values);
  console.log(name.padEnd(22), ns.toFixed(0).padStart(8), `  ${(ns / base).toFixed(2)}×`);
}
console.log(`two performance.now() reads: ${clockPair.toFixed(0)} ns, ${((clockPair / base) * 100).toFixed(0)} % of the untracked stack (what any timing of a call costs here)`);

/** CPU ns of two `performance.now()` reads, as the registry's default clock makes them. */
function timeClockPair() {
  const now = performance.now.bind(performance);
  let sink = 0;
  const pairs = 2_000_000;
  const pass = () => {
    const start = process.cpuUsage();
    for (let i = 0; i < pairs; i++) {
      const started = now();
      sink += now() - started;
    }
    const spent = process.cpuUsage(start);
    return ((spent.user + spent.system) * 1000) / pairs;
  };
  pass();
  const rounds = [pass(), pass(), pass(), pass(), pass()];
  if (Number.isNaN(sink)) throw new Error('the clock read NaN');
  return median(rounds);
}
