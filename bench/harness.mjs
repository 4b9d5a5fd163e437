// Measuring helpers of the benchmark's timing process: per-case loops, calibration, medians,
// number formatting and Markdown tables.

const AsyncFunction = (async () => {}).constructor;
const now = () => process.hrtime.bigint();

/**
 * A timing loop of its own for one case. One loop shared by every case would see every case's
 * function at its `run()` call site, turn megamorphic and add the same overhead to each row,
 * which shrinks every ratio to the bare `await`. A loop compiled per case keeps its call site
 * monomorphic, so the bare `await` row costs what an `await` costs.
 *
 * `rejects`: the case's call is expected to reject; the loop catches, as a caller would.
 */
export function makeLoop(rejects) {
  const body = rejects
    ? 'for (let i = 0; i < calls; i++) { try { await run(); } catch {} }'
    : 'for (let i = 0; i < calls; i++) await run();';
  const loop = new AsyncFunction('run', 'calls', 'now', `const start = now(); ${body} return Number(now() - start);`);
  return async (run, calls) => (await loop(run, calls, now)) / calls;
}

/**
 * One sample: wall-clock ns per call, and CPU ns per call (user + system time of this process,
 * every thread). Wall time is what a caller waits; CPU time barely moves when other processes
 * take the cores, so it shows whether a slow round was the code or the machine. CPU time also
 * counts V8's helper threads (GC, compiler) and misses time spent waiting for a timer.
 */
export async function sample(loop, run, calls) {
  const cpuStart = process.cpuUsage();
  const wall = await loop(run, calls);
  const cpu = process.cpuUsage(cpuStart);
  return { wall, cpu: ((cpu.user + cpu.system) * 1000) / calls };
}

/**
 * Runs a case for at least `warmMs` (the JIT settles) and returns its fastest ns per call,
 * from which hot-path.mjs sizes the samples.
 */
export async function calibrate(loop, run, warmMs) {
  let calls = 16;
  let spentNs = 0;
  let fastest = Infinity;
  while (spentNs < warmMs * 1e6) {
    const nsPerCall = await loop(run, calls);
    fastest = Math.min(fastest, nsPerCall);
    spentNs += nsPerCall * calls;
    if (nsPerCall * calls < 20e6) calls *= 2;
  }
  return fastest;
}

/**
 * How many calls at `nsPerCall` fill `sampleMs` (at least 16). Sized from the fastest speed
 * seen, so a sample is never much shorter than `sampleMs`: a sample of a few ms often fits in
 * one time slice of a busy machine and would look faster than the 25 ms samples of the other
 * cases, which always get preempted.
 */
export function callsFor(sampleMs, nsPerCall) {
  return Math.max(16, Math.round((sampleMs * 1e6) / nsPerCall));
}

/** Tasks per second: `tasks` calls of `submit()` issued at once, then all awaited. */
export async function throughput(submit, tasks) {
  const pending = new Array(tasks);
  const start = now();
  for (let i = 0; i < tasks; i++) pending[i] = submit();
  await Promise.all(pending);
  return tasks / (Number(now() - start) / 1e9);
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** (max − min) ÷ median of the rounds, as a percentage: how much the rounds disagreed. */
export function spread(values) {
  return ((Math.max(...values) - Math.min(...values)) / median(values)) * 100;
}

/**
 * A turn of the event loop between samples, so what one case left pending (a timer, an I/O
 * callback) runs outside the next case's sample. No forced GC here: `global.gc()` is a
 * memory-reducing collection that also shrinks the young generation, and the next sample then
 * pays for many more scavenges than a running service would (measured: the full stack looked
 * 3× slower after one).
 */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A seeded shuffle (mulberry32), so every round has its own order and every run the same ones. */
export function shuffled(items, seed) {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const result = [...items];
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [result[i], result[j]] = [result[j], result[i]];
  }
  return result;
}

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
/** A whole number with thousands separators: ns per call, bytes, counts, tasks per second. */
export const int = (value) => grouped.format(value);
export const ratio = (value) => `${value >= 10 ? value.toFixed(1) : value.toFixed(2)}×`;
export const percent = (value) => `${value.toFixed(value < 10 ? 1 : 0)} %`;

/** A Markdown table; the first row is the header, columns after the first are right-aligned. */
export function table(rows) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => String(row[column]).length)));
  const line = (row) => `| ${row.map((cell, column) => (column === 0 ? String(cell).padEnd(widths[column]) : String(cell).padStart(widths[column]))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (column === 0 ? '-'.repeat(width + 2) : `${'-'.repeat(width + 1)}:`)).join('|')}|`;
  return [line(rows[0]), rule, ...rows.slice(1).map(line)].join('\n');
}
