// The retry budget: what `retryWithBackoff({ budget })` costs per call on the success path,
// next to `retryWithBackoff()` and a bare `await`, measured in one process with interleaved
// rounds; then the storm figure: the extra load a dependency failing every call sees from
// retries (maxRetries 3, 1 000 calls a second for 30 s on a simulated clock), with and without
// a budget.
//
//   npm run build && node bench/retry-budget.mjs
//   BULWARK_DIST=/path/to/dist/index.js node bench/retry-budget.mjs   (another build)
import { pathToFileURL } from 'node:url';
import { calibrate, callsFor, int, makeLoop, median, ratio, sample, settle, shuffled, spread, table } from './harness.mjs';

const dist = process.env.BULWARK_DIST ? pathToFileURL(process.env.BULWARK_DIST).href : new URL('../dist/index.js', import.meta.url).href;
const { RetryBudget, retryWithBackoff } = await import(dist);

// ── Per call cost, success path ─────────────────────────────────────────────────────────────

const fn = async () => 1;
const budget = new RetryBudget();
const plain = retryWithBackoff();
const budgeted = retryWithBackoff({ budget });
const shared = new RetryBudget();
const sharing = Array.from({ length: 8 }, () => retryWithBackoff({ budget: shared }));
let turn = 0;
const cases = [
  { id: 'bare await', run: fn },
  { id: 'retryWithBackoff()', run: () => plain.execute(fn) },
  { id: 'retryWithBackoff({ budget })', run: () => budgeted.execute(fn) },
  { id: '8 policies, one budget', run: () => sharing[turn++ & 7].execute(fn) },
  { id: 'budget.deposit() alone', run: () => budget.deposit() },
];
for (const c of cases) {
  c.loop = makeLoop(false);
  c.fastest = await calibrate(c.loop, c.run, 300);
  c.samples = [];
}
const ROUNDS = 11;
for (let round = 0; round < ROUNDS; round++) {
  for (const c of shuffled(cases, round + 1)) {
    await settle();
    const { cpu } = await sample(c.loop, c.run, callsFor(25, c.fastest));
    c.samples.push(cpu);
  }
}
const cost = (id) => median(cases.find((c) => c.id === id).samples);
const bare = cost('bare await');
const retryCost = cost('retryWithBackoff()');
console.log(`## Success path: CPU ns per call, median of ${ROUNDS} interleaved rounds (node ${process.version})\n`);
console.log(
  table([
    ['case', 'ns/call', '× bare await', '× retryWithBackoff()', 'spread'],
    ...cases.map((c) => [c.id, int(median(c.samples)), ratio(median(c.samples) / bare), ratio(median(c.samples) / retryCost), `${spread(c.samples).toFixed(0)} %`]),
  ]),
);

// ── The storm ───────────────────────────────────────────────────────────────────────────────

/** A clock driven by hand with a binary heap of timers: 30 s of 1 000 calls a second in well under a second. */
class StormClock {
  time = 0;
  #order = 0;
  #heap = [];
  now = () => this.time;
  setTimeout = (callback, ms) => {
    const timer = { at: this.time + Math.max(0, ms), order: this.#order++, callback, cancelled: false };
    const heap = this.#heap;
    heap.push(timer);
    for (let at = heap.length - 1; at > 0; ) {
      const parent = (at - 1) >> 1;
      if (!before(heap[at], heap[parent])) break;
      [heap[at], heap[parent]] = [heap[parent], heap[at]];
      at = parent;
    }
    return timer;
  };
  clearTimeout = (timer) => {
    timer.cancelled = true;
  };
  async advance(ms) {
    const target = this.time + ms;
    await settle();
    while (this.#heap.length > 0 && this.#heap[0].at <= target) {
      this.time = this.#heap[0].at;
      while (this.#heap.length > 0 && this.#heap[0].at === this.time) {
        const timer = this.#pop();
        if (!timer.cancelled) timer.callback();
      }
      await settle();
    }
    this.time = target;
  }
  #pop() {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0) {
      heap[0] = last;
      for (let at = 0; ; ) {
        const left = 2 * at + 1;
        let least = at;
        if (left < heap.length && before(heap[left], heap[least])) least = left;
        if (left + 1 < heap.length && before(heap[left + 1], heap[least])) least = left + 1;
        if (least === at) break;
        [heap[at], heap[least]] = [heap[least], heap[at]];
        at = least;
      }
    }
    return top;
  }
}
const before = (a, b) => a.at < b.at || (a.at === b.at && a.order < b.order);

async function storm(budgetOptions, policies = 1) {
  const clock = new StormClock();
  const stormBudget = budgetOptions === undefined ? undefined : new RetryBudget({ ...budgetOptions, clock });
  const retries = Array.from({ length: policies }, () => retryWithBackoff({ maxRetries: 3, baseDelay: 100, maxDelay: 1_000, jitter: 'full', clock, budget: stormBudget }));
  let calls = 0;
  let attempts = 0;
  const down = () => {
    attempts++;
    return Promise.reject(new Error('down'));
  };
  for (let ms = 0; ms < 30_000; ms += 10) {
    for (let i = 0; i < 10; i++) retries[calls++ % policies].execute(down).catch(() => {});
    await clock.advance(10);
  }
  await clock.advance(60_000);
  return { calls, attempts };
}

const runs = [
  ['no budget', undefined, 1],
  ['RetryBudget() (20 %, 10/s, 10 s)', {}, 1],
  ['RetryBudget(), 3 policies sharing it', {}, 3],
  ['RetryBudget({ ratio: 0.1, minPerSecond: 0 })', { ratio: 0.1, minPerSecond: 0 }, 1],
];
const rows = [['budget', 'calls', 'attempts', 'extra load']];
for (const [label, options, policies] of runs) {
  const { calls, attempts } = await storm(options, policies);
  rows.push([label, int(calls), int(attempts), `${(((attempts - calls) / calls) * 100).toFixed(1)} %`]);
}
console.log('\n## Storm: a dependency failing every call, 1 000 calls a second for 30 s, maxRetries 3\n');
console.log(table(rows));
