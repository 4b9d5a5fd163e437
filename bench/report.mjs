// Turns the measurements into the tables and target lines that hot-path.mjs prints and
// writes to bench/RESULTS.md.
import { int, percent, ratio, table } from './harness.mjs';

/** Rows of the success-path table: bulwark's case and its counterpart at each peer. */
const SUCCESS_ROWS = [
  ['bare `await`', 'await'],
  ['CircuitBreaker', 'bulwark.breaker', 'cockatiel.breaker', 'opossum.breaker'],
  ['retryWithBackoff', 'bulwark.retry', 'cockatiel.retry', undefined, 'p.retry'],
  ['withTimeout', 'bulwark.timeout', 'cockatiel.timeout', undefined, 'p.timeout'],
  ['Bulkhead', 'bulwark.bulkhead', 'cockatiel.bulkhead', undefined, 'p.limit'],
  ['withFallback', 'bulwark.fallback', 'cockatiel.fallback'],
  ['full stack', 'bulwark.stack', 'cockatiel.stack', 'opossum.breakerTimeout', 'p.stack'],
];
const PRIMITIVES = SUCCESS_ROWS.slice(1, 6);

/** Code with a policy's duty and none of its bookkeeping: the least each target can cost here. */
const FLOOR_ROWS = [
  ['one reaction to the function\'s promise', 'floor.reaction', 'a policy that sees the outcome costs (breaker, retry, fallback, bulkhead)'],
  ['a promise of its own, settled by that reaction', 'floor.ownPromise', 'a timeout that answers at its deadline costs, when the function ignores its signal'],
  ['the same and one microtask', 'floor.ownPromiseCheck', "bulwark's timeout costs with no bookkeeping: it arms a timer only for a call still pending after its first reaction"],
];

const FAILURE_ROWS = [
  ['open breaker rejects', 'bulwark.open', 'cockatiel.open', 'opossum.open'],
  ['fails twice, succeeds 3rd (no delay)', 'bulwark.retry3', 'cockatiel.retry3', undefined, 'p.retry3'],
];

