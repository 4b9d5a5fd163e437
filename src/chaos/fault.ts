/**
 * Fault injection: a share of calls fails with an injected error instead of running.
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
import { synchronousAnswer } from '../shared/report.js';
import { describeError } from '../shared/show.js';
import * as validate from '../shared/validate.js';
import { Emitter } from '../shared/emitter.js';
import { CHAOS_OPTION_KEYS, CHAOS_PEER_NAMES, Trigger, type ChaosOptions } from './trigger.js';
import { passThrough } from './pass-through.js';

/** Makes the error of one injected fault, from the context the function would have got. */
export type FaultFunction = (ctx: ExecutionContext) => Error;

/** Options of {@link chaosFault}. */
export interface ChaosFaultOptions extends ChaosOptions {
  /**
   * What an injected call fails with: an error (the same object every time), or a function
   * called for each injected call that returns one (a fresh stack, an error that depends on
   * the attempt). The function must return at once; what it throws fails the call. Required.
   */
  fault: Error | FaultFunction;
}

/** Events of a {@link ChaosFaultPolicy}. */
export interface ChaosFaultEvents {
  /** A call failed with `error`, injected in place of running it. */
  injected: { readonly error: Error };
}

const OPTION_KEYS: readonly (keyof ChaosFaultOptions)[] = [...CHAOS_OPTION_KEYS, 'fault'];

/** The policy {@link chaosFault} builds. */
export class ChaosFaultPolicy extends LayerPolicy<void> {
  /** The share of calls injected into, from 0 to 1. */
  readonly rate: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly trigger: Trigger;
  private readonly fault: Error | FaultFunction;
  private readonly events = new Emitter<ChaosFaultEvents>(['injected']);

  constructor(options: ChaosFaultOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`chaosFault(options): options with rate and fault are required, got ${validate.show(options)}`);
    }
    const opts = validate.options('chaosFault', options, OPTION_KEYS, CHAOS_PEER_NAMES);
    this.trigger = new Trigger('chaosFault', opts);
    if (opts.fault === undefined) throw new TypeError('chaosFault(options): fault is required (an error, or a function returning one)');
    if (typeof opts.fault !== 'function' && (typeof opts.fault !== 'object' || opts.fault === null)) {
      throw new TypeError(`chaosFault fault must be an error or a function returning one, got ${validate.show(opts.fault)}`);
    }
    this.fault = opts.fault;
    this.rate = this.trigger.rate;
    this.name = this.trigger.name;
    if (this.trigger.never) passThrough(this, 'run');
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ChaosFaultEvents>(event: K, listener: Listener<ChaosFaultEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /**
   * Injects from `run`, not `enter`: what `enter` throws is a refusal, which breakers ignore
   * and retries do not repeat, while an injected fault must look like the dependency failing.
   */
  protected override run(call: LayerCall): Promise<unknown> {
    if (!this.trigger.fires(call)) return call.inner().run();
    const fault = this.fault;
    const error = typeof fault === 'function' ? generated(fault(call.context)) : fault;
    if (this.events.has('injected')) this.events.emit('injected', { error });
    return Promise.reject(error);
  }

  protected describe(): PolicyDescription {
    return { kind: 'chaos-fault', label: 'chaos fault', name: this.name, counters: FAULT_COUNTERS, logs: FAULT_LOGS, on: (event, listener) => this.on(event as keyof ChaosFaultEvents, listener) };
  }
}

/** What a fault function returned, checked: an error (an object), never a promise nor nothing. */
function generated(error: unknown): Error {
  synchronousAnswer('chaosFault fault', error);
  if (typeof error !== 'object' || error === null) throw new TypeError(`chaosFault fault must return the error to inject, got ${validate.show(error)}`);
  return error as Error;
}

const FAULT_COUNTERS: readonly CounterDescription[] = [
  { field: 'faultsInjected', event: 'injected', unit: '{fault}', description: 'Calls the chaos fault policy failed with an injected fault instead of running them.' },
];

const FAULT_LOGS: readonly LogDescription[] = [
  {
    event: 'injected',
    level: 'info',
    perCall: true,
    plural: 'injected faults',
    message: ({ error }: ChaosFaultEvents['injected'], label: string) => `${label} injected a fault: ${describeError(error).message}`,
    fields: ({ error }: ChaosFaultEvents['injected']) => ({ error: describeError(error) }),
  },
];

/**
 * Fails a share of calls with an injected fault, without running them, to prove that the
 * policies around a dependency (a breaker, a retry, a fallback) and the code above them
 * handle its failures. An injected fault is not a refusal: a breaker counts it and a retry
 * retries it, as it would a real failure. Put it innermost, where the dependency's failures
 * arise, to exercise the whole stack.
 *
 * @example
 * ```ts
 * const payments = compose(
 *   new CircuitBreaker(),
 *   retryWithBackoff({ maxRetries: 2 }),
 *   chaosFault({ rate: 0.1, fault: () => new Error('injected: payments down'), enabled: process.env.CHAOS === 'on' }),
 * );
 * ```
 */
export function chaosFault(options: ChaosFaultOptions): ChaosFaultPolicy {
  return new ChaosFaultPolicy(options);
}
