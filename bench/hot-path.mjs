// bulwark against cockatiel, opossum and p-limit/p-retry/p-timeout, measured in one process:
// success path, failure paths, throughput, memory and timers, and the targets of issue 6.
//
//   npm run bench                      # builds dist/, then runs this file
//   node bench/hot-path.mjs [--quick]  # against the dist/ already built
//
// Method: every timing case runs in this one process. A warm-up runs each case for a while
// (the JIT settles), then one more warm-up round runs them all; samples are sized to about
// SAMPLE_MS at the fastest speed seen. Each measured round runs every case once, in an order
// of its own (a seeded shuffle, so no case always follows the same neighbour and inherits its
// GC debt); a case's figure is the median of its rounds, in wall-clock time and, beside it, in
// CPU time of the process. A busy machine or a JIT event thus moves every case alike, and the
// ratios hold where the nanoseconds drift. Memory and timers are measured in a child process
// (bench/memory.mjs, with --expose-gc). A full run writes bench/RESULTS.md; `--quick` (small
// samples, a sanity check that every case runs) only prints. Opossum's breakers start
// intervals (unref'd); dispose() shuts them down, so the process exits with no timer left.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { calibrate, callsFor, makeLoop, median, sample, settle, shuffled, spread, throughput } from './harness.mjs';
import { setup, throughputCases } from './cases.mjs';
import * as report from './report.mjs';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 5 : 11;
const WARM_MS = quick ? 20 : 200;
const SAMPLE_MS = quick ? 5 : 25;
const TASKS = quick ? 10_000 : 100_000;
const THROUGHPUT_ROUNDS = quick ? 5 : 7;

const started = Date.now();
const loadBefore = os.loadavg()[0];
const { cases, dispose } = await setup();
const entries = [...cases].map(([id, c]) => ({ id, ...c, loop: makeLoop(c.rejects), fastest: Infinity, samples: [], cpuSamples: [] }));

const progress = (text) => process.stderr.isTTY && process.stderr.write(`\r  ${text}   `);
process.stderr.write(`bench: ${entries.length} cases, ${ROUNDS} rounds${quick ? ' (quick)' : ''}\n`);
for (const entry of entries) entry.fastest = await calibrate(entry.loop, entry.run, WARM_MS);
for (let round = -1; round < ROUNDS; round++) {
  // Round -1 is one more warm-up, interleaved like the others, and thrown away.
  for (const entry of shuffled(entries, round + 2)) {
    await settle();
    // Samples only grow: a case that got faster after the warm-up (the JIT settled late)
    // still gets samples of about SAMPLE_MS. ns per call stays comparable from round to round.
    const { wall, cpu } = await sample(entry.loop, entry.run, callsFor(SAMPLE_MS, entry.fastest));
    entry.fastest = Math.min(entry.fastest, wall);
    if (round >= 0) {
      entry.samples.push(wall);
      entry.cpuSamples.push(cpu);
    }
  }
  progress(`timing round ${round + 1}/${ROUNDS}`);
}

const tput = [...throughputCases()].map(([id, c]) => ({ id, ...c, samples: [] }));
for (const entry of tput) await throughput(entry.submit, TASKS);
for (let round = 0; round < THROUGHPUT_ROUNDS; round++) {
  for (const entry of round % 2 === 0 ? tput : [...tput].reverse()) {
    await settle();
    entry.samples.push(await throughput(entry.submit, TASKS));
  }
  progress(`throughput round ${round + 1}/${THROUGHPUT_ROUNDS}`);
}
dispose();
const loadAfterTiming = os.loadavg()[0];
const seconds = (Date.now() - started) / 1000;

progress('memory and timers (child process)');
if (process.stderr.isTTY) process.stderr.write('\n');
const memory = await runMemoryChild();

const timing = new Map(
  entries.map((e) => [e.id, { ns: median(e.samples), cpu: median(e.cpuSamples), spread: spread(e.samples), calls: callsFor(SAMPLE_MS, e.fastest), describe: e.describe }]),
);
const rates = new Map(tput.map((e) => [e.id, { perSecond: median(e.samples), spread: spread(e.samples), describe: e.describe }]));
const environment = describeEnvironment({
  rounds: ROUNDS,
  throughputRounds: THROUGHPUT_ROUNDS,
  sampleMs: SAMPLE_MS,
  tasks: TASKS,
  cases: entries.length,
  seconds,
  load: [loadBefore, loadAfterTiming],
});
const text = report.render({ environment, timing, rates, memory });
console.log(text);

const leftover = process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;
if (leftover > 0) console.log(`\nnote: ${leftover} timer(s) still keep this process alive after the run`);
if (quick) {
  console.log('\n(quick run: bench/RESULTS.md not written)');
} else {
  writeFileSync(new URL('./RESULTS.md', import.meta.url), report.document(text));
  console.log('\nwritten to bench/RESULTS.md');
}

function runMemoryChild() {
  return new Promise((resolve, reject) => {
    const args = ['--expose-gc', fileURLToPath(new URL('./memory.mjs', import.meta.url))];
    if (quick) args.push('--quick');
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`bench/memory.mjs exited with ${code}`));
      resolve(JSON.parse(output.trim().split('\n').at(-1)));
    });
  });
}

function describeEnvironment(run) {
  const version = (name) => JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
  let build = 'unknown';
  try {
    build = execFileSync('git', ['describe', '--always', '--dirty'], { cwd: new URL('..', import.meta.url), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // Not a git checkout: the commit stays unknown.
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    bulwark: `${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version} (dist/ built from working tree ${build})`,
    peers: ['cockatiel', 'opossum', 'p-limit', 'p-retry', 'p-timeout'].map((name) => `${name} ${version(name)}`),
    ...run,
  };
}
