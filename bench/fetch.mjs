// What bulwark/fetch adds to a request: the median latency of a GET to a local server through
// resilientFetch's standard pipeline, against the same GET through the bare fetch, measured in
// one run.
//
//   npx tsup && node bench/fetch.mjs [--quick]
//
// The server runs in a child process (its own event loop and core), on 127.0.0.1, answering
// `ok` at once over keep-alive connections. Cases, for Node's global fetch and undici's:
// - bare: `await (await fetch(url)).text()`;
// - resilientFetch(): the default pipeline (total timeout → retry → breaker → attempt timeout);
// - with hedging of reads (`hedge: { delay: 2_000 }`: armed on every call, never fired);
// - with metrics (a MetricsRegistry tracking the origin's policies).
// Method: a local request takes a few hundred µs and the machine's speed drifts by more than
// the few µs measured here from one second to the next, so the cases are interleaved call by
// call: each step runs one call of every case of a fetch, in a seeded order of its own, and a
// round is a batch of such steps. A case's figure is the median of all its calls' latencies;
// the spread of its rounds' medians says how steady the machine was. The goal (issue 14, item 6): the default pipeline adds at most 3 % to the median.
// dist/fetch.js imports the core as 'bulwark', which resolves to this package's dist/index.js.
import { spawn } from 'node:child_process';
import { fetch as undiciFetch } from 'undici';
import { MetricsRegistry } from '../dist/index.js';
import { resilientFetch } from '../dist/fetch.js';
import { int, median, percent, shuffled, spread, table } from './harness.mjs';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 5 : 21;
const BATCH = quick ? 100 : 300;
const WARM_CALLS = quick ? 500 : 3_000;
const GOAL = 3; // % added to the median

const SERVER = `
  const http = require('node:http');
  const server = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }); res.end('ok'); });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

async function startServer() {
  const child = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (data) => resolve(Number(String(data).trim())));
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}/resource?id=1`, stop: () => child.kill() };
}

const nothing = () => {};
const server = await startServer();
const url = server.url;

const fetches = { 'global fetch': globalThis.fetch, 'undici fetch': undiciFetch };
const cases = [];
for (const [fetchName, fetch] of Object.entries(fetches)) {
  cases.push({ name: `${fetchName}, bare`, fetchName, bare: true, run: fetch });
  // The floor of a client that gives each attempt a signal of its own (item 3 of the issue asks
  // for it): the bare fetch, handed a fresh AbortController's signal.
  cases.push({ name: `${fetchName}, bare with a signal (floor)`, fetchName, floor: true, run: (input) => fetch(input, { signal: new AbortController().signal }) });
  // And what a deadline costs on top: one timer armed before the request and cleared after it
  // (a timeout policy's shared timer is armed and cleared once per request when requests do
  // not overlap, as here).
  cases.push({
    name: `${fetchName}, bare with a signal and a timer`,
    fetchName,
    run: (input) => {
      const timer = setTimeout(nothing, 10_000);
      return fetch(input, { signal: new AbortController().signal }).then((response) => {
        clearTimeout(timer);
        return response;
      });
    },
  });
  cases.push({ name: `${fetchName}, resilientFetch()`, fetchName, run: resilientFetch({ fetch }) });
  cases.push({ name: `${fetchName}, with hedging`, fetchName, run: resilientFetch({ fetch, hedge: { delay: 2_000 } }) });
  cases.push({ name: `${fetchName}, with metrics`, fetchName, run: resilientFetch({ fetch, metrics: new MetricsRegistry(), name: 'bench' }) });
}

/** The latency, in ns, of one GET through `run`, its body read. */
async function once(run) {
  const start = process.hrtime.bigint();
  const response = await run(url);
  await response.text();
  return Number(process.hrtime.bigint() - start);
}

for (const { run } of cases) for (let i = 0; i < WARM_CALLS; i++) await once(run);

const samples = new Map(cases.map((entry) => [entry, []]));
const roundMedians = new Map(cases.map((entry) => [entry, []]));
let seed = 1;
for (let round = 0; round < ROUNDS; round++) {
  const inRound = new Map(cases.map((entry) => [entry, []]));
  for (const fetchName of Object.keys(fetches)) {
    const group = cases.filter((entry) => entry.fetchName === fetchName);
    for (let step = 0; step < BATCH; step++) {
      for (const entry of shuffled(group, seed++)) inRound.get(entry).push(await once(entry.run));
    }
  }
  for (const [entry, latencies] of inRound) {
    samples.get(entry).push(...latencies);
    roundMedians.get(entry).push(median(latencies));
  }
}
server.stop();

const bareOf = (fetchName) => cases.find((entry) => entry.bare && entry.fetchName === fetchName);
const rows = [['case', 'median µs', 'p90 µs', 'added to the median', 'rounds spread']];
let worst = -Infinity;
for (const entry of cases) {
  const sorted = [...samples.get(entry)].sort((a, b) => a - b);
  const mid = median(sorted);
  const p90 = sorted[Math.floor(sorted.length * 0.9)];
  const bare = median(samples.get(bareOf(entry.fetchName)));
  const added = ((mid - bare) / bare) * 100;
  if (entry.name.endsWith('resilientFetch()')) worst = Math.max(worst, added);
  rows.push([entry.name, int(mid / 1_000), int(p90 / 1_000), entry.bare ? '—' : percent(added), percent(spread(roundMedians.get(entry)))]);
}
console.log(`bulwark/fetch against a bare fetch, GET to a local server (${ROUNDS} rounds × ${BATCH} calls per case)\n`);
console.log(table(rows));
console.log(`\nGoal: the default pipeline adds at most ${GOAL} % to the median latency: ${worst <= GOAL ? 'met' : 'NOT met'} (${percent(Math.max(0, worst))} at worst).`);
for (const fetchName of Object.keys(fetches)) {
  const floor = cases.find((entry) => entry.floor && entry.fetchName === fetchName);
  const pipeline = cases.find((entry) => entry.fetchName === fetchName && entry.name.endsWith('resilientFetch()'));
  const overFloor = ((median(samples.get(pipeline)) - median(samples.get(floor))) / median(samples.get(floor))) * 100;
  console.log(`${fetchName}: a signal of its own per request adds ${percent((median(samples.get(floor)) / median(samples.get(bareOf(fetchName))) - 1) * 100)} by itself; resilientFetch() adds ${percent(overFloor)} over that floor.`);
}
