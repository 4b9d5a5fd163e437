/**
 * What every chaos policy shares: the options that decide whether a call is injected into
 * (`rate`, `enabled`, `random`, `name`), checked once, and the decision itself.
 */
import type { ExecutionContext, LayerCall } from 'bulwark';
import { synchronousAnswer, watchReturned } from '../shared/report.js';
import * as validate from '../shared/validate.js';

/** The options every chaos policy takes. */
export interface ChaosOptions {
  /**
   * The share of calls injected into, from 0 (none) to 1 (every call): each call is injected
   * into when `random()` draws below it. Required. With 0 (or `enabled: false`) the policy is a
   * plain pass-through that costs nothing; 0 and 1 draw no random number.
   */
  rate: number;
  /**
   * Whether the policy injects at all: a boolean fixed when it is built (per environment), or a
   * function asked for every call, before the random draw (per request, per tenant, behind a
   * feature flag). Inside a retry it is asked for every attempt. The function must answer at
   * once: a promise is refused with a `TypeError`, and what it throws fails the call.
   * @default true
   */
  enabled?: boolean | ((ctx: ExecutionContext) => boolean) | undefined;
  /**
   * The source of randomness, a number in [0, 1); {@link seededRandom} makes a run reproducible.
   * @default Math.random
   */
  random?: (() => number) | undefined;
  /** A name for logs and metrics. */
  name?: string | undefined;
}

/** The keys of {@link ChaosOptions}, which every chaos policy knows. */
export const CHAOS_OPTION_KEYS: readonly (keyof ChaosOptions)[] = ['rate', 'enabled', 'random', 'name'];

/** Polly's names for the chaos options (Simmy's strategies), by bulwark's. */
export const CHAOS_PEER_NAMES: validate.PeerNames = {
  injectionRate: '"rate"',
  injectionRateGenerator: '"rate" (a number), with "enabled" as a function for a decision per call',
  enabledGenerator: '"enabled" (a boolean, or a function of the call)',
  randomizer: '"random"',
  faultGenerator: '"fault" (an error, or a function of the call)',
  latencyGenerator: '"latency" (ms, or a function of the call)',
  outcomeGenerator: '"outcome" (a value, or a function of the call)',
  onFaultInjected: "on('injected', listener)",
  onLatencyInjected: "on('injected', listener)",
  onOutcomeInjected: "on('injected', listener)",
  timeProvider: '"clock"',
};

type Enabled = boolean | ((ctx: ExecutionContext) => boolean);

/** Decides, call by call, whether a chaos policy injects. */
export class Trigger {
  readonly rate: number;
  readonly enabled: Enabled;
  readonly name: string | undefined;
  readonly #owner: string;
  readonly #random: () => number;

  /** Checks the shared options of `owner` (`chaosFault`, …); the caller has refused unknown keys. */
  constructor(owner: string, options: Partial<ChaosOptions>) {
    this.#owner = owner;
    if (options.rate === undefined) throw new TypeError(`${owner}(options): rate is required (a number from 0 to 1)`);
    this.rate = rate(`${owner} rate`, options.rate);
    const enabled = options.enabled;
    if (enabled !== undefined && typeof enabled !== 'boolean' && typeof enabled !== 'function') {
      throw new TypeError(`${owner} enabled must be true, false or a function of the call, got ${validate.show(enabled)}`);
    }
    this.enabled = enabled ?? true;
    this.#random = options.random === undefined ? Math.random : validate.fn(`${owner} random`, options.random);
    this.name = options.name === undefined ? undefined : validate.text(`${owner} name`, options.name);
  }

  /** True when the policy can never inject (`rate` 0 or `enabled: false`): it is then a pass-through. */
  get never(): boolean {
    return this.rate === 0 || this.enabled === false;
  }

  /** Whether this call (this attempt) is injected into: `enabled`, then one draw below `rate`. */
  fires(call: LayerCall): boolean {
    const enabled = this.enabled;
    // Stryker disable next-line ConditionalExpression,BooleanLiteral: never reached: a policy switched off is a pass-through (`never`), which asks nothing.
    if (enabled === false) return false;
    if (typeof enabled === 'function' && !synchronousAnswer(`${this.#owner} enabled`, enabled(call.context))) return false;
    const rate = this.rate;
    if (rate === 1) return true;
    // Stryker disable next-line ConditionalExpression,BooleanLiteral: never reached: at rate 0 the policy is a pass-through (`never`), which asks nothing.
    if (rate === 0) return false;
    const drawn = this.#random();
    // A random source that returns a promise must not leave its rejection unhandled; anything
    // but a number below the rate (NaN, a string) injects nothing.
    // Stryker disable next-line ConditionalExpression: watchReturned() returns at once for anything that is not a thenable.
    if (typeof drawn !== 'number') watchReturned(`${this.#owner} random`, drawn);
    return drawn < rate;
  }
}

function rate(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number from 0 to 1, got ${validate.show(value)}`);
  if (!(value >= 0 && value <= 1)) throw new RangeError(`${name} must be a number from 0 to 1, got ${validate.show(value)}`);
  return value;
}
