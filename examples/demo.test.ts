/**
 * `npm run demo` as a user runs it: a real process, real HTTP servers, real time. Short runs
 * (the scenario scales with `--duration`), so the whole story (healthy, errors, slow, outage,
 * recovery, and the rush of geocoding calls beyond its vendor's rate limit) still happens.
 * The pure parts (percentiles from histograms, the layout, the terminal bookkeeping, the
 * options) are tested in-process.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MetricsRegistry, type LatencySnapshot } from 'bulwark';
import { parseArguments } from './demo/cli.js';
import { renderFrame, renderSummary, type DependencyView, type View } from './demo/dashboard.js';
import { recentQuantile } from './demo/readings.js';
import { runDemo } from './demo/run.js';
import { phases, vendorLimits } from './demo/scenario.js';
import { buildDependencies, dependencyNames, type DependencyName } from './demo/stacks.js';
import { FullScreen, fit, palette, screen, stripAnsi, visibleWidth } from './demo/terminal.js';
import { startUpstream } from './demo/upstream.js';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Calls per second the demo makes to each dependency (see demo/stacks.ts), unless a phase asks for more. */
const RATES: Readonly<Record<DependencyName, number>> = { payments: 30, inventory: 60, recommendations: 40, geocoding: 12, pricing: 50 };

/** The calls the script makes to `name` over a run of `seconds`: each phase's rate for its share of the run. */
function expectedCalls(name: DependencyName, seconds: number): number {
  return phases.reduce((sum, phase, index) => {
    const end = phases[index + 1]?.start ?? 1;
    return sum + (phase.demand?.[name] ?? RATES[name]) * (end - phase.start) * seconds;
  }, 0);
}

interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `examples/demo.ts` in its own Node process (tsx as a loader, so signals reach the demo
 * itself), stdout a pipe: no terminal. `onOutput` sees stdout as it grows and may signal the child.
 */
