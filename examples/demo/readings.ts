/**
 * What the dashboard shows, read from two sources only: the metrics registry's snapshots and
 * the upstream's own counters. Rates and recent percentiles are differences between two
 * samples; nothing is counted on the side.
 */
import type { CircuitState, LatencySnapshot, MetricsSnapshot, PolicyMetricsSnapshot } from 'bulwark';
import type { Dependency } from './stacks.js';
import type { UpstreamCounters } from './upstream.js';

/** One reading of everything, taken at one tick. */
export interface Sample {
  /** ms since the run started (monotonic). */
  readonly at: number;
  readonly snapshot: MetricsSnapshot;
  /** A copy of the upstream's counters at the same moment. */
  readonly upstream: ReadonlyMap<string, Readonly<UpstreamCounters>>;
}

/** Takes a sample: the registry's snapshot and a copy of the upstream's counters. */
export function takeSample(at: number, snapshot: MetricsSnapshot, upstream: ReadonlyMap<string, Readonly<UpstreamCounters>>): Sample {
  return { at, snapshot, upstream: new Map([...upstream].map(([name, counters]) => [name, { ...counters }])) };
}

/** A dependency's counts since the start (or, from {@link rates}, per second over a window). */
export interface Counts {
  /** Calls that entered the stack. */
  readonly calls: number;
  /** Calls the upstream answered (successes of the breaker, the layer under the fallback). */
  readonly ok: number;
  /** Calls the fallback answered instead. */
  readonly fallbacks: number;
  /** Calls the breaker refused (open, or half-open with its trial running). */
  readonly breakerRejections: number;
  /** Calls the bulkhead refused (full, or too long in its queue). */
  readonly bulkheadRejections: number;
  /** Attempts the timeout cut. */
  readonly timeouts: number;
  /** Retries made. */
  readonly retries: number;
  /** Calls that rejected to the caller: the stack let an error through. */
  readonly failures: number;
  /** Requests the upstream received. */
  readonly upstreamRequests: number;
}

/** The snapshot of the policy called `name`; none for an unnamed policy, which the registry does not track. */
function policy(snapshot: MetricsSnapshot, name: string | undefined): PolicyMetricsSnapshot | undefined {
  return name === undefined ? undefined : snapshot.policies.find((candidate) => candidate.name === name);
}

/** The counts of `dependency` in `sample`. */
export function counts(sample: Sample, dependency: Dependency): Counts {
  const read = (member: { readonly name: string | undefined } | undefined): PolicyMetricsSnapshot | undefined => policy(sample.snapshot, member?.name);
  const fallback = read(dependency.fallback);
  const breaker = read(dependency.breaker);
  return {
    calls: fallback?.calls ?? 0,
    ok: breaker?.successes ?? 0,
    fallbacks: fallback?.fallbacks ?? 0,
    breakerRejections: breaker?.rejections ?? 0,
    bulkheadRejections: read(dependency.bulkhead)?.rejections ?? 0,
    timeouts: read(dependency.timeout)?.timeouts ?? 0,
    retries: read(dependency.retry)?.retries ?? 0,
    failures: fallback?.failures ?? 0,
    upstreamRequests: sample.upstream.get(dependency.name)?.requests ?? 0,
  };
}

/** Per-second rates of `dependency` between two samples (zeros when no time passed). */
export function rates(now: Sample, then: Sample, dependency: Dependency): Counts {
  const seconds = (now.at - then.at) / 1000;
  const current = counts(now, dependency);
  const before = counts(then, dependency);
  const per = (key: keyof Counts): number => (seconds > 0 ? (current[key] - before[key]) / seconds : 0);
  return {
    calls: per('calls'),
    ok: per('ok'),
    fallbacks: per('fallbacks'),
    breakerRejections: per('breakerRejections'),
    bulkheadRejections: per('bulkheadRejections'),
    timeouts: per('timeouts'),
    retries: per('retries'),
    failures: per('failures'),
    upstreamRequests: per('upstreamRequests'),
  };
}

/** The breaker's state in `sample` (from the registry's gauge). */
export function breakerState(sample: Sample, dependency: Dependency): CircuitState | undefined {
  return policy(sample.snapshot, dependency.breaker.name)?.state;
}

/** The bulkhead's gauges in `sample`. */
export function bulkheadLoad(sample: Sample, dependency: Dependency): { readonly active: number; readonly queued: number } {
  const bulkhead = policy(sample.snapshot, dependency.bulkhead.name);
  return { active: bulkhead?.active ?? 0, queued: bulkhead?.queued ?? 0 };
}

/** The latency histogram of whole calls (what a caller waits, fallback included). */
export function callLatency(sample: Sample, dependency: Dependency): LatencySnapshot | undefined {
  return policy(sample.snapshot, dependency.fallback.name)?.latency;
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
