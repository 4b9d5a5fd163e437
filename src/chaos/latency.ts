/**
 * Latency injection: a share of calls waits before it runs.
 */
import {
  LayerPolicy,
  type Admission,
  type Clock,
  type CounterDescription,
  type ExecutionContext,
  type GaugeDescription,
  type LayerCall,
  type Listener,
  type LogDescription,
  type PolicyDescription,
  type Unsubscribe,
} from 'bulwark';
import { MAX_TIMER_DELAY, systemClock } from '../shared/clock.js';
import { synchronousAnswer } from '../shared/report.js';
import * as validate from '../shared/validate.js';
import { Emitter } from '../shared/emitter.js';
import { passThrough } from './pass-through.js';
import { CHAOS_OPTION_KEYS, CHAOS_PEER_NAMES, Trigger, type ChaosOptions } from './trigger.js';

/** Gives the latency of one injected call in ms, from the context the function will get. */
export type LatencyFunction = (ctx: ExecutionContext) => number;

/** Options of {@link chaosLatency}. */
export interface ChaosLatencyOptions extends ChaosOptions {
  /**
   * How long an injected call waits before it runs, in ms: a number ≥ 0, `Infinity` (it hangs
   * until its caller or an enclosing timeout gives up), or a function called for each injected
   * call that returns one (a spread of delays). The function must return at once; what it throws,
   * or a value that is not such a number, fails the call. Required.
   */
  latency: number | LatencyFunction;
  /**
   * The source of time for the wait.
   * @default systemClock
   */
  clock?: Clock | undefined;
}

/** Events of a {@link ChaosLatencyPolicy}. */
export interface ChaosLatencyEvents {
  /** A call was made to wait `latency` ms before running. */
  injected: { readonly latency: number };
}

const OPTION_KEYS: readonly (keyof ChaosLatencyOptions)[] = [...CHAOS_OPTION_KEYS, 'latency', 'clock'];

/** A call waiting out an injected latency. */
class Delay {
  /** Set right after the call is made to wait (the wait needs this entry first, for its abort). */
  admission: Admission | undefined = undefined;
  timer: unknown = undefined;
  /** Ms still to wait once the timer fires (a latency longer than one timer can wait). */
  left = 0;
}

/** The policy {@link chaosLatency} builds. */
export class ChaosLatencyPolicy extends LayerPolicy<void> {
  /** The share of calls injected into, from 0 to 1. */
  readonly rate: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly trigger: Trigger;
  private readonly latency: number | LatencyFunction;
  private readonly clock: Clock;
  private readonly events = new Emitter<ChaosLatencyEvents>(['injected']);
  private waiting = 0;

