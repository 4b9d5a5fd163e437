import type { CounterDescription, LayerCall, LogDescription, PolicyDescription } from '../engine/contract.js';
import { LayerPolicy } from '../engine/policy.js';
import { isRefusal } from '../errors.js';
import { Emitter, type Listener, type Unsubscribe } from '../events.js';
import { systemClock } from '../shared/clock.js';
import { reportCallbackError } from '../shared/report.js';
import { show } from '../shared/show.js';
import * as validate from '../shared/validate.js';
import { HedgedCall, type Settings } from './race.js';
import type { HedgeBudget, HedgeDelay, HedgeEvents, HedgeOptions } from './types.js';

/** The most attempts beyond the first, as Polly allows. */
const MAX_HEDGED_ATTEMPTS = 10;

const OPTION_KEYS: readonly (keyof HedgeOptions)[] = ['delay', 'maxHedgedAttempts', 'hedgeOn', 'hedgeOnResult', 'budget', 'clock', 'name'];
const PEER_NAMES: validate.PeerNames = {
  delayGenerator: '"delay" (a function)',
  hedgingDelay: '"delay"',
  shouldHandle: '"hedgeOn" or "hedgeOnResult"',
  handleWhenResult: '"hedgeOnResult"',
  maxAttempts: '"maxHedgedAttempts" (attempts beyond the first)',
  hedges: '"maxHedgedAttempts"',
  onHedging: "on('hedge', listener)",
};

/** Every error but a refusal: an open circuit or a full bulkhead says nothing of the answer. */
const defaultHedgeOn = (error: unknown): boolean => !isRefusal(error);

/** The policy {@link hedge} builds. */
export class HedgePolicy extends LayerPolicy<void> {
  /** The delay before each hedge, in ms, or the function that computes it. */
  readonly delay: number | HedgeDelay;
  /** Attempts beyond the first. */
  readonly maxHedgedAttempts: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly settings: Settings;

  constructor(options?: HedgeOptions) {
    super();
    const opts = validate.options('hedge', options, OPTION_KEYS, PEER_NAMES);
    this.delay = opts.delay === undefined ? 2_000 : checkDelay(opts.delay);
    this.maxHedgedAttempts = opts.maxHedgedAttempts === undefined ? 1 : validate.count('hedge maxHedgedAttempts', opts.maxHedgedAttempts, 0);
    if (this.maxHedgedAttempts > MAX_HEDGED_ATTEMPTS) {
      throw new RangeError(`hedge maxHedgedAttempts must be a whole number from 0 to ${MAX_HEDGED_ATTEMPTS}, got ${show(opts.maxHedgedAttempts)}`);
    }
    this.name = opts.name === undefined ? undefined : validate.text('hedge name', opts.name);
    this.settings = {
      delay: this.delay,
      maxHedgedAttempts: this.maxHedgedAttempts,
      hedgeOn: opts.hedgeOn === undefined ? defaultHedgeOn : validate.fn('hedge hedgeOn', opts.hedgeOn),
      hedgeOnResult: opts.hedgeOnResult === undefined ? undefined : validate.fn('hedge hedgeOnResult', opts.hedgeOnResult),
      budget: opts.budget === undefined ? undefined : checkBudget(opts.budget),
      clock: opts.clock === undefined ? systemClock : validate.clock('hedge clock', opts.clock),
      events: new Emitter<HedgeEvents>(['hedge', 'won', 'budgetExhausted']),
    };
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof HedgeEvents>(event: K, listener: Listener<HedgeEvents[K]>): Unsubscribe {
    return this.settings.events.on(event, listener);
  }

  /** Without hedges, nothing is ever aborted here: calls through it need no race with their function. */
  protected override get abortsWork(): boolean {
    return this.maxHedgedAttempts > 0;
  }

  protected override run(call: LayerCall): Promise<unknown> {
    const settings = this.settings;
    if (settings.budget !== undefined) {
      try {
        settings.budget.deposit();
      } catch (error) {
        reportCallbackError('hedge budget.deposit()', error);
      }
    }
    if (settings.maxHedgedAttempts === 0) return call.inner().run();
    // Read before the first attempt starts: the handle is valid only until then.
    const inner = call.inner();
    const context = typeof settings.delay === 'function' ? call.context : undefined;
    return new Promise((resolve, reject) => new HedgedCall(settings, inner, context, resolve, reject).begin());
  }

  protected describe(): PolicyDescription {
    return { kind: 'hedge', label: 'hedging', name: this.name, counters: HEDGE_COUNTERS, logs: HEDGE_LOGS, on: (event, listener) => this.on(event as keyof HedgeEvents, listener) };
  }
}

function checkDelay(delay: unknown): number | HedgeDelay {
  if (typeof delay === 'function') return delay as HedgeDelay;
  if (typeof delay !== 'number') throw new TypeError(`hedge delay must be a duration in ms or a function, got ${show(delay)}`);
  return validate.duration('hedge delay', delay, true);
}

function checkBudget(budget: unknown): HedgeBudget {
  const candidate = budget as Partial<HedgeBudget> | null;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.deposit !== 'function' || typeof candidate.tryWithdraw !== 'function') {
    throw new TypeError(`hedge budget must be an object with deposit() and tryWithdraw() (a RetryBudget), got ${show(budget)}`);
  }
  return candidate as HedgeBudget;
}