function runProcess(args: readonly string[], onOutput?: (stdout: string, child: ReturnType<typeof spawn>) => void): Promise<Finished> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo.ts', ...args], {
    cwd: root,
    env: { ...process.env, TSX_TSCONFIG_PATH: 'examples/tsconfig.json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    onOutput?.(stdout, child);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The rows under the summary table whose header starts with `header`, split on spaces (a latency such as "12 ms" takes two cells). */
function summaryTable(stdout: string, header: string): Map<string, string[]> {
  const lines = stdout.split('\n');
  const at = lines.findIndex((line) => line.startsWith(`${header} `) && !line.includes('phase'));
  expect(at, `a table headed "${header}" in:\n${stdout}`).toBeGreaterThanOrEqual(0);
  const rows = new Map<string, string[]>();
  for (const line of lines.slice(at + 1, at + 1 + dependencyNames.length)) {
    const [name = '', ...cells] = line.trim().split(/\s+/);
    rows.set(name, cells);
  }
  return rows;
}

const count = (cell: string | undefined): number => Number((cell ?? '').replaceAll(',', '').replace('×', ''));

/** A latency the summary printed as two cells ("97 ms", "1.2 s"), in ms. */
const latency = (value: string | undefined, unit: string | undefined): number => Number(value) * (unit === 's' ? 1_000 : unit === 'ms' ? 1 : Number.NaN);

describe('npm run demo without a terminal', () => {
  it('prints plain periodic lines and a summary with plausible numbers, then exits 0 by itself', async () => {
    const seconds = 3;
    const { code, signal, stdout, stderr } = await runProcess(['--duration', String(seconds)]);

    expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(stdout).not.toContain('\x1b'); // no escapes in a pipe
    // Every phase, in order.
    const announced = [...stdout.matchAll(/phase (\d)\/5 ([a-z ]+):/g)].map(([, number, title]) => `${number} ${title}`);
    expect(announced).toEqual(phases.map((phase, index) => `${index + 1} ${phase.title}`));
    // A line per dependency about every second.
    for (const name of dependencyNames) {
      const lines = stdout.match(new RegExp(`^ +\\d+\\.\\ds  ${name} +(closed|open|half-open) +calls [\\d.]+/s  ok [\\d.]+/s  fallback [\\d.]+/s  rejected [\\d.]+/s  timeouts [\\d.]+/s  p50 \\S+ m?s  p99 \\S+ m?s  upstream [\\d.]+ req/s`, 'gm'));
      expect(lines?.length ?? 0, `periodic lines of ${name}`).toBeGreaterThanOrEqual(seconds - 1);
    }
    // ... with what the rate limiter and the hedging did.
    expect(stdout.match(/  geocoding .* limiter delayed [\d.]+\/s refused [\d.]+\/s queued \d+ permits \d+\/2  vendor allows 20\/s, answered 429 to \d+/g)?.length ?? 0).toBeGreaterThanOrEqual(seconds - 1);
    expect(stdout.match(/  pricing .* hedges [\d.]+\/s won [\d.]+\/s denied [\d.]+\/s  upstream p99 \S+ m?s/g)?.length ?? 0).toBeGreaterThanOrEqual(seconds - 1);

    expect(stdout).toMatch(/demo summary · \d+\.\d s · [\d,]+ calls, [\d,]+ upstream requests\nevery call answered, none with an error\n/);
    const calls = summaryTable(stdout, 'stack');
    const upstream = summaryTable(stdout, 'upstream');
    for (const name of dependencyNames) {
      const [total, ok, fallbacks, breakerRejections, bulkheadRejections] = (calls.get(name) ?? []).map(count);
      // The load follows the script: about rate × duration calls, each answered once, by the upstream or the fallback.
      expect(total).toBeGreaterThanOrEqual(expectedCalls(name, seconds) * 0.5);
      expect(total).toBeLessThanOrEqual(expectedCalls(name, seconds) * 1.5);
      expect((ok ?? 0) + (fallbacks ?? 0)).toBe(total);
      expect(ok).toBeGreaterThan(0);
      expect(fallbacks).toBeGreaterThanOrEqual((breakerRejections ?? 0) + (bulkheadRejections ?? 0));
      // The outage opened the breaker.
      const [requests, , , , , , , opened] = (upstream.get(name) ?? []).map(count);
      expect(requests).toBeGreaterThan(0);
      expect(opened, `${name}'s breaker opened`).toBeGreaterThanOrEqual(1);
    }
    // The open breakers then refused calls the fallback answered (the busiest three surely, in so short an outage).
    for (const name of ['payments', 'inventory', 'recommendations'] as const) expect(count(calls.get(name)?.[3]), `${name}'s breaker refused calls`).toBeGreaterThan(0);
    // Each outage left its own mark on the server's counters: 503s, dropped connections, requests cut off by a timeout.
    expect(count(upstream.get('payments')?.[3])).toBeGreaterThan(0);
    expect(count(upstream.get('inventory')?.[5])).toBeGreaterThan(0);
    expect(count(upstream.get('recommendations')?.[6])).toBeGreaterThan(0);
    expect(count(upstream.get('geocoding')?.[3])).toBeGreaterThan(0);
    expect(count(upstream.get('pricing')?.[5])).toBeGreaterThan(0);

    // The rush asked geocoding for more than its vendor allows: the limiter made calls wait for
    // their permit and refused the rest (the fallback answered them), and the vendor had next
    // to nothing to refuse itself. No other dependency has a vendor limit: no 429 anywhere else.
    const [asked, sent, vendor, limited, delayed, refused] = summaryTable(stdout, 'rate limit').get('geocoding') ?? [];
    expect(count(asked)).toBe(count(calls.get('geocoding')?.[0]));
    expect(count(sent)).toBe(count(upstream.get('geocoding')?.[0]));
    expect(vendor).toBe(`${vendorLimits.geocoding?.rate}/s`);
    expect(count(delayed), 'calls the limiter made wait').toBeGreaterThan(0);
    expect(count(refused), 'calls the limiter refused').toBeGreaterThan(0);
    expect(count(calls.get('geocoding')?.[2])).toBeGreaterThanOrEqual(count(refused)); // each refusal answered by the fallback
    expect(count(limited), '429s from the vendor').toBeLessThanOrEqual(2);
    expect(count(upstream.get('geocoding')?.[4])).toBe(count(limited));
    for (const name of ['payments', 'inventory', 'recommendations', 'pricing'] as const) expect(count(upstream.get(name)?.[4])).toBe(0);

    // Pricing's tail (one answer in 20 takes 400 ms or more) started hedges, some of which answered
    // first; the callers' p99 stays under the upstream's own, which is in the tail.
    const [hedgedCalls, hedges, won, , shopP99, shopUnit, upstreamP99, upstreamUnit] = summaryTable(stdout, 'hedging').get('pricing') ?? [];
    expect(count(hedgedCalls)).toBe(count(calls.get('pricing')?.[0]));
    expect(count(hedges), 'hedges started').toBeGreaterThan(0);
    expect(count(won), 'hedges that answered first').toBeGreaterThan(0);
    expect(count(won)).toBeLessThanOrEqual(count(hedges));
    expect(latency(upstreamP99, upstreamUnit)).toBeGreaterThanOrEqual(400);
    expect(latency(shopP99, shopUnit)).toBeLessThan(latency(upstreamP99, upstreamUnit));
    // Each timeline shows the outage (open or half-open cells); after it, the recovery (closed
    // cells) shows on at least one: how soon each breaker's trial succeeds in a 3-second run
    // depends on how busy the machine is, so requiring it of all three would make a flaky test.
    const rows = dependencyNames.map((name) => stdout.split('\n').filter((line) => line.startsWith(`${name} `) && /[▁▄█]/.test(line)).at(-1) ?? '');
    for (const [at, row] of rows.entries()) expect(row, `${dependencyNames[at]}'s timeline`).toMatch(/[▄█]/);
    expect(rows.some((row) => /[▄█]+.*▁/.test(row)), `a timeline that recovers:\n${rows.join('\n')}`).toBe(true);
  }, 60_000);

  it('ends early on SIGINT with exit code 130, after its summary', async () => {
    let sent = false;
    const { code, signal, stdout, stderr } = await runProcess(['--duration', '60'], (output, child) => {
      if (!sent && / payments +(closed|open|half-open) +calls/.test(output)) {
        sent = true;
        child.kill('SIGINT');
      }
    });

    expect(sent).toBe(true);
    expect({ code, signal, stderr }).toEqual({ code: 130, signal: null, stderr: '' });
    expect(stdout).toMatch(/demo summary · interrupted after \d+\.\d s · [\d,]+ calls, [\d,]+ upstream requests\n[\d,]+ calls in flight aborted by the interrupt\n/);
    expect(stdout).toContain('breaker timeline');
  }, 60_000);

  it('refuses a bad --duration with exit code 2 and says why', async () => {
    const { code, stdout, stderr } = await runProcess(['--duration', '-3']);

    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('demo: --duration must be a positive number of seconds, got "-3"');
    expect(stderr).toContain('usage: npm run demo');
  }, 60_000);
});

const hasScript = process.platform === 'linux' && spawnSync('script', ['--version']).status === 0;

/** Runs the demo on a pseudo-terminal (util-linux `script`), 100 × 30; `keys` are typed once the first frame is drawn. */
function runOnTerminal(args: readonly string[], keys?: string): Promise<{ readonly code: number | null; readonly output: string }> {
  const command = `stty cols 100 rows 30; exec '${process.execPath}' --import tsx examples/demo.ts ${args.join(' ')}`;
  const env: NodeJS.ProcessEnv = { ...process.env, TSX_TSCONFIG_PATH: 'examples/tsconfig.json', TERM: 'xterm-256color' };
  delete env['NO_COLOR'];
  const child = spawn('script', ['--quiet', '--flush', '--return', '--command', command, '/dev/null'], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let typed = false;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
    if (keys !== undefined && !typed && output.includes('breaker timeline')) {
      typed = true;
      child.stdin.write(keys);
    }
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      child.stdin.destroy();
      resolve({ code, output });
    });
  });
}

