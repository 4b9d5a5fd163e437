import type { Unsubscribe } from '../events.js';
import type { CircuitState } from '../circuit-breaker/types.js';
import type { KindMetrics } from '../shared/metric-catalog.js';
import { reportCallbackError } from '../shared/report.js';
import * as validate from '../shared/validate.js';
import type { Policy, PolicyDescription } from '../engine/contract.js';
import { DEFAULT_BUCKETS, validateBuckets, type LatencySnapshot } from './histogram.js';
import { namedPolicies, type NamedPolicy, type PolicyKind } from './named.js';
import { PolicyTracker, type CallSample } from './tracker.js';

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

/** What a registry knows of one tracked policy. Counters count from the moment it was tracked. */
export interface PolicyMetricsSnapshot {
  /** The policy's name in the registry. */
  readonly name: string;
  /** The policy's kind (`'circuit-breaker'`, or the kind a policy of your own describes). */
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
  /** How long its calls took, whatever their outcome (refusals included). */
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
  /** The counters and gauges of other kinds of policy (your own), by the field their description names. */
  readonly [field: string]: unknown;
}

/** Everything a registry tracks, at one moment. */
export interface MetricsSnapshot {
  /** When the snapshot was taken, in epoch ms. */
  readonly timestamp: number;
  /** One entry per tracked policy, in the order they were tracked (a stack's members outermost first). */
  readonly policies: readonly PolicyMetricsSnapshot[];
  /**
   * What the counters and gauges of each kind in `policies` mean (fields, units, descriptions,
   * exported names), so an exporter needs no other knowledge of a kind. Plain data.
   */
  readonly kinds?: Readonly<Record<string, KindMetrics>>;
}

/**
 * Calls `onTrack` for every policy `registry` tracks now and later; the function it returns
 * runs when that policy is untracked or the watch stops (logPolicyEvents on a registry).
 */
export function watchPolicies(registry: MetricsRegistry, onTrack: (tracked: NamedPolicy) => Unsubscribe): Unsubscribe {
  return (registry as unknown as { watch(onTrack: (tracked: NamedPolicy) => Unsubscribe): Unsubscribe }).watch(onTrack);
}

