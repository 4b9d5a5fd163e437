import type { ExecutionContext, LayerCall, LogDescription, PolicyDescription } from './engine/contract.js';
import { LayerPolicy } from './engine/policy.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { outcomeFields, outcomeText, type Outcome } from './outcome.js';
import { FALLBACK_COUNTERS } from './shared/metric-catalog.js';
import { synchronousAnswer } from './shared/report.js';
import * as validate from './shared/validate.js';

/** Options of {@link withFallback}. */
export interface FallbackOptions {
  /**
   * Decides whether an error is replaced by the fallback; one it declines reaches the caller
   * unchanged. A caller's abort is never replaced, and never asked about. If it throws, the
   * call rejects with what it threw.
   * @default every error
   */
  handles?: ((error: unknown) => boolean) | undefined;
  /**
   * Decides whether a value the call returned is replaced by the fallback, as a failure (an
   * HTTP 503): the fallback function is then called with `error` `undefined` and its third
   * argument `{ ok: true, value }`. A value it declines reaches the caller unchanged. Never
   * asked once the caller has aborted. If it throws, the call rejects with what it threw; an
   * answer that is a promise is refused with a `TypeError`.
   * @default none: every value reaches the caller (and values cost nothing more)
   */
  handlesResult?: ((value: unknown) => boolean) | undefined;
  /** A name for logs and metrics. */
  name?: string | undefined;
}

/** Events of a {@link FallbackPolicy}. */
export interface FallbackEvents {
  /**
   * The call failed with `error` and the fallback answers instead. For a value
   * `handlesResult` accepted, `value` holds it and `error` is `undefined`; for an error there
   * is no `value` key (test `'value' in payload`).
   */
  fallback: { readonly error: unknown; readonly value?: unknown };
}

/**
 * What a fallback computes its value with: `error` is what the call failed with, `outcome`
 * the same as an {@link Outcome} (`{ ok: false, error }`), or, for a value `handlesResult`
 * replaces, `{ ok: true, value }` with `error` `undefined`.
 */
export type FallbackFunction<V> = (error: unknown, ctx: ExecutionContext, outcome: Outcome) => V | PromiseLike<V>;

const OPTION_KEYS: readonly (keyof FallbackOptions)[] = ['handles', 'handlesResult', 'name'];
const PEER_NAMES: validate.PeerNames = {
  shouldHandle: '"handles" or "handlesResult"',
  errorFilter: '"handles"',
  handleWhenResult: '"handlesResult"',
};

/** The policy {@link withFallback} builds. */
export class FallbackPolicy<V> extends LayerPolicy<void, V> {
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly fallback: V | FallbackFunction<V>;
  private readonly handles: ((error: unknown) => boolean) | undefined;
  private readonly handlesResult: ((value: unknown) => boolean) | undefined;
  private readonly events = new Emitter<FallbackEvents>(['fallback']);

  constructor(fallback: V | FallbackFunction<V>, options?: FallbackOptions) {
    super();
    const opts = validate.options('withFallback', options, OPTION_KEYS, PEER_NAMES);
    this.fallback = fallback;
    this.handles = opts.handles === undefined ? undefined : validate.fn('withFallback handles', opts.handles);
    this.handlesResult = opts.handlesResult === undefined ? undefined : validate.fn('withFallback handlesResult', opts.handlesResult);
    // Values pass through untouched, at no cost, unless one may be replaced.
    if (this.handlesResult !== undefined) this.onValue = this.onResult;
    this.name = opts.name === undefined ? undefined : validate.text('withFallback name', opts.name);
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof FallbackEvents>(event: K, listener: Listener<FallbackEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  protected override onError(_token: void, error: unknown, call: LayerCall): unknown {
    // A caller's abort or an enclosing timeout has already answered the caller: nothing to replace.
    if (call.aborted) throw error;
    if (this.handles !== undefined && !synchronousAnswer('withFallback handles', this.handles(error))) throw error;
    if (this.events.has('fallback')) this.events.emit('fallback', { error });
    const fallback = this.fallback;
    if (typeof fallback !== 'function') return fallback;
    return call.invoke((ctx) => (fallback as FallbackFunction<V>)(error, ctx, { ok: false, error }));
  }

  /** With `handlesResult`, the policy's `onValue`: a value it accepts is replaced like a failure. */
  private onResult(_token: void, value: unknown, call: LayerCall): unknown {
    if (call.aborted || !synchronousAnswer('withFallback handlesResult', (this.handlesResult as (value: unknown) => boolean)(value))) return value;
    if (this.events.has('fallback')) this.events.emit('fallback', { error: undefined, value });
    const fallback = this.fallback;
    if (typeof fallback !== 'function') return fallback;
    return call.invoke((ctx) => (fallback as FallbackFunction<V>)(undefined, ctx, { ok: true, value }));
  }

  protected describe(): PolicyDescription {
    return { kind: 'fallback', name: this.name, counters: FALLBACK_COUNTERS, logs: FALLBACK_LOGS, on: (event, listener) => this.on(event as keyof FallbackEvents, listener) };
  }
}

const FALLBACK_LOGS: readonly LogDescription[] = [
  {
    event: 'fallback',
    level: 'info',
    perCall: true,
    plural: 'fallbacks',
    message: (payload: FallbackEvents['fallback'], label: string) => `${label} answered in place of a failed call: ${outcomeText(payload)}`,
    fields: outcomeFields,
  },
];

/**
 * Answers with a fallback when the call fails (or returns a value `handlesResult` accepts):
 * a value, or what `fn(error, ctx, outcome)` returns (a function is always called, never
 * returned). If the fallback function throws, the call rejects with its error.
 *
 * Put it outermost, so it also answers for an open circuit or a full bulkhead.
 *
 * @example
 * ```ts
 * const recommendations = compose(withFallback([] as Product[]), breaker, withTimeout(300));
 * const shown = await recommendations.execute(({ signal }) => api.recommend(userId, { signal }));
 * ```
 */
export function withFallback<V>(fallback: FallbackFunction<V>, options?: FallbackOptions): FallbackPolicy<V>;
export function withFallback<V>(fallback: V, options?: FallbackOptions): FallbackPolicy<V>;
export function withFallback<V>(fallback: V | FallbackFunction<V>, options?: FallbackOptions): FallbackPolicy<V> {
  return new FallbackPolicy<V>(fallback, options);
}