describe.runIf(hasScript)('npm run demo on a terminal', () => {
  /** What follows the last frame: the terminal restored, then the summary. */
  function afterLastFrame(output: string): string {
    const lastFrame = output.lastIndexOf(screen.home);
    expect(lastFrame).toBeGreaterThan(0);
    return output.slice(lastFrame);
  }

  it('draws the dashboard in place and leaves the terminal as it found it', async () => {
    const { code, output } = await runOnTerminal(['--duration', '2']);

    expect(code).toBe(0);
    expect(output.indexOf(screen.enter)).toBeGreaterThanOrEqual(0);
    expect(output.split(screen.home).length - 1).toBeGreaterThanOrEqual(3); // redrawn, not scrolled
    const frame = stripAnsi(output.slice(output.lastIndexOf(screen.home)).split(screen.leave)[0] ?? '');
    for (const text of ['bulwark live demo', 'per second', 'rate limit', 'hedging', 'breaker timeline', ...dependencyNames]) expect(frame).toContain(text);
    // 30 rows are too few for everything: the totals gave way, the timeline is whole.
    expect(frame).not.toContain('since start');
    expect(frame).toMatch(/^pricing +[▁▄█·]+\s*$/m);
    const ending = afterLastFrame(output);
    expect(ending.split(screen.leave)).toHaveLength(2); // left once, after the last frame
    expect(stripAnsi(ending.split(screen.leave)[1] ?? '')).toMatch(/demo summary · \d+\.\d s/);
  }, 60_000);

  it('restores the terminal and exits 130 when Ctrl-C is typed', async () => {
    const { code, output } = await runOnTerminal(['--duration', '60'], '\x03');

    expect(code).toBe(130);
    const ending = afterLastFrame(output);
    expect(ending.split(screen.leave)).toHaveLength(2);
    expect(stripAnsi(ending.split(screen.leave)[1] ?? '')).toMatch(/demo summary · interrupted after/);
  }, 60_000);
});