/** The gauges a policy reports now; what its reader throws is reported, and the snapshot goes on without them. */
function readGauges(named: NamedPolicy): Readonly<Record<string, number | string>> {
  const read = named.description.readGauges;
  if (read === undefined) return {};
  try {
    return read();
  } catch (error) {
    reportCallbackError(`the gauges of ${named.kind} ${JSON.stringify(named.name)}`, error);
    return {};
  }
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
  /** Where the trackers send per-call samples: the `onCall` listeners. */
  readonly #sink: { callListeners: readonly ((sample: CallSample) => void)[] | undefined } = { callListeners: undefined };
  readonly #now: () => number;
  /** The bounds as a plain array: indexing a frozen one is slower on the hot path. */
  readonly #searchBounds: readonly number[];
  readonly #trackers = new Map<object, PolicyTracker>();
  readonly #byKindAndName = new Map<string, PolicyTracker>();
  readonly #watchers = new Set<PolicyWatcher>();

  constructor(options?: MetricsRegistryOptions) {
    const opts = validate.options('MetricsRegistry', options, ['buckets', 'now']);
    this.buckets = opts.buckets === undefined ? DEFAULT_BUCKETS : validateBuckets(opts.buckets);
    this.#searchBounds = [...this.buckets];
    this.#now = opts.now === undefined ? defaultNow() : validate.fn('MetricsRegistry now', opts.now);
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
      const existing = this.#trackers.get(candidate.policy);
      if (existing !== undefined) {
        if (existing.named.name !== candidate.name) {
          throw new RangeError(`track: this ${candidate.kind} is already tracked as ${JSON.stringify(existing.named.name)}, not ${JSON.stringify(candidate.name)}`);
        }
        continue;
      }
      const key = `${candidate.kind}\u0000${candidate.name}`;
      if (this.#byKindAndName.has(key) || fresh.has(key)) {
        throw new RangeError(`track: another ${candidate.kind} named ${JSON.stringify(candidate.name)} is already tracked; give each one its own name`);
      }
      fresh.set(key, candidate);
    }
    const held: PolicyTracker[] = [];
    for (const candidate of named) {
      let tracker = this.#trackers.get(candidate.policy);
      if (tracker === undefined) {
        tracker = new PolicyTracker(this.#sink, candidate, this.#searchBounds, this.#now);
        this.#trackers.set(candidate.policy, tracker);
        this.#byKindAndName.set(`${candidate.kind}\u0000${candidate.name}`, tracker);
        for (const watcher of this.#watchers) this.startWatching(watcher, tracker);
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
    const kinds: Record<string, KindMetrics> = {};
    for (const tracker of this.#trackers.values()) {
      const { description } = tracker.named;
      const { counters, latency, ...core } = tracker.counts();
      kinds[description.kind] = kindMetrics(kinds[description.kind], description);
      policies.push({
        name: tracker.named.name,
        kind: description.kind,
        ...core,
        // Present for every kind, as they always were; a kind's own counters come after.
        timeouts: 0,
        retries: 0,
        fallbacks: 0,
        ...counters,
        latency,
        ...readGauges(tracker.named),
      });
    }
    return { timestamp: Date.now(), policies, kinds };
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
    const entry = (sample: CallSample): unknown => listener(sample); // a distinct identity, so the same function can subscribe twice
    const sink = this.#sink;
    sink.callListeners = [...(sink.callListeners ?? []), entry];
    return () => {
      const current = sink.callListeners;
      if (current === undefined) return;
      const remaining = current.filter((candidate) => candidate !== entry);
      sink.callListeners = remaining.length === 0 ? undefined : remaining;
    };
  }

  private watch(onTrack: (tracked: NamedPolicy) => Unsubscribe): Unsubscribe {
    const watcher: PolicyWatcher = { onTrack, stops: new Map() };
    this.#watchers.add(watcher);
    for (const tracker of this.#trackers.values()) this.startWatching(watcher, tracker);
    return () => {
      if (!this.#watchers.delete(watcher)) return;
      for (const stop of watcher.stops.values()) stop();
      watcher.stops.clear();
    };
  }

  private startWatching(watcher: PolicyWatcher, tracker: PolicyTracker): void {
    watcher.stops.set(tracker, watcher.onTrack(tracker.named));
  }

  private release(tracker: PolicyTracker): void {
    if (--tracker.holders > 0) return;
    tracker.detach();
    this.#trackers.delete(tracker.named.policy);
    this.#byKindAndName.delete(`${tracker.named.kind}\u0000${tracker.named.name}`);
    for (const watcher of this.#watchers) {
      const stop = watcher.stops.get(tracker);
      if (stop === undefined) continue;
      watcher.stops.delete(tracker);
      stop();
    }
  }
}

/**
 * What the catalog says of a kind once `description` is seen: policies of one kind may describe
 * different metrics (a retry with a budget has two more), so the catalog holds every field any of
 * them describes, each once.
 */
function kindMetrics(known: KindMetrics | undefined, description: PolicyDescription): KindMetrics {
  const counters = description.counters ?? [];
  const gauges = description.gauges ?? [];
  const refuses = description.refuses === true;
  if (known === undefined) return { refuses, counters, gauges };
  if (known.counters === counters && known.gauges === gauges && (known.refuses || !refuses)) return known;
  return { refuses: known.refuses || refuses, counters: unionByField(known.counters, counters), gauges: unionByField(known.gauges, gauges) };
}

function unionByField<T extends { readonly field: string }>(known: readonly T[], more: readonly T[]): readonly T[] {
  // Stryker disable next-line ConditionalExpression: a fast path: with the same array, the filter below adds nothing and returns `known` too.
  if (known === more) return known;
  const added = more.filter((entry) => !known.some((held) => held.field === entry.field));
  // Stryker disable next-line ConditionalExpression: with nothing added, a copy of `known` holds the same descriptions in the same order.
  return added.length === 0 ? known : [...known, ...added];
}
