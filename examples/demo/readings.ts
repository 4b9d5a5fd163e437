/**
 * What the dashboard shows, read from two sources only: the metrics registry's snapshots and
 * the upstream's own counters. Rates and recent percentiles are differences between two
 * samples; nothing is counted on the side. A dependency's client (a resilientFetch) names
 * each of its policies `<dependency>:<origin>` (its timeouts `…:total` and `…:attempt`), so a
 * policy is found by its name and its kind; the fallback around it is `<dependency>.fallback`.
 */
import type { CircuitState, LatencySnapshot, MetricsSnapshot, PolicyMetricsSnapshot } from 'bulwark';
import type { Dependency } from './stacks.js';
import type { Upstream, UpstreamCounters, UpstreamLatency } from './upstream.js';

/** Bucket bounds of every latency histogram, in ms: fine around the timeouts (150–300 ms), where the interesting latencies are. */
export const LATENCY_BUCKETS: readonly number[] = [2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 175, 200, 250, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000];

/** One reading of everything, taken at one tick. */
export interface Sample {
  /** ms since the run started (monotonic). */
  readonly at: number;
  readonly snapshot: MetricsSnapshot;
  /** A copy of the upstream's counters at the same moment. */
  readonly upstream: ReadonlyMap<string, Readonly<UpstreamCounters>>;
  /** A copy of the upstream's latency histograms at the same moment. */
  readonly upstreamLatency: ReadonlyMap<string, LatencySnapshot>;
}

/** Takes a sample: the registry's snapshot and a copy of the upstream's counters and histograms. */
export function takeSample(at: number, snapshot: MetricsSnapshot, upstream: Pick<Upstream, 'counters' | 'latency'>): Sample {
  return {
    at,
    snapshot,
    upstream: new Map([...upstream.counters].map(([name, counters]) => [name, { ...counters }])),
    upstreamLatency: new Map([...upstream.latency].map(([name, histogram]) => [name, latencySnapshot(histogram)])),
  };
}

/** The upstream's histogram as a registry's latency snapshot, with its percentiles estimated the same way. */
function latencySnapshot(histogram: Readonly<UpstreamLatency>): LatencySnapshot {
  const copy = { count: histogram.count, sum: histogram.sum, buckets: histogram.buckets.map(({ le, count }) => ({ le, count })), p50: 0, p90: 0, p99: 0 };
  const estimate = (q: number): number => recentQuantile(copy, undefined, q) ?? 0;
  return { ...copy, p50: estimate(0.5), p90: estimate(0.9), p99: estimate(0.99) };
}

/** A dependency's counts since the start (or, from {@link rates}, per second over a window). */
export interface Counts {
  /** Calls that entered the stack. */
  readonly calls: number;
  /** Calls the upstream answered with a 2xx (the fallback's successes that are not its own answers). */
  readonly ok: number;
  /** Calls the fallback answered instead (an error, or a response that is not 2xx). */
  readonly fallbacks: number;
  /** Calls the breaker refused (open, or half-open with its trial running). */
  readonly breakerRejections: number;
  /** Calls the bulkhead refused (full, or too long in its queue). */
  readonly bulkheadRejections: number;
  /** Requests the rate limiter refused (their permit further away than its `maxWait`). */
  readonly limiterRejections: number;
  /** Requests the rate limiter made wait for their permit. */
  readonly limiterDelays: number;
  /** Hedged requests started (second attempts of a call). */
  readonly hedges: number;
  /** Calls a hedged request answered first. */
  readonly hedgeWins: number;
  /** Hedged requests the budget kept from starting. */
  readonly hedgesDenied: number;
  /** Attempts a timeout cut: the attempt timeout, or the total timeout of the call. */
  readonly timeouts: number;
  /** Retries made. */
  readonly retries: number;
  /** Calls that rejected to the caller: the stack let an error through. */
  readonly failures: number;
  /** Requests the upstream received. */
  readonly upstreamRequests: number;
  /** Requests the upstream answered `429`: beyond the vendor's rate limit. */
  readonly upstreamLimited: number;
}

const COUNT_KEYS = [
  'calls',
  'ok',
  'fallbacks',
  'breakerRejections',
  'bulkheadRejections',
  'limiterRejections',
  'limiterDelays',
  'timeouts',
  'retries',
  'hedges',
  'hedgeWins',
  'hedgesDenied',
  'failures',
  'upstreamRequests',
  'upstreamLimited',
] as const satisfies readonly (keyof Counts)[];

/** The snapshot of the policy called `name` of `kind` (`circuit-breaker`, `retry`, …); none when the registry tracks no such policy. */
function policy(snapshot: MetricsSnapshot, name: string, kind: string): PolicyMetricsSnapshot | undefined {
  return snapshot.policies.find((candidate) => candidate.name === name && candidate.kind === kind);
}

/** The snapshot of `dependency`'s client's policy of `kind`; `suffix` for its timeouts (`:total`, `:attempt`). */
function clientPolicy(sample: Sample, dependency: Dependency, kind: string, suffix = ''): PolicyMetricsSnapshot | undefined {
  return policy(sample.snapshot, `${dependency.policyName}${suffix}`, kind);
}

/** The snapshot of the fallback around `dependency`'s client. */
function fallbackOf(sample: Sample, dependency: Dependency): PolicyMetricsSnapshot | undefined {
  return dependency.fallback.name === undefined ? undefined : policy(sample.snapshot, dependency.fallback.name, 'fallback');
}