describe('the demo in-process', () => {
  it('leaves no server, socket, timer or listener behind', async () => {
    const watched = ['TCPServerWrap', 'TCPSocketWrap', 'Timeout', 'Immediate'];
    const resources = (): Record<string, number> => {
      const counts: Record<string, number> = Object.fromEntries(watched.map((name) => [name, 0]));
      for (const name of process.getActiveResourcesInfo()) if (name in counts) counts[name] = (counts[name] ?? 0) + 1;
      return counts;
    };
    const noMoreThanBefore = (): boolean => watched.every((name) => (resources()[name] ?? 0) <= (before.resources[name] ?? 0));
    const listeners = (): number[] => [process.listenerCount('exit'), process.listenerCount('SIGINT')];
    const before = { resources: resources(), listeners: listeners() };
    let written = '';
    const output = { isTTY: true, columns: 90, rows: 40, write: (text: string) => (written += text), on: () => output, off: () => output };

    const result = await runDemo({ durationMs: 1_000, display: 'dashboard', output, interrupt: new AbortController().signal });

    expect(result).toEqual({ interrupted: false, unexpected: 0 });
    expect(written.startsWith(screen.enter)).toBe(true);
    expect(written).toContain(screen.leave);
    expect(listeners()).toEqual(before.listeners);
    // Closed handles leave the list on the next turns of the event loop.
    for (let turn = 0; turn < 100 && !noMoreThanBefore(); turn++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(noMoreThanBefore(), JSON.stringify({ before: before.resources, after: resources() })).toBe(true);
  }, 30_000);
});

describe('the dependencies call the upstream through resilientFetch', () => {
  it('one origin and one client per dependency, its policies in the registry as <name>:<origin>', async () => {
    const upstream = await startUpstream(dependencyNames);
    try {
      const registry = new MetricsRegistry();
      const dependencies = buildDependencies(upstream.origins, registry, 1);
      expect(new Set(dependencies.map((dependency) => dependency.origin)).size).toBe(dependencyNames.length);
      const tracked = registry.snapshot().policies.map((policy) => `${policy.kind} ${policy.name}`);
      const payments = dependencies.find((dependency) => dependency.name === 'payments')!;
      const origin = upstream.origins.get('payments');
      expect(payments.policyName).toBe(`payments:${origin}`);
      for (const kind of ['fetch', 'bulkhead', 'retry', 'circuit-breaker']) expect(tracked).toContain(`${kind} payments:${origin}`);
      expect(tracked).toContain(`timeout payments:${origin}:total`);
      expect(tracked).toContain(`timeout payments:${origin}:attempt`);
      expect(tracked).toContain(`rate-limiter geocoding:${upstream.origins.get('geocoding')}`);
      expect(tracked).toContain(`hedge pricing:${upstream.origins.get('pricing')}`);
      expect(tracked).toContain('fallback payments.fallback');
    } finally {
      await upstream.close();
    }
  });

  it('retries the payments POST (it carries an Idempotency-Key), returns a 503 asking for more time than is left, and the fallback answers both', async () => {
    const upstream = await startUpstream(dependencyNames);
    try {
      const payments = buildDependencies(upstream.origins, new MetricsRegistry(), 1).find((dependency) => dependency.name === 'payments')!;
      const signal = new AbortController().signal;

      upstream.set('payments', { latency: [1, 2], errors: 1 });
      expect(await payments.call(1, signal)).toEqual({ status: 'queued for a later charge' });
      // A POST is retried only with an Idempotency-Key: the first request and its 2 retries.
      expect(upstream.counters.get('payments')).toMatchObject({ requests: 3, errors: 3 });

      upstream.resetCounters();
      upstream.set('payments', { latency: [1, 2], outage: 'unavailable' });
      expect(await payments.call(2, signal)).toEqual({ status: 'queued for a later charge' });
      // Its Retry-After (1 s) would outlast the call's total timeout: returned at once, never retried sooner.
      expect(upstream.counters.get('payments')).toMatchObject({ requests: 1, unavailable: 1 });

      upstream.set('payments', { latency: [1, 2] });
      expect(await payments.call(3, signal)).toMatchObject({ dependency: 'payments', path: '/payments/3' });
    } finally {
      await upstream.close();
    }
  });
});

describe('recentQuantile', () => {
  const histogram = (counts: readonly number[], bounds: readonly number[] = [10, 20, 40]): LatencySnapshot => ({
    count: counts.at(-1) ?? 0,
    sum: 0,
    buckets: counts.map((count, index) => ({ le: bounds[index] ?? Infinity, count })),
    p50: 0,
    p90: 0,
    p99: 0,
  });

  it.each([
    { name: 'median inside the first bucket, from 0', now: [4, 4, 4, 4], then: undefined, q: 0.5, expected: 5 },
    { name: 'linear inside the bucket that holds the rank', now: [0, 4, 4, 4], then: undefined, q: 0.25, expected: 12.5 },
    { name: 'only the calls since the earlier sample', now: [10, 10, 14, 14], then: [10, 10, 10, 10], q: 0.5, expected: 30 },
    { name: 'past the highest bound: that bound', now: [0, 0, 0, 5], then: undefined, q: 0.99, expected: 40 },
  ])('$name', ({ now, then, q, expected }) => {
    expect(recentQuantile(histogram(now), then === undefined ? undefined : histogram(then), q)).toBeCloseTo(expected, 9);
  });

  it('is undefined when no call finished in between', () => {
    expect(recentQuantile(histogram([3, 3, 3, 3]), histogram([3, 3, 3, 3]), 0.5)).toBeUndefined();
    expect(recentQuantile(undefined, undefined, 0.5)).toBeUndefined();
  });

  it('reads a JSON round-tripped histogram, whose Infinity became null', () => {
    const parsed = JSON.parse(JSON.stringify(histogram([0, 0, 0, 2]))) as LatencySnapshot;
    expect(parsed.buckets.at(-1)?.le).toBeNull();
    expect(recentQuantile(parsed, undefined, 0.5)).toBe(40);
  });
});

describe('the layout', () => {
  const dependency = (name: string, state: DependencyView['state'], extra: Partial<DependencyView> = {}): DependencyView => {
    const counts = {
      calls: 1234.5,
      ok: 1000,
      fallbacks: 234.5,
      breakerRejections: 200,
      bulkheadRejections: 12,
      limiterRejections: 345.5,
      limiterDelays: 678,
      timeouts: 17,
      retries: 40,
      hedges: 56.5,
      hedgeWins: 43,
      hedgesDenied: 2,
      failures: 0,
      upstreamRequests: 1100,
      upstreamLimited: 1,
    };
    return {
      name,
      state,
      recent: counts,
      recentP50: 23.4,
      recentP99: 1_234,
      totals: counts,
      latency: { count: 10, sum: 100, buckets: [], p50: 9, p90: 30, p99: 250 },
      inFlight: 3,
      bulkhead: { active: 10, queued: 10, maxConcurrent: 10, maxQueue: 10 },
      upstream: { requests: 123_456, ok: 100_000, errors: 3_000, unavailable: 20_000, limited: 1, dropped: 456, abandoned: 0, inFlight: 0 },
      upstreamLatency: { count: 10, sum: 100, buckets: [], p50: 30, p90: 45, p99: 1_234 },
      recentUpstreamP99: 987,
      timeline: Array.from({ length: 30 }, (_, tick) => (tick % 3 === 0 ? 'open' : tick % 3 === 1 ? 'half-open' : 'closed')),
      path: ['closed', 'open'],
      opened: 12,
      ...extra,
    };
  };
  const limiter = { permits: 1.5, queued: 4, rate: 18, interval: 1_000, burst: 2, maxWait: 250, vendor: { rate: 20, interval: 1_000 } };
  const view: View = {
    elapsedMs: 15_000,
    durationMs: 20_000,
    tickMs: 500,
    windowMs: 2_000,
    upstreamAt: '127.0.0.1 :65531 :65532 :65533 :65534 :65535',
    phase: phases[3] ?? phases[0]!,
    stage: 'running',
    dependencies: [
      dependency('payments', 'open'),
      dependency('inventory', 'half-open'),
      dependency('recommendations', 'closed'),
      dependency('geocoding', 'closed', { bulkhead: undefined, limiter }),
      dependency('pricing', 'isolated', { bulkhead: undefined, hedge: { delay: 60 } }),
    ],
  };

  it.each([40, 60, 80, 100, 120, 200])('never writes past %i columns, so no line wraps', (width) => {
    for (const colour of [true, false]) {
      for (const line of [...renderFrame(view, width, palette(colour)), ...renderSummary(view, width, palette(colour))]) {
        expect(visibleWidth(line), stripAnsi(line)).toBeLessThanOrEqual(width);
      }
    }
  });

  it('shows everything on a terminal of 100 columns', () => {
    const frame = renderFrame(view, 100, palette(false)).join('\n');
    for (const header of ['breaker', 'calls', 'ok', 'fallback', 'rejected', 'timeouts', 'p50', 'p99', 'upstream/s', 'opened', 'upstream saw']) expect(frame).toContain(header);
    const summary = renderSummary(view, 100, palette(false)).join('\n');
    for (const text of ['every call answered, none with an error', 'p90', 'cut off by the caller', 'breaker opened']) expect(summary).toContain(text);
  });

  it('shows the rate limiter and the hedging with their own numbers, read from the view', () => {
    const frame = renderFrame(view, 100, palette(false)).join('\n');
    // asked/s, sent/s, the vendor's limit, its 429s, delayed/s, refused/s, queued, permits (a whole number of the burst).
    expect(frame).toMatch(/^rate limit +asked\/s +sent\/s +vendor +429s +delayed\/s +refused\/s +queued +permits/m);
    expect(frame).toMatch(/^geocoding +1,235 +1,100 +20\/s +1 +678 +346 +4 +1\/2/m);
    // calls/s, hedges/s, won/s, the p99 callers saw, the upstream's own p99, requests sent, hedges denied, the delay.
    expect(frame).toMatch(/^hedging +calls\/s +hedges\/s +won\/s +p99 shop +p99 upstream +sent\/s +denied\/s +delay$/m);
    expect(frame).toMatch(/^pricing +1,235 +57 +43 +1\.2 s +987 ms +1,100 +2\.0 +60 ms$/m);
    // Only the stacks that have one: no rate-limit row for pricing, no hedging row for geocoding; no bulkhead, a dash.
    expect(frame).not.toMatch(/^pricing +1,235 +1,100 +20\/s/m);
    expect(frame).toMatch(/^geocoding +closed .* +—$/m);
    // Rejections count the limiter's refusals too: 200 + 12 + 345.5.
    expect(frame).toMatch(/^geocoding +closed +1,235 +1,000 +235 +558 /m);

    const summary = renderSummary(view, 120, palette(false)).join('\n');
    expect(summary).toMatch(/^geocoding +1,235 +1,100 +20\/s +1 +678 +346 +18\/s \+ 2, waits ≤ 250 ms$/m);
    expect(summary).toMatch(/^pricing +1,235 +57 +43 +2 +250 ms +1\.2 s +60 ms$/m);
    expect(summary).toMatch(/^upstream +requests +200 +500 +503 +429 +dropped/m);
  });

  it('leaves the least telling sections out of a frame too short for all, the footer first', () => {
    const all = renderFrame(view, 100, palette(false));
    const without = (height: number): string => renderFrame(view, 100, palette(false), height).join('\n');
    expect(renderFrame(view, 100, palette(false), all.length)).toEqual(all);
    expect(without(all.length - 1)).not.toContain('Ctrl-C stops');
    expect(without(all.length - 1)).toContain('since start');
    expect(without(29)).not.toContain('since start');
    for (const height of [29, 23]) {
      const frame = renderFrame(view, 100, palette(false), height);
      expect(frame.length).toBeLessThanOrEqual(height);
      for (const text of ['per second', 'rate limit', 'hedging', 'breaker timeline']) expect(frame.join('\n')).toContain(text);
      expect(frame.at(-1)).toMatch(/^ +│/); // the phases under the timeline, the last line drawn
    }
  });

  it('drops whole columns on a narrow terminal, from the right', () => {
    const wide = renderFrame(view, 120, palette(false)).join('\n');
    const narrow = renderFrame(view, 80, palette(false)).join('\n');
    expect(wide).toContain('bulkhead');
    expect(narrow).not.toContain('bulkhead');
    expect(narrow).toContain('timeouts');
  });

  it('shows the breaker states in words and in cells without colour, for logs and captures', () => {
    const frame = renderFrame(view, 120, palette(false)).join('\n');
    expect(frame).toMatch(/^payments +OPEN /m);
    expect(frame).toMatch(/^inventory +half-open /m);
    expect(frame).toMatch(/^recommendations +closed /m);
    expect(frame).toContain(`payments        ${'█▄▁'.repeat(10)}`);
    expect(frame).not.toContain('\x1b');
  });
});

describe('the terminal', () => {
  it('fit cuts the visible text, keeps the escapes and resets the colour it cut', () => {
    const red = palette(true).red;
    expect(fit(`ab${red('cdef')}gh`, 4)).toBe(`ab\x1b[31mcd\x1b[39m\x1b[0m`);
    expect(stripAnsi(fit(`ab${red('cdef')}gh`, 4))).toBe('abcd');
    expect(fit('plain text', 5)).toBe('plain'); // no escape added to plain text
    expect(fit('short', 10)).toBe('short');
  });

  it('FullScreen enters once, draws from the top left, and restores once, also from process exit', () => {
    let written = '';
    const output = { columns: 20, rows: 3, write: (text: string) => (written += text) };
    const exitListeners = process.listenerCount('exit');
    const view = new FullScreen(output);

    view.start();
    view.start();
    expect(process.listenerCount('exit')).toBe(exitListeners + 1);
    view.draw(['a line longer than the terminal is wide', 'two', 'three: past the last row']);
    view.close();
    view.close();
    view.draw(['after close: not drawn']);

    expect(process.listenerCount('exit')).toBe(exitListeners);
    expect(written).toBe(`${screen.enter}${screen.home}a line longer than ${screen.clearLine}\ntwo${screen.clearLine}${screen.clearBelow}${screen.leave}`);
  });
});

describe('parseArguments', () => {
  it.each([
    { argv: [], expected: { durationMs: 20_000, plain: false, help: false } },
    { argv: ['--duration', '8'], expected: { durationMs: 8_000, plain: false, help: false } },
    { argv: ['--duration=2.5', '--plain'], expected: { durationMs: 2_500, plain: true, help: false } },
    { argv: ['--duration', '86400'], expected: { durationMs: 86_400_000, plain: false, help: false } },
    { argv: ['--help'], expected: { durationMs: 20_000, plain: false, help: true } },
  ])('$argv', ({ argv, expected }) => {
    expect(parseArguments(argv)).toEqual(expected);
  });

  it.each([
    { argv: ['--duration', '0'], error: RangeError, message: '--duration must be a positive number of seconds, got "0"' },
    { argv: ['--duration', '-1'], error: RangeError, message: 'got "-1"' },
    { argv: ['--duration', 'soon'], error: RangeError, message: 'got "soon"' },
    { argv: ['--duration', 'Infinity'], error: RangeError, message: 'got "Infinity"' },
    { argv: ['--duration', '86401'], error: RangeError, message: '--duration must be at most 86400 seconds (a day), got "86401"' },
    { argv: ['--duration='], error: RangeError, message: 'got ""' },
    { argv: ['--duration'], error: TypeError, message: '--duration needs a number of seconds' },
    { argv: ['--plain=yes'], error: TypeError, message: '--plain takes no value' },
    { argv: ['--fast'], error: TypeError, message: 'unknown option "--fast"' },
  ])('refuses $argv', ({ argv, error, message }) => {
    expect(() => parseArguments(argv)).toThrow(error);
    expect(() => parseArguments(argv)).toThrow(message);
  });
});