  constructor(options: ChaosLatencyOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`chaosLatency(options): options with rate and latency are required, got ${validate.show(options)}`);
    }
    const opts = validate.options('chaosLatency', options, OPTION_KEYS, CHAOS_PEER_NAMES);
    this.trigger = new Trigger('chaosLatency', opts);
    if (opts.latency === undefined) throw new TypeError('chaosLatency(options): latency is required (ms, or a function returning them)');
    this.latency = typeof opts.latency === 'function' ? opts.latency : checkLatency(opts.latency);
    this.clock = opts.clock === undefined ? systemClock : validate.clock('chaosLatency clock', opts.clock);
    this.rate = this.trigger.rate;
    this.name = this.trigger.name;
    if (this.trigger.never) passThrough(this, 'enter');
  }

  /** Calls waiting in an injected latency now. */
  get delayed(): number {
    return this.waiting;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ChaosLatencyEvents>(event: K, listener: Listener<ChaosLatencyEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /**
   * Makes an injected call wait here (`call.wait`), and lets it in when its latency has passed:
   * a call not injected into goes through at once, without a promise, as through a policy that
   * lets every call in. A caller's abort or an enclosing timeout ends the wait at once, with
   * their reason, and clears its timer.
   */
  protected override enter(call: LayerCall): Admission | undefined {
    if (!this.trigger.fires(call)) return undefined;
    const latency = typeof this.latency === 'function' ? checkLatency(synchronousAnswer('chaosLatency latency', this.latency(call.context)), ' returned') : this.latency;
    if (this.events.has('injected')) this.events.emit('injected', { latency });
    if (latency === 0) return undefined;
    const delay = new Delay();
    const admission = call.wait(this.abandon, delay);
    delay.admission = admission;
    this.waiting++;
    this.arm(delay, latency);
    return admission;
  }

  protected describe(): PolicyDescription {
    return {
      kind: 'chaos-latency',
      label: 'chaos latency',
      name: this.name,
      counters: LATENCY_COUNTERS,
      gauges: LATENCY_GAUGES,
      logs: LATENCY_LOGS,
      readGauges: () => ({ delayed: this.waiting }),
      on: (event, listener) => this.on(event as keyof ChaosLatencyEvents, listener),
    };
  }

  /** Waits `ms`, in turns of at most MAX_TIMER_DELAY (a longer timer fires at once), so `Infinity` waits until the call is aborted. */
  private arm(delay: Delay, ms: number): void {
    const now = Math.min(ms, MAX_TIMER_DELAY);
    delay.left = ms - now;
    delay.timer = this.clock.setTimeout(() => this.waited(delay), now);
  }

  private waited(delay: Delay): void {
    delay.timer = undefined;
    if (delay.left > 0) {
      this.arm(delay, delay.left);
      return;
    }
    this.waiting--;
    (delay.admission as Admission).grant();
  }

  /** The call was aborted while it waited: one function for every call, told which by the wait's context. */
  private readonly abandon = (_reason: unknown, delay: Delay): void => {
    if (delay.timer !== undefined) this.clock.clearTimeout(delay.timer);
    delay.timer = undefined;
    this.waiting--;
  };
}

function checkLatency(value: unknown, returned = ''): number {
  if (typeof value !== 'number') throw new TypeError(`chaosLatency latency${returned} must be a number of ms, got ${validate.show(value)}`);
  if (!(value >= 0)) throw new RangeError(`chaosLatency latency${returned} must be a duration in ms ≥ 0 or Infinity, got ${validate.show(value)}`);
  return value;
}

const LATENCY_COUNTERS: readonly CounterDescription[] = [
  { field: 'latenciesInjected', event: 'injected', unit: '{delay}', description: 'Calls the chaos latency policy made wait an injected latency before running.' },
];

const LATENCY_GAUGES: readonly GaugeDescription[] = [
  { field: 'delayed', prometheus: 'chaos_latency_delayed_calls', otel: 'bulwark.chaos_latency.call.delayed', unit: '{call}', type: 'count', description: 'Calls waiting in an injected latency of the chaos latency policy now.' },
];

const LATENCY_LOGS: readonly LogDescription[] = [
  {
    event: 'injected',
    level: 'info',
    perCall: true,
    plural: 'injected latencies',
    message: ({ latency }: ChaosLatencyEvents['injected'], label: string) => `${label} delayed a call by ${latency} ms`,
    fields: ({ latency }: ChaosLatencyEvents['injected']) => ({ latency }),
  },
];

/**
 * Makes a share of calls wait `latency` ms before running, to prove that the timeouts, the
 * breaker's slow-call rate and the callers above a dependency cope with it turning slow. The
 * wait is the call's own: a caller's abort or an enclosing `withTimeout` ends it at once, with
 * their reason, and clears its timer. Put it inside the per-attempt timeout it should test.
 *
 * @example
 * ```ts
 * const search = compose(
 *   withTimeout(5_000),
 *   retryWithBackoff({ maxRetries: 2, baseDelay: 100 }),
 *   withTimeout(1_000), // per attempt: ends an injected spike
 *   chaosLatency({ rate: 0.1, latency: 3_000 }),
 * );
 * ```
 */
export function chaosLatency(options: ChaosLatencyOptions): ChaosLatencyPolicy {
  return new ChaosLatencyPolicy(options);
}
