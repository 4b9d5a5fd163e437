/**
 * Outcome injection: a share of calls answers with an injected value instead of running.
 */
import {
  LayerPolicy,
  type CounterDescription,
  type ExecutionContext,
  type LayerCall,
  type Listener,
  type LogDescription,
  type PolicyDescription,
  type Unsubscribe,
} from 'bulwark';
import * as validate from '../shared/validate.js';
import { Emitter } from '../shared/emitter.js';
import { passThrough } from './pass-through.js';
import { CHAOS_OPTION_KEYS, CHAOS_PEER_NAMES, Trigger, type ChaosOptions } from './trigger.js';

/** Computes the outcome of one injected call, from the context the function would have got. */
export type OutcomeFunction<V> = (ctx: ExecutionContext) => V | PromiseLike<V>;

/** Options of {@link chaosOutcome}. */
export interface ChaosOutcomeOptions<V> extends ChaosOptions {
  /**
   * What an injected call answers with: a value (`undefined` included), or a function called
   * for each injected call that returns it or a promise of it (a function is always called,
   * never answered: to answer a function, return it from one). A rejection, or a throw, fails
   * the call with that error. Required.
   */
  outcome: V | OutcomeFunction<V>;
}

/** Events of a {@link ChaosOutcomePolicy}. */
export interface ChaosOutcomeEvents<V = unknown> {
  /** A call was answered with `outcome`, injected in place of running it. */
  injected: { readonly outcome: V };
}

const OPTION_KEYS: readonly (keyof ChaosOutcomeOptions<unknown>)[] = [...CHAOS_OPTION_KEYS, 'outcome'];

/** The policy {@link chaosOutcome} builds; `V`, the injected outcome's type, is a possible result of every stack it stands in. */
export class ChaosOutcomePolicy<V> extends LayerPolicy<void, V> {
  /** The share of calls injected into, from 0 to 1. */
  readonly rate: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly trigger: Trigger;
  private readonly outcome: V | OutcomeFunction<V>;
  private readonly events = new Emitter<ChaosOutcomeEvents<V>>(['injected']);

  constructor(options: ChaosOutcomeOptions<V>) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`chaosOutcome(options): options with rate and outcome are required, got ${validate.show(options)}`);
    }
    const opts = validate.options('chaosOutcome', options, OPTION_KEYS, CHAOS_PEER_NAMES);
    this.trigger = new Trigger('chaosOutcome', opts);
    // `undefined` is an outcome like any other (a void function's): only a missing key is refused.
    if (!Object.hasOwn(opts, 'outcome')) throw new TypeError('chaosOutcome(options): outcome is required (a value, or a function returning one)');
    this.outcome = opts.outcome as V | OutcomeFunction<V>;
    this.rate = this.trigger.rate;
    this.name = this.trigger.name;
    if (this.trigger.never) passThrough(this, 'run');
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ChaosOutcomeEvents<V>>(event: K, listener: Listener<ChaosOutcomeEvents<V>[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** A function outcome runs as user code under the call: a caller's abort or an enclosing timeout answers at once. */
  protected override run(call: LayerCall): Promise<unknown> {
    if (!this.trigger.fires(call)) return call.inner().run();
    const outcome = this.outcome;
    if (typeof outcome !== 'function') return Promise.resolve(this.injected(outcome));
    return call.invoke(outcome as OutcomeFunction<V>).then(this.injected);
  }

  protected describe(): PolicyDescription {
    return { kind: 'chaos-outcome', label: 'chaos outcome', name: this.name, counters: OUTCOME_COUNTERS, logs: OUTCOME_LOGS, on: (event, listener) => this.on(event as keyof ChaosOutcomeEvents<V>, listener) };
  }

  /** The outcome is known: the event says so, and the call answers with it. */
  private readonly injected = (outcome: V): V => {
    if (this.events.has('injected')) this.events.emit('injected', { outcome });
    return outcome;
  };
}

const OUTCOME_COUNTERS: readonly CounterDescription[] = [
  { field: 'outcomesInjected', event: 'injected', unit: '{outcome}', description: 'Calls the chaos outcome policy answered with an injected outcome instead of running them.' },
];

const OUTCOME_LOGS: readonly LogDescription[] = [
  {
    event: 'injected',
    level: 'info',
    perCall: true,
    plural: 'injected outcomes',
    message: (_payload: ChaosOutcomeEvents['injected'], label: string) => `${label} answered a call with an injected outcome`,
    // The outcome itself may be large or private (a response, a record): it is not written.
    fields: () => ({}),
  },
];

/**
 * Answers a share of calls with an injected outcome, without running them: a result the
 * dependency may really give (an empty list, a stale record, a `Response` with status 503)
 * to prove the code above copes with it. The policy's alternative type is the outcome's, so
 * `compose` adds it to the result type as it does a fallback's.
 *
 * @example
 * ```ts
 * const prices = compose(
 *   retryWithBackoff(),
 *   chaosOutcome({ rate: 0.05, outcome: () => new Response(null, { status: 503 }) }),
 * );
 * const response = await prices.execute(({ signal }) => fetch(url, { signal })); // Response
 * ```
 */
export function chaosOutcome<V>(options: ChaosOutcomeOptions<V>): ChaosOutcomePolicy<V> {
  return new ChaosOutcomePolicy<V>(options);
}
