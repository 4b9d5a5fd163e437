/**
 * Latency histograms: the bucket a latency falls in, and percentiles estimated from buckets.
 */
import * as validate from '../shared/validate.js';

/** The default latency buckets, in ms: from 1 ms to 10 s, about three per decade. */
export const DEFAULT_BUCKETS: readonly number[] = /* @__PURE__ */ Object.freeze([1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000]);

/** A latency histogram, as `MetricsRegistry.snapshot` reports it. */
export interface LatencySnapshot {
  /** Calls measured. */
  readonly count: number;
  /** Their total duration, in ms. */
  readonly sum: number;
  /**
   * Cumulative counts: `count` is the number of calls that took at most `le` ms. The last entry
   * has `le: Infinity` and holds every call; `JSON.stringify` writes that `Infinity` as `null`.
   */
  readonly buckets: readonly { readonly le: number; readonly count: number }[];
  /** The median, estimated from the buckets, in ms (0 when `count` is 0). */
  readonly p50: number;
  /** The 90th percentile, estimated from the buckets, in ms (0 when `count` is 0). */
  readonly p90: number;
  /** The 99th percentile, estimated from the buckets, in ms (0 when `count` is 0). */
  readonly p99: number;
}

/**
 * The index of the bucket `ms` falls in: the first bound ≥ `ms`, or `bounds.length` for
 * +Infinity. A linear scan for the usual dozen bounds (most calls stop at the first few), a
 * binary search for long lists.
 */
export function bucketOf(bounds: readonly number[], ms: number): number {
  const count = bounds.length;
  // Stryker disable next-line ConditionalExpression,EqualityOperator,BlockStatement: for a latency the tracker passes (a number ≥ 0, never NaN) the linear scan and the binary search find the same bucket; the length only picks the faster.
  if (count <= 16) {
    let at = 0;
    while (at < count && ms > (bounds[at] as number)) at++;
    return at;
  }
  let low = 0;
  let high = count;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (ms <= (bounds[middle] as number)) high = middle;
    else low = middle + 1;
  }
  return low;
}

/**
 * The `q` quantile of a histogram, as Prometheus' `histogram_quantile` estimates it: linear
 * interpolation inside the bucket that holds it, the first bucket starting at 0; a quantile in
 * the +Infinity bucket reads as the highest finite bound.
 */
export function estimateQuantile(q: number, bounds: readonly number[], cumulative: readonly number[]): number {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (total === 0) return 0;
  const rank = q * total;
  let bucket = 0;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: the guard only stops at the +Infinity bucket, whose cumulative count (the total) is never below the rank.
  while (bucket < bounds.length && (cumulative[bucket] ?? 0) < rank) bucket++;
  if (bucket === bounds.length) return bounds[bounds.length - 1] ?? 0;
  const upper = bounds[bucket] ?? 0;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: only bounds[0] can be 0 (bounds are ≥ 0 and ascending), and there the interpolation from 0 to 0 gives 0 as well.
  if (bucket === 0 && upper <= 0) return upper;
  // Stryker disable next-line ConditionalExpression: at bucket 0, `bounds[-1] ?? 0` is 0 too.
  const lower = bucket === 0 ? 0 : (bounds[bucket - 1] ?? 0);
  // Stryker disable next-line ConditionalExpression: at bucket 0, `cumulative[-1] ?? 0` is 0 too.
  const below = bucket === 0 ? 0 : (cumulative[bucket - 1] ?? 0);
  const inBucket = (cumulative[bucket] ?? 0) - below;
  // Twelve significant digits: the interpolation's float noise (425.00000000000006) is not a
  // measurement, and a bucket estimate is nowhere near that precise anyway.
  return Number((lower + (upper - lower) * ((rank - below) / inBucket)).toPrecision(12));
}

/** The latency snapshot of per-bucket counts (the +Infinity bucket last). */
export function latencySnapshot(bounds: readonly number[], bucketCounts: Float64Array, sum: number): LatencySnapshot {
  const cumulative: number[] = [];
  let running = 0;
  for (const count of bucketCounts) cumulative.push((running += count));
  return {
    count: running,
    sum,
    buckets: cumulative.map((count, at) => ({ le: bounds[at] ?? Infinity, count })),
    p50: estimateQuantile(0.5, bounds, cumulative),
    p90: estimateQuantile(0.9, bounds, cumulative),
    p99: estimateQuantile(0.99, bounds, cumulative),
  };
}

export function validateBuckets(value: unknown): readonly number[] {
  if (!Array.isArray(value)) throw new TypeError(`MetricsRegistry buckets must be an array of numbers, got ${validate.show(value)}`);
  if (value.length === 0) throw new RangeError('MetricsRegistry buckets must hold at least one bound (+Infinity is implied), got an empty array');
  const bounds: number[] = [];
  value.forEach((bound: unknown, at) => {
    const name = `MetricsRegistry buckets[${at}]`;
    if (bound === Infinity) throw new RangeError(`${name} must be finite: the +Infinity bucket is implied, do not list it`);
    const checked = validate.finite(name, bound, 0);
    const previous = bounds[at - 1];
    if (previous !== undefined && checked <= previous) {
      throw new RangeError(`MetricsRegistry buckets must be strictly ascending, got ${checked} after ${previous} at index ${at}`);
    }
    bounds.push(checked);
  });
  return Object.freeze(bounds);
}
