import { Bulkhead } from './bulkhead.js';
import { CircuitBreaker, type CircuitState } from './circuit-breaker.js';
import { reportListenerError, type Unsubscribe } from './events.js';
import { watchReturned } from './report.js';
import { FallbackPolicy } from './fallback.js';
import { PolicyBase, SingleLayerPolicy, type CallObserver, type Policy } from './policy.js';
import { RetryPolicy } from './retry.js';
import { TimeoutPolicy } from './timeout.js';
import * as validate from './validate.js';

/** The kind of a bulwark policy, as metrics and logs name it. */
export type PolicyKind = 'circuit-breaker' | 'retry' | 'bulkhead' | 'timeout' | 'fallback';

/** The default latency buckets, in ms: from 1 ms to 10 s, about three per decade. */
const DEFAULT_BUCKETS: readonly number[] = Object.freeze([1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000]);

/** Options of {@link MetricsRegistry}. */
export interface MetricsRegistryOptions {
  /**
   * Upper bounds of the latency histogram's buckets, in ms: finite, ≥ 0 and strictly
   * ascending. A last bucket of `+Infinity` is implied (do not list it). A latency equal to a
   * bound falls in that bound's bucket, as in Prometheus (`le`: less than or equal).
   * @default [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
   */
  buckets?: readonly number[] | undefined;
  /**
   * The source of time for latencies: milliseconds from any origin, never going back. Pass a
   * function that needs no `this` (`() => performance.now()`, not `performance.now`).
   * @default performance.now(), looked up again when fake timers replace `Date` and `performance`
   * (vitest's, Jest's and sinon's defaults), so they drive it; with fake timers that replace
   * `performance` alone, pass `now: () => performance.now()`
   */
  now?: (() => number) | undefined;
}

/** Options of {@link MetricsRegistry.track}. */
export interface TrackOptions {
  /**
   * For one policy: its name in the metrics, in place of the `name` it was built with. For a
   * composed stack: the name of its members that were built without one (members with a name
   * keep theirs).
   */
  name?: string | undefined;
}

/** One call that finished in a tracked policy, as {@link MetricsRegistry.onCall} reports it. */
export interface CallSample {
  /** The policy's name in the registry. */
  readonly policy: string;
  readonly kind: PolicyKind;
  /** How long the call spent in the policy (and everything inside it), in ms. */
  readonly durationMs: number;
  /** `'rejection'`: this policy refused the call itself (an open circuit, a full bulkhead). */
  readonly outcome: 'success' | 'failure' | 'rejection';
}

/** A latency histogram, as {@link MetricsRegistry.snapshot} reports it. */
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

/** What a registry knows of one tracked policy. Counters count from the moment it was tracked. */
export interface PolicyMetricsSnapshot {
  readonly name: string;
  readonly kind: PolicyKind;
  /** Calls that entered the policy. Inside a retry, every attempt is a call. */
  readonly calls: number;
  /** Calls that left the policy with a value (a fallback's answer included). */
  readonly successes: number;
  /** Calls that left the policy with an error that this policy did not raise as a refusal (the dependency's errors, an inner policy's rejection, a timeout, a caller's abort). */
  readonly failures: number;
  /** Calls this policy refused itself: an open circuit, a full bulkhead, a queue wait past `queueTimeout`. */
  readonly rejections: number;
  /** `TimeoutError`s this timeout raised (each one is also a failure). */
  readonly timeouts: number;
  /**
   * Retries this retry scheduled: its `retry` events (a call answered at its third attempt
   * counts two). A retry whose backoff an abort or an enclosing timeout cut short counts too.
   */
  readonly retries: number;
  /** Answers this fallback gave in place of a failure (each one is also a success). */
  readonly fallbacks: number;
  readonly latency: LatencySnapshot;
  /** Circuit breakers: the state when the snapshot was taken. */
  readonly state?: CircuitState;
  /** Circuit breakers that report it: the share of failed calls, from 0 to 1. */
  readonly failureRate?: number;
  /** Circuit breakers that report it: the share of slow calls, from 0 to 1. */
  readonly slowCallRate?: number;
  /** Bulkheads: calls holding a slot when the snapshot was taken. */
  readonly active?: number;
  /** Bulkheads: calls waiting in the queue when the snapshot was taken. */
  readonly queued?: number;
}