const HEDGE_COUNTERS: readonly CounterDescription[] = [
  { field: 'hedges', event: 'hedge', unit: '{hedge}', description: 'Hedged attempts the hedging policy started: attempts beyond the first of a call.' },
  { field: 'hedgeWins', event: 'won', unit: '{hedge}', description: 'Calls a hedged attempt answered first with its value.' },
  { field: 'hedgesDenied', event: 'budgetExhausted', unit: '{hedge}', description: 'Hedged attempts the hedging policy did not start because its budget refused them.' },
];

const HEDGE_LOGS: readonly LogDescription[] = [
  {
    event: 'hedge',
    level: 'off',
    perCall: true,
    plural: 'hedges',
    message: ({ attempt, trigger }: HedgeEvents['hedge'], label: string) => `${label} started attempt ${attempt} (${trigger === 'delay' ? 'no answer within its delay' : 'an attempt failed'})`,
    fields: ({ attempt, trigger }: HedgeEvents['hedge']) => ({ attempt, trigger }),
  },
  {
    event: 'won',
    level: 'off',
    perCall: true,
    plural: 'hedge wins',
    message: ({ attempt }: HedgeEvents['won'], label: string) => `${label}: attempt ${attempt} answered first`,
    fields: ({ attempt }: HedgeEvents['won']) => ({ attempt }),
  },
  {
    event: 'budgetExhausted',
    level: 'warn',
    perCall: true,
    plural: 'hedges denied',
    message: ({ attempt }: HedgeEvents['budgetExhausted'], label: string) => `${label}: the budget refused attempt ${attempt}; no more hedges for this call`,
    fields: ({ attempt }: HedgeEvents['budgetExhausted']) => ({ attempt }),
  },
];

/**
 * Hedging: when no answer came `delay` ms after an attempt started, starts another one, and
 * answers with the first that succeeds (or fails with an answer `hedgeOn` declines). The
 * others are aborted through their `ctx.signal` with a {@link HedgeLostError}, and their
 * outcomes reach no one. A failure `hedgeOn` accepts, or a value `hedgeOnResult` accepts,
 * starts the next attempt at once. When no attempt answered acceptably, the call ends with the
 * last outcome: it rejects with the last failure, or returns the last value. Cuts the tail latency of a
 * dependency whose slow answers are rare and random, at the price of the hedges' extra load.
 *
 * Attempt 1 is the first, attempt k + 1 the k-th hedge: the policies inside, and `ctx.attempt`,
 * count from 1 as inside a retry. Only hedge what is safe to run twice at once: an idempotent
 * read, or a write the server deduplicates.
 *
 * Put a total timeout outside it and a per-attempt timeout, a breaker and a bulkhead inside:
 * the breaker then sees each attempt, and a loser's abort is not counted as a failure.
 *
 * @example
 * ```ts
 * const search = compose(withTimeout(2_000), hedge({ delay: 50, maxHedgedAttempts: 2 }), breaker, withTimeout(500));
 * const hits = await search.execute(({ signal }) => fetch(searchUrl, { signal }).then((r) => r.json()));
 * ```
 */
export function hedge(options?: HedgeOptions): HedgePolicy {
  return new HedgePolicy(options);
}
