/**
 * The counters of one tracked policy in one registry, and how several registries share one
 * policy's observer slot.
 */
import type { Step } from '../engine/step.js';
import { REFUSAL, SUCCESS, type CallObserver, type Outcome } from '../engine/observe.js';
import type { Unsubscribe } from '../events.js';
import { reportCallbackError, watchReturned } from '../shared/report.js';
import { bucketOf, latencySnapshot, type LatencySnapshot } from './histogram.js';
import type { NamedPolicy, PolicyKind } from './named.js';

/** One call that finished in a tracked policy, as `MetricsRegistry.onCall` reports it. */
export interface CallSample {
  /** The policy's name in the registry. */
  readonly policy: string;
  /** The policy's kind (`'circuit-breaker'`). */
  readonly kind: PolicyKind;
  /** How long the call spent in the policy (and everything inside it), in ms. */
  readonly durationMs: number;
  /** `'rejection'`: this policy refused the call itself (an open circuit, a full bulkhead). */
  readonly outcome: 'success' | 'failure' | 'rejection';
}

/** The counts behind one entry of a snapshot, before its gauges are read. */
export interface TrackedCounts {
  readonly calls: number;
  readonly successes: number;
  readonly failures: number;
  readonly rejections: number;
  /** The policy's own counters (`retries`), by field. */
  readonly counters: Readonly<Record<string, number>>;
  readonly latency: LatencySnapshot;
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
        reportCallbackError('a call observer', thrown);
        tokens.push(NaN); // this observer misses the call; the others still see it
      }
    }
    // Stryker disable next-line UpdateOperator: a token only has to differ from the others in flight; counting down does too.
    const token = ++this.nextToken;
    this.inFlight.set(token, tokens);
    return token;
  }

  finished(token: number, outcome: Outcome, error: unknown, time: number): void {
    const tokens = this.inFlight.get(token);
    if (tokens === undefined) return;
    this.inFlight.delete(token);
    this.observers.forEach((observer, at) => {
      const started = tokens[at];
      if (started === undefined || Number.isNaN(started)) return;
      try {
        observer.finished(started, outcome, error, observer.now === this.now ? time : observer.now());
      } catch (thrown) {
        reportCallbackError('a call observer', thrown);
      }
    });
  }
}

function attachObserver(step: Step, observer: CallObserver): void {
  const current = step.observer;
  if (current === undefined) step.observer = observer;
  else if (current instanceof ObserverFanOut) step.observer = new ObserverFanOut([...current.observers, observer]);
  else step.observer = new ObserverFanOut([current, observer]);
}

/** Removes `observer` and leaves the policy as if it had never been attached. */
function detachObserver(step: Step, observer: CallObserver): void {
  const current = step.observer;
  if (current === observer) {
    step.observer = undefined;
  } else if (current instanceof ObserverFanOut) {
    const remaining = current.observers.filter((candidate) => candidate !== observer);
    if (remaining.length === current.observers.length) return;
    // The engine finishes a call on the observer that started it: calls in flight keep the
    // fan-out (and the observers) they started with, so replacing it here loses none.
    if (remaining.length === 1) step.observer = remaining[0];
    else if (remaining.length === 0) step.observer = undefined;
    else step.observer = new ObserverFanOut(remaining);
  }
}

/** The start of a call whose clock reading failed (threw, NaN, not a number): its outcome still counts, with a latency of 0. */
const UNREADABLE_START = -Infinity;

/** Where a tracker's per-call samples go: the registry's `onCall` listeners. */
export interface SampleSink {
  readonly callListeners: readonly ((sample: CallSample) => void)[] | undefined;
}

/** The counters of one tracked policy in one registry; also its observer. */
export class PolicyTracker implements CallObserver {
  readonly named: NamedPolicy;
  /** How many `track` calls of the registry hold this policy. */
  holders = 1;
  /** Set once untracked: calls still in flight then are not counted nor reported. */
  detached = false;
  calls = 0;
  successes = 0;
  failures = 0;
  rejections = 0;
  /** The policy's own counters, fed by its events. */
  readonly counters: Record<string, number> = {};
  latencySum = 0;
  /** Per bucket (not cumulative), the +Infinity bucket last. */
  readonly bucketCounts: Float64Array;
  /** The registry's clock; the engine reads it once for all the policies a call passes in one go. */
  readonly now: () => number;
  private readonly sink: SampleSink;
  private readonly bounds: readonly number[];
  private readonly unsubscribes: Unsubscribe[] = [];

  constructor(sink: SampleSink, named: NamedPolicy, bounds: readonly number[], now: () => number) {
    this.sink = sink;
    this.named = named;
    this.bounds = bounds;
    this.now = now;
    this.bucketCounts = new Float64Array(bounds.length + 1);
    const { description } = named;
    for (const counter of description.counters ?? []) {
      const field = counter.field;
      this.counters[field] = 0;
      if (description.on !== undefined) {
        this.unsubscribes.push(
          description.on(counter.event, () => {
            this.counters[field] = (this.counters[field] ?? 0) + 1;
          }),
        );
      }
    }
    attachObserver(named.step, this);
  }

  started(time: number): number {
    this.calls++;
    // NaN stands for a call this tracker did not see start: a clock that failed here still saw it.
    return Number.isNaN(time) ? UNREADABLE_START : time;
  }

  finished(token: number, outcome: Outcome, _error: unknown, time: number): void {
    // NaN: the call started before this policy was tracked (or its start was not observed).
    if (this.detached || Number.isNaN(token)) return;
    let ms = token === UNREADABLE_START ? 0 : time - token;
    if (!(ms > 0)) ms = 0; // a clock that stepped back (or NaN) must not make a negative latency
    const bucket = bucketOf(this.bounds, ms);
    this.bucketCounts[bucket] = (this.bucketCounts[bucket] as number) + 1;
    this.latencySum += ms;
    if (outcome === SUCCESS) this.successes++;
    else if (outcome === REFUSAL) this.rejections++;
    else this.failures++;
    const listeners = this.sink.callListeners;
    if (listeners !== undefined) {
      const sample: CallSample = {
        policy: this.named.name,
        kind: this.named.kind,
        durationMs: ms,
        outcome: outcome === SUCCESS ? 'success' : outcome === REFUSAL ? 'rejection' : 'failure',
      };
      for (const listener of listeners) {
        try {
          watchReturned('an "onCall" listener', listener(sample));
        } catch (thrown) {
          reportCallbackError('an "onCall" listener', thrown);
        }
      }
    }
  }

  /** Stops counting and gives the policy its observer slot back. */
  detach(): void {
    this.detached = true;
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    this.unsubscribes.length = 0;
    detachObserver(this.named.step, this);
  }

  counts(): TrackedCounts {
    return {
      calls: this.calls,
      successes: this.successes,
      failures: this.failures,
      rejections: this.rejections,
      counters: this.counters,
      latency: latencySnapshot(this.bounds, this.bucketCounts, this.latencySum),
    };
  }
}
