import type { ExecutionContext, LayerCall, LogDescription, PolicyDescription } from './engine/contract.js';
import { LayerPolicy } from './engine/policy.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { FALLBACK_COUNTERS } from './shared/metric-catalog.js';
import { synchronousAnswer } from './shared/report.js';
import { describeError } from './shared/show.js';
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
  /** A name for logs and metrics. */
  name?: string | undefined;
}

/** Events of a {@link FallbackPolicy}. */
export interface FallbackEvents {
  /** The call failed with `error` and the fallback answers instead. */
  fallback: { readonly error: unknown };
}

/** What a fallback computes its value with. */
export type FallbackFunction<V> = (error: unknown, ctx: ExecutionContext) => V | PromiseLike<V>;

const OPTION_KEYS: readonly (keyof FallbackOptions)[] = ['handles', 'name'];
const PEER_NAMES: validate.PeerNames = { shouldHandle: '"handles"', errorFilter: '"handles"' };

/** The policy {@link withFallback} builds. */
export class FallbackPolicy<V> extends LayerPolicy<void, V> {
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly fallback: V | FallbackFunction<V>;
  private readonly handles: ((error: unknown) => boolean) | undefined;
  private readonly events = new Emitter<FallbackEvents>(['fallback']);

  constructor(fallback: V | FallbackFunction<V>, options?: FallbackOptions) {
    super();
    const opts = validate.options('withFallback', options, OPTION_KEYS, PEER_NAMES);
    this.fallback = fallback;
    this.handles = opts.handles === undefined ? undefined : validate.fn('withFallback handles', opts.handles);
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
    return call.invoke((ctx) => (fallback as FallbackFunction<V>)(error, ctx));
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
    message: ({ error }: FallbackEvents['fallback'], label: string) => `${label} answered in place of a failed call: ${describeError(error).message}`,
    fields: ({ error }: FallbackEvents['fallback']) => ({ error: describeError(error) }),
  },
];

/**
 * Answers with a fallback when the call fails: a value, or what `fn(error, ctx)` returns
 * (a function is always called, never returned). If the fallback function throws, the call
 * rejects with its error.
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