export function render({ environment, timing, rates, memory }) {
  const nsOf = (id) => timing.get(id).ns;
  const bare = nsOf('await');
  const newError = nsOf('error.new');
  const cpuOf = (id) => timing.get(id).cpu;
  const peerCell = (peer, own) => (peer === undefined ? '—' : `${int(nsOf(peer))} (${ratio(nsOf(peer) / nsOf(own))})`);
  const cpuCell = (id, reference) => `${int(cpuOf(id))} (${ratio(cpuOf(id) / cpuOf(reference))})`;

  const success = table([
    ['case', 'bulwark ns/call', '× bare await', 'spread', 'CPU ns/call (× bare)', 'cockatiel ns (÷ bulwark)', 'opossum ns (÷ bulwark)', 'p-* ns (÷ bulwark)'],
    ...SUCCESS_ROWS.map(([label, own, cockatiel, opossum, p]) => [
      label,
      int(nsOf(own)),
      ratio(nsOf(own) / bare),
      percent(timing.get(own).spread),
      cpuCell(own, 'await'),
      peerCell(cockatiel, own),
      peerCell(opossum, own),
      peerCell(p, own),
    ]),
  ]);

  const failure = table([
    ['case', 'bulwark ns/call', '× new Error()', 'spread', 'CPU ns/call (× new Error())', 'cockatiel ns (÷ bulwark)', 'opossum ns (÷ bulwark)', 'p-retry ns (÷ bulwark)'],
    ...[
      ['`new Error()`', 'error.new'],
      ['async `throw new Error()`, caught', 'error.asyncThrow'],
    ].map(([label, id]) => [label, int(nsOf(id)), ratio(nsOf(id) / newError), percent(timing.get(id).spread), cpuCell(id, 'error.new'), '—', '—', '—']),
    ...FAILURE_ROWS.map(([label, own, cockatiel, opossum, p]) => [
      label,
      int(nsOf(own)),
      own === 'bulwark.open' ? ratio(nsOf(own) / newError) : '—',
      percent(timing.get(own).spread),
      own === 'bulwark.open' ? cpuCell(own, 'error.new') : int(cpuOf(own)),
      peerCell(cockatiel, own),
      peerCell(opossum, own),
      peerCell(p, own),
    ]),
  ]);

  const every = table([
    ['case: setup', 'ns/call', '× bare await', 'spread', 'CPU ns/call', 'calls in a sample'],
    ...[...timing.keys()].map((id) => [
      `${id}: \`${timing.get(id).describe}\``,
      int(nsOf(id)),
      ratio(nsOf(id) / bare),
      percent(timing.get(id).spread),
      int(cpuOf(id)),
      int(timing.get(id).calls),
    ]),
  ]);

  const floors = table([
    ['floor', 'ns/call', '× bare await', 'spread', 'CPU ns/call (× bare)', 'the least that'],
    ...FLOOR_ROWS.map(([label, id, bounds]) => [label, int(nsOf(id)), ratio(nsOf(id) / bare), percent(timing.get(id).spread), cpuCell(id, 'await'), bounds]),
  ]);

  const bulkheadRate = rates.get('bulwark.bulkhead');
  const limitRate = rates.get('p.limit');
  const throughputTable = table([
    ['case', 'tasks/s', 'spread', '÷ p-limit'],
    ...[...rates].map(([id, rate]) => [`\`${rate.describe}\``, int(rate.perSecond), percent(rate.spread), ratio(rate.perSecond / limitRate.perSecond)]),
  ]);

  const m = memory;
  const growth = ((m.heapAfter - m.heapBefore) / m.heapBefore) * 100;
  const timerCell = (t) => `${t.all} (${t.ref} ref'd)`;
  const handles = (resources) => {
    const others = resources.filter((type) => type !== 'Timeout');
    return others.length === 0 ? '0' : `${others.length} (${others.join(', ')})`;
  };
  const memoryTable = table([
    ['measure', 'bulwark', 'cockatiel', 'opossum'],
    [
      'heap bytes per idle breaker',
      int(m.bulwarkBreaker.bytes),
      int(m.cockatielBreaker.bytes),
      `${int(m.opossumBreaker.bytes)} (of ${int(m.opossumBreaker.count)})`,
    ],
    ['timers per idle breaker', String(m.bulwarkBreaker.timers), String(m.cockatielBreaker.timers), String(m.opossumBreaker.timers)],
    [`live timers before ${int(m.calls)} full-stack calls`, timerCell(m.timersBefore), '', ''],
    [`live timers right after the calls`, timerCell(m.timersAfterCalls), '', ''],
    [`live timers ${int(m.timeout + 100)} ms later`, timerCell(m.timersAfterDeadline), '', ''],
    ['other active handles before → right after the calls', `${handles(m.resourcesBefore)} → ${handles(m.resourcesAfterCalls)}`, '', ''],
    ['heap before → after the calls (after GC)', `${int(m.heapBefore)} → ${int(m.heapAfter)} B (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} %)`, '', ''],
  ]);

  const targets = [];
  const target = (text, measured, met) => targets.push(`- target ${text} : measured ${measured} → ${met ? 'met' : 'NOT met'}`);
  // A timed target: judged on the wall-clock medians; the CPU-time ratio is shown beside it.
  const timed = (text, numerator, denominator, passes) => {
    const wall = nsOf(numerator) / nsOf(denominator);
    target(text, `${ratio(wall)} (CPU time: ${ratio(cpuOf(numerator) / cpuOf(denominator))})`, passes(wall));
  };
  const atMost = (limit) => (value) => value <= limit;
  const fasterBy = (factor) => (value) => value >= factor;
  const floorOf = (id) => ` (floor here: ${ratio(nsOf(id) / bare)})`;
  for (const [label, own] of PRIMITIVES) {
    timed(`${label} alone ≤ 2× bare await${floorOf(own === 'bulwark.timeout' ? 'floor.ownPromise' : 'floor.reaction')}`, own, 'await', atMost(2));
  }
  timed('full stack ≤ 4× bare await', 'bulwark.stack', 'await', atMost(4));
  timed("full stack ≥ 20× faster than cockatiel's stack (Aggressive timeout)", 'cockatiel.stack', 'bulwark.stack', fasterBy(20));
  timed("full stack ≥ 20× faster than cockatiel's stack with the Cooperative timeout (for reference)", 'cockatiel.stackCooperative', 'bulwark.stack', fasterBy(20));
  timed("full stack ≥ 3× faster than opossum's breaker (timeout 1 s)", 'opossum.breakerTimeout', 'bulwark.stack', fasterBy(3));
  timed('open-breaker rejection ≤ 1.5× one new Error()', 'bulwark.open', 'error.new', atMost(1.5));
  target("bulkhead ≥ 2× p-limit's throughput", ratio(bulkheadRate.perSecond / limitRate.perSecond), bulkheadRate.perSecond / limitRate.perSecond >= 2);
  target('idle breaker < 1 KB (1 024 B)', `${int(m.bulwarkBreaker.bytes)} B`, m.bulwarkBreaker.bytes < 1024);
  target('idle breaker arms no timer', `${m.bulwarkBreaker.timers} per breaker`, m.bulwarkBreaker.timers === 0);
  target(
    `no timer left right after ${int(m.calls)} calls`,
    `${timerCell(m.timersAfterCalls)}, ${m.timersBefore.all} before`,
    m.timersAfterCalls.all - m.timersBefore.all === 0,
  );
  target(
    `no timer left ${int(m.timeout + 100)} ms after the last call`,
    timerCell(m.timersAfterDeadline),
    m.timersAfterDeadline.all - m.timersBefore.all === 0,
  );
  target(`heap after ${int(m.calls)} calls within 10 % of before`, `${growth >= 0 ? '+' : ''}${growth.toFixed(1)} %`, Math.abs(growth) <= 10);

  // The engine's targets: each primitive against the plain promise code that does its duty, and
  // against the fastest peer that offers the same primitive.
  const engineTargets = [];
  for (const [label, own] of PRIMITIVES) {
    // A timeout's duty includes arming a timer for a call still pending; the cheapest way to know
    // one is pending is one microtask after it started, so that microtask is part of its floor.
    const floor = own === 'bulwark.timeout' ? 'floor.ownPromiseCheck' : 'floor.reaction';
    const wall = nsOf(own) / nsOf(floor);
    engineTargets.push(`- target ${label} alone within 2× of its floor (${floor}) : measured ${ratio(wall)} (CPU time: ${ratio(cpuOf(own) / cpuOf(floor))}) → ${wall <= 2 ? 'met' : 'NOT met'}`);
  }
  for (const [label, own, ...peers] of PRIMITIVES) {
    const present = peers.filter((peer) => peer !== undefined);
    const fastest = present.reduce((best, peer) => (nsOf(peer) < nsOf(best) ? peer : best));
    const wall = nsOf(fastest) / nsOf(own);
    engineTargets.push(`- target ${label} alone at least as fast as the fastest peer (${fastest}) : measured ${ratio(wall)} (CPU time: ${ratio(cpuOf(fastest) / cpuOf(own))}) → ${wall >= 1 ? 'met' : 'NOT met'}`);
  }

  const e = environment;
  const busy = Math.max(...e.load) > e.cores / 2;
  return [
    `- Node ${e.node} (${e.platform}); CPU ${e.cpu}, ${e.cores} cores; ${e.date}`,
    `- bulwark ${e.bulwark}; peers: ${e.peers.join(', ')}`,
    `- ${e.cases} cases interleaved in one process, median of ${e.rounds} rounds of ~${e.sampleMs} ms samples after a warm-up (timing took ${e.seconds.toFixed(0)} s)`,
    `- 1-min load average: ${e.load[0].toFixed(2)} before, ${e.load[1].toFixed(2)} after`,
    ...(busy
      ? [
          '',
          `Warning: the 1-min load average (${e.load.map((l) => l.toFixed(1)).join(' → ')}) says other processes were running on these ${e.cores} cores. Wall-clock figures swing under such load and the cheap cases (bare \`await\`) suffer most; compare the CPU-time column, and rerun on a quiet machine before trusting a ratio near its target.`,
        ]
      : []),
    '',
    '### Success path: `async () => 1` through each policy',
    '',
    success,
    '',
    "ns/call: wall-clock median. (n×) after a peer's time = peer time ÷ bulwark time: above 1, bulwark is faster. spread = (slowest − fastest round) ÷ median. CPU ns/call: median CPU time of this process per call (all threads; unmoved by other processes, blind to waiting for timers).",
    '',
    '### Floors: the same duty with no bookkeeping',
    '',
    floors,
    '',
    'A floor is plain promise code that does the least a policy must do, and nothing else. No implementation that keeps the contract can cost less here, so a target below its floor cannot be met on this machine.',
    '',
    '### Failure paths',
    '',
    failure,
    '',
    `### Throughput: ${int(environment.tasks)} tasks submitted at once, then awaited (median of ${environment.throughputRounds} rounds)`,
    '',
    throughputTable,
    '',
    '### Memory and timers',
    '',
    memoryTable,
    '',
    `Idle breakers: ${int(m.bulwarkBreaker.count)} bulwark and cockatiel, ${int(m.opossumBreaker.count)} opossum (each starts intervals; shut down after). Timers: every live timer, unref'd included; "ref'd" are those \`process.getActiveResourcesInfo()\` lists.`,
    '',
    '### Goals',
    '',
    'Timed targets are judged on the wall-clock medians; the ratio of CPU times is shown beside them.',
    '',
    ...targets,
    '',
    '### Goals of the engine',
    '',
    "Each primitive against its floor, and against the fastest peer that offers it (above 1, bulwark is faster). What tracking costs is measured by `node bench/metrics.mjs`.",
    '',
    ...engineTargets,
    '',
    '### Every case',
    '',
    every,
  ].join('\n');
}

export function document(text) {
  return [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (`bench/hot-path.mjs`); do not edit by hand. Figures depend on the',
    'machine: read the ratios, which were measured in one process, not the nanoseconds.',
    '',
    text,
    '',
  ].join('\n');
}