/** Everything a registry tracks, at one moment. */
export interface MetricsSnapshot {
  /** When the snapshot was taken, in epoch ms. */
  readonly timestamp: number;
  /** One entry per tracked policy, in the order they were tracked (a stack's members outermost first). */
  readonly policies: readonly PolicyMetricsSnapshot[];
}

/**
 * A bulwark policy resolved for tracking: the object, its kind and the name it goes by.
 * @internal
 */
export interface NamedPolicy {
  readonly policy: SingleLayerPolicy<unknown>;
  readonly kind: PolicyKind;
  readonly name: string;
}

/** The kind of a bulwark policy, or undefined for a layer bulwark does not know. @internal */
function kindOf(layer: unknown): PolicyKind | undefined {
  if (layer instanceof CircuitBreaker) return 'circuit-breaker';
  if (layer instanceof RetryPolicy) return 'retry';
  if (layer instanceof Bulkhead) return 'bulkhead';
  if (layer instanceof TimeoutPolicy) return 'timeout';
  if (layer instanceof FallbackPolicy) return 'fallback';
  return undefined;
}

function ownName(policy: SingleLayerPolicy<unknown>): string | undefined {
  const name = (policy as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/**
 * The named bulwark policies of `target`: the policy itself, or the members of a composed
 * stack (foreign layers and members without a name skipped). `caller` names the function in
 * error messages.
 * @internal
 */
export function namedPolicies(caller: string, target: unknown, name: unknown): NamedPolicy[] {
  if (name !== undefined) {
    if (typeof name !== 'string') throw new TypeError(`${caller} name must be a string, got ${validate.show(name)}`);
    if (name === '') throw new RangeError(`${caller} name must not be empty`);
  }
  if (!(target instanceof PolicyBase)) {
    const foreign = typeof target === 'object' && target !== null && typeof (target as { execute?: unknown }).execute === 'function';
    throw new TypeError(
      foreign
        ? `${caller}: expected a bulwark policy or a composed stack, got an object with execute() that is neither (a policy of another library, another copy of bulwark, or a CircuitBreakerGroup: observe the breakers it hands out instead)`
        : `${caller}: expected a bulwark policy or a composed stack, got ${validate.show(target)}`,
    );
  }
  if (target instanceof SingleLayerPolicy) {
    const kind = kindOf(target);
    if (kind === undefined) throw new TypeError(`${caller}: ${target.constructor.name} is not a policy kind bulwark can observe`);
    const resolved = name ?? ownName(target);
    if (resolved === undefined) {
      throw new TypeError(`${caller}: the ${kind} has no name; build it with { name } or pass { name } here`);
    }
    return [{ policy: target, kind, name: resolved }];
  }
  const found: NamedPolicy[] = [];
  const seen = new Set<unknown>();
  for (const { layer } of target.steps) {
    if (seen.has(layer)) continue; // the same policy twice in one stack is one policy
    seen.add(layer);
    if (!(layer instanceof SingleLayerPolicy)) continue; // a foreign layer: nothing to observe
    const kind = kindOf(layer);
    const resolved = ownName(layer) ?? name;
    if (kind !== undefined && resolved !== undefined) found.push({ policy: layer, kind, name: resolved });
  }
  if (found.length === 0) {
    throw new TypeError(`${caller}: the stack has no named bulwark policy; build its policies with { name } or pass { name } here`);
  }
  return found;
}

/**
 * Shares one policy's observer slot between several observers (two registries tracking the
 * same policy). A fan-out never changes: attaching or detaching an observer installs a new
 * one, and the engine finishes a call on the observer that started it, so a call in flight
 * reports to the observers it started with, and an observer added or removed meanwhile sees
 * whole calls only.
 */
class ObserverFanOut implements CallObserver {
  readonly observers: readonly CallObserver[];
  /** The first observer's clock; the others read theirs when it differs. */
  readonly now: () => number;
  /** Each call's tokens from the observers, in their order, by the token this fan-out gave the call. */
  private readonly inFlight = new Map<number, number[]>();
  private nextToken = 0;

  constructor(observers: readonly CallObserver[]) {
    this.observers = observers;
    this.now = (observers[0] as CallObserver).now;
  }

  started(time: number): number {
    const tokens: number[] = [];
    for (const observer of this.observers) {
      try {
        tokens.push(observer.started(observer.now === this.now ? time : observer.now()));
      } catch (thrown) {
        reportListenerError('observer', thrown);
        tokens.push(NaN); // this observer misses the call; the others still see it
      }
    }
    const token = ++this.nextToken;
    this.inFlight.set(token, tokens);
    return token;
  }

  finished(token: number, failed: boolean, error: unknown, time: number): void {
    const tokens = this.inFlight.get(token);
    if (tokens === undefined) return;
    this.inFlight.delete(token);
    this.observers.forEach((observer, at) => {
      const started = tokens[at];
      if (started === undefined || Number.isNaN(started)) return;
      try {
        observer.finished(started, failed, error, observer.now === this.now ? time : observer.now());
      } catch (thrown) {
        reportListenerError('observer', thrown);
      }
    });
  }
}

function attachObserver(policy: SingleLayerPolicy<unknown>, observer: CallObserver): void {
  const current = policy.observer;
  if (current === undefined) policy.observer = observer;
  else if (current instanceof ObserverFanOut) policy.observer = new ObserverFanOut([...current.observers, observer]);
  else policy.observer = new ObserverFanOut([current, observer]);
}

/** Removes `observer` and leaves the policy as if it had never been attached. */
function detachObserver(policy: SingleLayerPolicy<unknown>, observer: CallObserver): void {
  const current = policy.observer;
  if (current === observer) {
    policy.observer = undefined;
  } else if (current instanceof ObserverFanOut) {
    const remaining = current.observers.filter((candidate) => candidate !== observer);
    if (remaining.length === current.observers.length) return;
    // The engine finishes a call on the observer that started it: calls in flight keep the
    // fan-out (and the observers) they started with, so replacing it here loses none.
    if (remaining.length === 1) policy.observer = remaining[0];
    else if (remaining.length === 0) policy.observer = undefined;
    else policy.observer = new ObserverFanOut(remaining);
  }
}

/**
 * The index of the bucket `ms` falls in: the first bound ≥ `ms`, or `bounds.length` for
 * +Infinity. A linear scan for the usual dozen bounds (most calls stop at the first few), a
 * binary search for long lists.
 */
function bucketOf(bounds: readonly number[], ms: number): number {
  const count = bounds.length;
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
 * @internal
 */
export function estimateQuantile(q: number, bounds: readonly number[], cumulative: readonly number[]): number {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (total === 0) return 0;
  const rank = q * total;
  let bucket = 0;
  while (bucket < bounds.length && (cumulative[bucket] ?? 0) < rank) bucket++;
  if (bucket === bounds.length) return bounds[bounds.length - 1] ?? 0;
  const upper = bounds[bucket] ?? 0;
  if (bucket === 0 && upper <= 0) return upper;
  const lower = bucket === 0 ? 0 : (bounds[bucket - 1] ?? 0);
  const below = bucket === 0 ? 0 : (cumulative[bucket - 1] ?? 0);
  const inBucket = (cumulative[bucket] ?? 0) - below;
  // Twelve significant digits: the interpolation's float noise (425.00000000000006) is not a
  // measurement, and a bucket estimate is nowhere near that precise anyway.
  return Number((lower + (upper - lower) * ((rank - below) / inBucket)).toPrecision(12));
}

/** The start of a call whose clock reading failed (threw, NaN, not a number): its outcome still counts, with a latency of 0. */
const UNREADABLE_START = -Infinity;

/** The counters of one tracked policy in one registry; also its observer. */
class PolicyTracker implements CallObserver {
  readonly policy: SingleLayerPolicy<unknown>;
  readonly kind: PolicyKind;
  readonly name: string;
  /** How many `track` calls of the registry hold this policy. */
  holders = 1;
  /** Set once untracked: calls still in flight then are not counted nor reported. */
  detached = false;
  calls = 0;
  successes = 0;
  failures = 0;
  rejections = 0;
  timeouts = 0;
  retries = 0;
  fallbacks = 0;
  latencySum = 0;
  /** Per bucket (not cumulative), the +Infinity bucket last. */
  readonly bucketCounts: Float64Array;
  private readonly registry: MetricsRegistry;
  private readonly bounds: readonly number[];
  /** The registry's clock; the engine reads it once for all the policies a call passes in one go. */
  readonly now: () => number;
  /** Errors this policy refused calls with (from its `rejected` event), to tell its refusals from failures. */
  private readonly ownRejections: WeakSet<object> | undefined;
  private readonly unsubscribes: Unsubscribe[] = [];

  constructor(registry: MetricsRegistry, named: NamedPolicy, bounds: readonly number[], now: () => number) {
    this.registry = registry;
    this.policy = named.policy;
    this.kind = named.kind;
    this.name = named.name;
    this.bounds = bounds;
    this.now = now;
    this.bucketCounts = new Float64Array(bounds.length + 1);
    const policy = named.policy;
    if (policy instanceof CircuitBreaker || policy instanceof Bulkhead) {
      const rejections = new WeakSet<object>();
      this.ownRejections = rejections;
      // Both emit `rejected` before the refused call settles, so `finished` finds the error here.
      const remember = ({ error }: { readonly error: object }): void => {
        rejections.add(error);
      };
      // Two identical branches on purpose: each narrows `policy` to one class, whose own `on` types the event.
      this.unsubscribes.push(policy instanceof CircuitBreaker ? policy.on('rejected', remember) : policy.on('rejected', remember));
    } else {
      this.ownRejections = undefined;
      if (policy instanceof TimeoutPolicy) {
        this.unsubscribes.push(policy.on('timeout', () => {
          this.timeouts++;
        }));
      } else if (policy instanceof RetryPolicy) {
        this.unsubscribes.push(policy.on('retry', () => {
          this.retries++;
        }));
      } else if (policy instanceof FallbackPolicy) {
        this.unsubscribes.push(policy.on('fallback', () => {
          this.fallbacks++;
        }));
      }
    }
    attachObserver(policy, this);
  }

  started(time: number): number {
    this.calls++;
    // NaN stands for a call this tracker did not see start: a clock that failed here still saw it.
    return Number.isNaN(time) ? UNREADABLE_START : time;
  }

  finished(token: number, failed: boolean, error: unknown, time: number): void {
    // NaN: the call started before this policy was tracked (or its start was not observed).
    if (this.detached || Number.isNaN(token)) return;
    let ms = token === UNREADABLE_START ? 0 : time - token;
    if (!(ms > 0)) ms = 0; // a clock that stepped back (or NaN) must not make a negative latency
    const bucket = bucketOf(this.bounds, ms);
    this.bucketCounts[bucket] = (this.bucketCounts[bucket] as number) + 1;
    this.latencySum += ms;
    let outcome: CallSample['outcome'];
    if (!failed) {
      this.successes++;
      outcome = 'success';
    } else if (this.ownRejections !== undefined && typeof error === 'object' && error !== null && this.ownRejections.delete(error)) {
      // Deleted, not only looked up: the same policy twice in one stack counts the refusal once, where it happened.
      this.rejections++;
      outcome = 'rejection';
    } else {
      this.failures++;
      outcome = 'failure';
    }
    const listeners = this.registry.callListeners;
    if (listeners !== undefined) {
      const sample: CallSample = { policy: this.name, kind: this.kind, durationMs: ms, outcome };
      for (const listener of listeners) {
        try {
          watchReturned('an "onCall" listener', listener(sample));
        } catch (thrown) {
          reportListenerError('onCall', thrown);
        }
      }
    }
  }

  /** Stops counting and gives the policy its observer slot back. */
  detach(): void {
    this.detached = true;
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    this.unsubscribes.length = 0;
    detachObserver(this.policy, this);
  }

  snapshot(): PolicyMetricsSnapshot {
    const bounds = this.bounds;
    const cumulative: number[] = [];
    let running = 0;
    for (const count of this.bucketCounts) cumulative.push((running += count));
    const buckets = cumulative.map((count, at) => ({ le: bounds[at] ?? Infinity, count }));
    const latency: LatencySnapshot = {
      count: running,
      sum: this.latencySum,
      buckets,
      p50: estimateQuantile(0.5, bounds, cumulative),
      p90: estimateQuantile(0.9, bounds, cumulative),
      p99: estimateQuantile(0.99, bounds, cumulative),
    };
    const counters = {
      name: this.name,
      kind: this.kind,
      calls: this.calls,
      successes: this.successes,
      failures: this.failures,
      rejections: this.rejections,
      timeouts: this.timeouts,
      retries: this.retries,
      fallbacks: this.fallbacks,
      latency,
    };
    const policy = this.policy;
    if (policy instanceof CircuitBreaker) return { ...counters, state: policy.state, ...breakerRates(policy) };
    if (policy instanceof Bulkhead) return { ...counters, active: policy.active, queued: policy.queued };
    return counters;
  }
}

/** The rates a breaker reports through `stats()`, on versions that have it. */
function breakerRates(breaker: CircuitBreaker): { failureRate?: number; slowCallRate?: number } {
  const stats = (breaker as { stats?: unknown }).stats;
  if (typeof stats !== 'function') return {};
  const reported: unknown = stats.call(breaker);
  if (typeof reported !== 'object' || reported === null) return {};
  const { failureRate, slowCallRate } = reported as { failureRate?: unknown; slowCallRate?: unknown };
  const rates: { failureRate?: number; slowCallRate?: number } = {};
  if (typeof failureRate === 'number' && Number.isFinite(failureRate)) rates.failureRate = failureRate;
  if (typeof slowCallRate === 'number' && Number.isFinite(slowCallRate)) rates.slowCallRate = slowCallRate;
  return rates;
}

/** A consumer of the registry's tracked policies (logPolicyEvents on a registry). */
interface PolicyWatcher {
  readonly onTrack: (tracked: NamedPolicy) => Unsubscribe;
  readonly stops: Map<PolicyTracker, Unsubscribe>;
}

/**
 * `performance.now()`, or `Date.now()` where there is none. The registry's clock is read twice
 * per call, and in Node reading the global `performance` runs a getter that costs nearly half
 * as much as the reading itself; so the function is looked up once, and again whenever the
 * global `Date` has changed. Fake timers replace `Date` and `performance` together (vitest's,
 * Jest's and sinon's defaults), so fake timers installed or uninstalled after the registry was
 * made still drive it.
 */
function defaultNow(): () => number {
  return (sharedDefaultNow ??= makeDefaultNow());
}

/**
 * One default clock for every registry: the engine reads a clock once per pass for all the
 * observers that share it, so two registries on the default clock share their reads too.
 */
let sharedDefaultNow: (() => number) | undefined;

function makeDefaultNow(): () => number {
  if (typeof performance === 'undefined') return () => Date.now();
  let dateSeen = Date;
  let read = readerOf(performance);
  return () => {
    if (Date !== dateSeen) {
      dateSeen = Date;
      read = readerOf(performance);
    }
    return read();
  };
}

function readerOf(clock: { now(): number }): () => number {
  return clock.now.bind(clock);
}

function validateBuckets(value: unknown): readonly number[] {
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

/**
 * Collects metrics from bulwark policies: per policy, calls, successes, failures, rejections,
 * timeouts, retries, fallbacks, a latency histogram with p50/p90/p99 estimates, and live
 * gauges (breaker state and rates, bulkhead `active`/`queued`).
 *
 * A policy nobody tracks pays nothing. A tracked one pays two clock reads, a few counter
 * increments and one bucket search per call; the counters of refusals, timeouts, retries and
 * fallbacks come from the policies' events, which fire off the success path.
 *
 * Names: a policy is tracked under the `name` it was built with, or the `name` given to
 * `track`; in a composed stack, members without a name are skipped (or take `track`'s
 * `name`), and a foreign layer is skipped. Two different policies of one kind may not share
 * a name in one registry (their series would merge); one policy may be tracked again (two
 * stacks sharing a bulkhead): it is counted once, until its last `track` is undone.
 *
 * @example
 * ```ts
 * const registry = new MetricsRegistry();
 * registry.track(compose(
 *   withFallback(cachedPrices, { name: 'prices' }),
 *   new CircuitBreaker({ name: 'prices' }),
 *   withTimeout(2_000, { name: 'prices' }),
 * ));
 * setInterval(() => console.log(JSON.stringify(registry.snapshot())), 10_000);
 * ```
 */
export class MetricsRegistry {
  /** The latency buckets' upper bounds in ms, ascending (+Infinity implied). */
  readonly buckets: readonly number[];
  /** @internal */
  callListeners: readonly ((sample: CallSample) => void)[] | undefined = undefined;
  private readonly now: () => number;
  /** The bounds as a plain array: indexing a frozen one is slower on the hot path. */
  private readonly searchBounds: readonly number[];
  private readonly trackers = new Map<SingleLayerPolicy<unknown>, PolicyTracker>();
  private readonly byKindAndName = new Map<string, PolicyTracker>();
  private readonly watchers = new Set<PolicyWatcher>();

  constructor(options?: MetricsRegistryOptions) {
    const opts = validate.options('MetricsRegistry', options, ['buckets', 'now']);
    this.buckets = opts.buckets === undefined ? DEFAULT_BUCKETS : validateBuckets(opts.buckets);
    this.searchBounds = [...this.buckets];
    this.now = opts.now === undefined ? defaultNow() : validate.fn('MetricsRegistry now', opts.now);
  }

  /**
   * Starts collecting metrics of a bulwark policy, or of the named members of a composed
   * stack. Returns the function that stops (calling it again does nothing); counters of a
   * policy tracked again later start from zero.
   *
   * Throws a `TypeError` for something that is not a bulwark policy, for a policy without a
   * name (and no `options.name`), and for a stack with no named member; a `RangeError` when
   * another policy of the same kind already goes by that name here. Nothing is tracked then.
   *
   * @example
   * ```ts
   * const untrack = registry.track(new Bulkhead({ maxConcurrent: 10 }), { name: 'search' });
   * untrack(); // the bulkhead is as if never tracked
   * ```
   */
  track(policy: Policy<any>, options?: TrackOptions): () => void {
    const opts = validate.options('track', options, ['name']);
    const named = namedPolicies('track', policy, opts.name);
    // Check every member before touching any, so a refused track leaves nothing half-done.
    const fresh = new Map<string, NamedPolicy>();
    for (const candidate of named) {
      const existing = this.trackers.get(candidate.policy);
      if (existing !== undefined) {
        if (existing.name !== candidate.name) {
          throw new RangeError(`track: this ${candidate.kind} is already tracked as ${JSON.stringify(existing.name)}, not ${JSON.stringify(candidate.name)}`);
        }
        continue;
      }
      const key = `${candidate.kind}\u0000${candidate.name}`;
      if (this.byKindAndName.has(key) || fresh.has(key)) {
        throw new RangeError(`track: another ${candidate.kind} named ${JSON.stringify(candidate.name)} is already tracked; give each one its own name`);
      }
      fresh.set(key, candidate);
    }
    const held: PolicyTracker[] = [];
    for (const candidate of named) {
      let tracker = this.trackers.get(candidate.policy);
      if (tracker === undefined) {
        tracker = new PolicyTracker(this, candidate, this.searchBounds, this.now);
        this.trackers.set(candidate.policy, tracker);
        this.byKindAndName.set(`${candidate.kind}\u0000${candidate.name}`, tracker);
        for (const watcher of this.watchers) this.startWatching(watcher, tracker);
      } else {
        tracker.holders++;
      }
      held.push(tracker);
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const tracker of held) this.release(tracker);
    };
  }

  /**
   * What every tracked policy has counted so far, with its gauges read now. Plain data: it
   * survives `JSON.stringify`, except that the last latency bucket's `le: Infinity` becomes
   * `null` there (that bucket always holds every call).
   *
   * @example
   * ```ts
   * const { policies } = registry.snapshot();
   * for (const p of policies) console.log(p.name, p.kind, p.calls, p.failures, p.latency.p99, p.state ?? '');
   * ```
   */
  snapshot(): MetricsSnapshot {
    const policies: PolicyMetricsSnapshot[] = [];
    for (const tracker of this.trackers.values()) policies.push(tracker.snapshot());
    return { timestamp: Date.now(), policies };
  }

  /**
   * Calls `listener` once for every call that finishes in a tracked policy (a call through a
   * stack of three tracked policies makes three samples). Costs nothing while nobody listens;
   * a listener that throws is reported and the call goes on. Returns the function that
   * unsubscribes.
   *
   * @example
   * ```ts
   * registry.onCall(({ policy, kind, durationMs, outcome }) => {
   *   if (durationMs > 1_000) console.warn(`${kind} ${policy}: slow ${outcome} (${Math.round(durationMs)} ms)`);
   * });
   * ```
   */
  onCall(listener: (sample: CallSample) => void): () => void {
    validate.fn('onCall listener', listener);
    const entry = (sample: CallSample): void => listener(sample); // a distinct identity, so the same function can subscribe twice
    this.callListeners = [...(this.callListeners ?? []), entry];
    return () => {
      const current = this.callListeners;
      if (current === undefined) return;
      const remaining = current.filter((candidate) => candidate !== entry);
      this.callListeners = remaining.length === 0 ? undefined : remaining;
    };
  }

  /**
   * Calls `onTrack` for every policy tracked now and later; the function it returns runs when
   * that policy is untracked or the watch stops.
   * @internal
   */
  watchPolicies(onTrack: (tracked: NamedPolicy) => Unsubscribe): Unsubscribe {
    const watcher: PolicyWatcher = { onTrack, stops: new Map() };
    this.watchers.add(watcher);
    for (const tracker of this.trackers.values()) this.startWatching(watcher, tracker);
    return () => {
      if (!this.watchers.delete(watcher)) return;
      for (const stop of watcher.stops.values()) stop();
      watcher.stops.clear();
    };
  }

  private startWatching(watcher: PolicyWatcher, tracker: PolicyTracker): void {
    watcher.stops.set(tracker, watcher.onTrack({ policy: tracker.policy, kind: tracker.kind, name: tracker.name }));
  }

  private release(tracker: PolicyTracker): void {
    if (--tracker.holders > 0) return;
    tracker.detach();
    this.trackers.delete(tracker.policy);
    this.byKindAndName.delete(`${tracker.kind}\u0000${tracker.name}`);
    for (const watcher of this.watchers) {
      const stop = watcher.stops.get(tracker);
      if (stop === undefined) continue;
      watcher.stops.delete(tracker);
      stop();
    }
  }
}
