// Times the success path of each primitive in two builds of bulwark in one process, rounds
// interleaved: `node bench/ab.mjs <dist-a/index.js> <dist-b/index.js>`. A quick A/B for engine work;
// `npm run bench` is the full benchmark.
import { pathToFileURL } from 'node:url';
import { calibrate, callsFor, makeLoop, median, sample, settle } from './harness.mjs';

const [a, b] = process.argv.slice(2);
const builds = [['A', await import(pathToFileURL(a).href)], ['B', await import(pathToFileURL(b).href)]];
const fn = async () => 1;
const cases = [];
for (const [label, m] of builds) {
  const stack = m.compose(m.withFallback(0), new m.CircuitBreaker(), m.retryWithBackoff({ baseDelay: 0 }), m.withTimeout(1_000), new m.Bulkhead({ maxConcurrent: 100 }));
  const tracked = m.compose(m.withFallback(0, { name: 'f' }), new m.CircuitBreaker({ name: 'b' }), m.retryWithBackoff({ baseDelay: 0, name: 'r' }), m.withTimeout(1_000, { name: 't' }), new m.Bulkhead({ maxConcurrent: 100, name: 'h' }));
  new m.MetricsRegistry({ now: () => 0 }).track(tracked);
  const one = {
    breaker: new m.CircuitBreaker(),
    retry: m.retryWithBackoff(),
    timeout: m.withTimeout(1_000),
    bulkhead: new m.Bulkhead({ maxConcurrent: 100 }),
    fallback: m.withFallback(0),
  };
  for (const [name, policy] of Object.entries(one)) cases.push({ id: `${name} ${label}`, run: () => policy.execute(fn) });
  cases.push({ id: `full stack ${label}`, run: () => stack.execute(fn) });
  cases.push({ id: `tracked free clock ${label}`, run: () => tracked.execute(fn) });
}
cases.push({ id: 'bare await', run: fn });
const floor = () => fn().then((v) => v);
cases.push({ id: 'floor', run: floor });
for (const c of cases) {
  c.loop = makeLoop(false);
  c.fastest = await calibrate(c.loop, c.run, 200);
  c.samples = [];
}
for (let round = 0; round < 9; round++) {
  for (const c of round % 2 ? cases : [...cases].reverse()) {
    await settle();
    const { cpu } = await sample(c.loop, c.run, callsFor(25, c.fastest));
    c.samples.push(cpu);
  }
}
const bare = median(cases.find((c) => c.id === 'bare await').samples);
for (const c of cases) console.log(c.id.padEnd(24), median(c.samples).toFixed(0).padStart(6), 'ns', (median(c.samples) / bare).toFixed(2) + '×');