/**
 * A counter of a policy's snapshot by the field its description names (`hedges`,
 * `rateLimitDelays`, …): the registry reads any policy's counters and gauges from its
 * description, so the demo needs to know nothing of a policy but that name.
 */
function field(entry: PolicyMetricsSnapshot | undefined, name: string): number {
  const value = entry?.[name];
  return typeof value === 'number' ? value : 0;
}

/** The counts of `dependency` in `sample`. */
export function counts(sample: Sample, dependency: Dependency): Counts {
  const fallback = fallbackOf(sample, dependency);
  const limiter = clientPolicy(sample, dependency, 'rate-limiter');
  const hedging = clientPolicy(sample, dependency, 'hedge');
  const upstream = sample.upstream.get(dependency.name);
  return {
    calls: fallback?.calls ?? 0,
    // What left the stack under the fallback with a value: the fallback's successes that are not its own answers.
    ok: (fallback?.successes ?? 0) - (fallback?.fallbacks ?? 0),
    fallbacks: fallback?.fallbacks ?? 0,
    breakerRejections: clientPolicy(sample, dependency, 'circuit-breaker')?.rejections ?? 0,
    bulkheadRejections: clientPolicy(sample, dependency, 'bulkhead')?.rejections ?? 0,
    limiterRejections: limiter?.rejections ?? 0,
    limiterDelays: field(limiter, 'rateLimitDelays'),
    // An attempt cut by the total timeout is not cut by its own: the two never count the same attempt.
    timeouts: (clientPolicy(sample, dependency, 'timeout', ':attempt')?.timeouts ?? 0) + (clientPolicy(sample, dependency, 'timeout', ':total')?.timeouts ?? 0),
    retries: clientPolicy(sample, dependency, 'retry')?.retries ?? 0,
    hedges: field(hedging, 'hedges'),
    hedgeWins: field(hedging, 'hedgeWins'),
    hedgesDenied: field(hedging, 'hedgesDenied'),
    failures: fallback?.failures ?? 0,
    upstreamRequests: upstream?.requests ?? 0,
    upstreamLimited: upstream?.limited ?? 0,
  };
}

/** Per-second rates of `dependency` between two samples (zeros when no time passed). */
export function rates(now: Sample, then: Sample, dependency: Dependency): Counts {
  const seconds = (now.at - then.at) / 1000;
  const current = counts(now, dependency);
  const before = counts(then, dependency);
  return Object.fromEntries(COUNT_KEYS.map((key) => [key, seconds > 0 ? (current[key] - before[key]) / seconds : 0])) as Record<keyof Counts, number>;
}

/** The breaker's state in `sample` (from the registry's gauge). */
export function breakerState(sample: Sample, dependency: Dependency): CircuitState | undefined {
  return clientPolicy(sample, dependency, 'circuit-breaker')?.state;
}

/** The bulkhead's gauges in `sample`; none for a stack without a bulkhead. */
export function bulkheadLoad(sample: Sample, dependency: Dependency): { readonly active: number; readonly queued: number } | undefined {
  if (dependency.bulkhead === undefined) return undefined;
  const bulkhead = clientPolicy(sample, dependency, 'bulkhead');
  return { active: bulkhead?.active ?? 0, queued: bulkhead?.queued ?? 0 };
}

/** The rate limiter's gauges in `sample` (its `permits` and `queued`, as its description names them); none without a limiter. */
export function limiterLoad(sample: Sample, dependency: Dependency): { readonly permits: number; readonly queued: number } | undefined {
  if (dependency.rateLimit === undefined) return undefined;
  const limiter = clientPolicy(sample, dependency, 'rate-limiter');
  return { permits: field(limiter, 'permits'), queued: field(limiter, 'queued') };
}

/** The latency histogram of whole calls (what a caller waits, fallback included). */
export function callLatency(sample: Sample, dependency: Dependency): LatencySnapshot | undefined {
  return fallbackOf(sample, dependency)?.latency;
}

/** The histogram of how long the upstream takes to answer `dependency`, by its own clock (the latencies it drew). */
export function upstreamLatency(sample: Sample, dependency: Dependency): LatencySnapshot | undefined {
  return sample.upstreamLatency.get(dependency.name);
}

/** A bucket bound as a number: JSON turns `Infinity` into `null`, some exporters write `"+Inf"`. */
const bound = (le: unknown): number => (typeof le === 'number' && Number.isFinite(le) ? le : Infinity);

/**
 * The `q`-quantile (0.5 for the median) of the calls that finished between `then` and `now`,
 * from the difference of two cumulative histograms; linear within a bucket, as Prometheus'
 * `histogram_quantile` does. Undefined when no call finished in between. In the last bucket
 * (past the highest bound) the answer is that bound: all the histogram knows is "more than".
 */
export function recentQuantile(now: LatencySnapshot | undefined, then: LatencySnapshot | undefined, q: number): number | undefined {
  if (now === undefined) return undefined;
  const earlier = (index: number): number => then?.buckets[index]?.count ?? 0;
  const total = now.count - (then?.count ?? 0);
  if (total <= 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [index, bucket] of now.buckets.entries()) {
    const upper = bound(bucket.le);
    const cumulative = bucket.count - earlier(index);
    if (cumulative >= rank) {
      if (upper === Infinity) return lower;
      const inBucket = cumulative - below;
      return inBucket === 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
    }
    lower = upper;
    below = cumulative;
  }
  return lower;
}
