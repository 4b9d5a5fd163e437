import type { CounterDescription, GaugeDescription, PolicyDescription } from './engine/contract.js';
import { Emitter, type Listener, type Unsubscribe } from './events.js';
import { MAX_TIMER_DELAY, systemClock, type Clock } from './shared/clock.js';
import { RETRY_COUNTERS } from './shared/metric-catalog.js';
import * as validate from './shared/validate.js';

/** Options of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /**
   * Retries allowed per call deposited in the window, on top of the minimum: `0.2` lets
   * retries add at most 20 % to the load of a failing dependency. From 0 (only the minimum)
   * to 1 000.
   * @default 0.2
   */
  ratio?: number | undefined;
  /**
   * Retries allowed per second whatever the traffic, so a service with few calls can still
   * retry: the window holds a reserve of `minPerSecond × window / 1000` retries. ≥ 0.
   * @default 10
   */
  minPerSecond?: number | undefined;
  /**
   * How long, in ms, a call deposited and a retry withdrawn count. Time is cut in 20 buckets
   * of `window / 20` ms: a deposit or a withdrawal leaves the window with its bucket, so it
   * counts for at least `window × 19/20` ms and at most `window` ms. From 1 to 2 147 483 647.
   * @default 10_000
   */
  window?: number | undefined;
  /**
   * The source of time; only `now()` is read (the budget arms no timer).
   * @default systemClock
   */
  clock?: Pick<Clock, 'now'> | undefined;
  /** A name for logs. */
  name?: string | undefined;
}

/** Events of a {@link RetryBudget}. */
export interface RetryBudgetEvents {
  /**
   * A retry (or hedge) was refused: the budget is spent. `deposits` are the calls and
   * `withdrawals` the retries the window holds now. Emitted for every refusal.
   */
  exhausted: { readonly deposits: number; readonly withdrawals: number };
}

/** Buckets per window: the granularity with which deposits and withdrawals leave it. */
const BUCKETS = 20;

/**
 * Slack for the floating point sum `reserve + ratio × deposits` (`0.29 × 100` is
 * 28.999999999999996): a sum this close below a whole number counts as that number.
 */
const EPSILON = 1e-9;

const MAX_RATIO = 1_000;

/** What `take()` answers when the budget is spent (a receipt is a bucket's serial, ≥ 0). */
const SPENT = -1;

const OPTION_KEYS: readonly (keyof RetryBudgetOptions)[] = ['ratio', 'minPerSecond', 'window', 'clock', 'name'];
const PEER_NAMES: validate.PeerNames = {
  percentCanRetry: '"ratio"',
  tokenRatio: '"ratio"',
  budgetPercent: '"ratio"',
  minRetriesPerSec: '"minPerSecond"',
  minRetriesPerSecond: '"minPerSecond"',
  ttl: '"window"',
};

/**
 * A budget of retries shared by any number of retry (and hedging) policies, against retry
 * storms: when a dependency fails, every caller retrying multiplies its load (4× with three
 * retries) just when it can least take it. The budget allows, within its window, at most
 *
 *   `minPerSecond × window / 1000 + ratio × calls − retries`
 *
 * more retries, counting the calls deposited and the retries withdrawn in the window (the
 * defaults, Finagle's: 20 % of recent calls plus 10 per second over 10 s). A policy with a
 * budget deposits once per call and withdraws once per retry; when the budget is spent, the
 * failure passes through at once.
 *
 * No timer ever: time is cut in 20 buckets per window, moved on from the clock when the budget
 * is read, so its memory is constant and an idle budget costs nothing.
 *
 * @example
 * ```ts
 * const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 5 });
 * const users = retryWithBackoff({ maxRetries: 3, budget });
 * const orders = retryWithBackoff({ maxRetries: 2, budget }); // one budget for the whole service
 * ```
 */
export class RetryBudget {
  /** Retries allowed per call in the window. */
  readonly ratio: number;
  /** Retries allowed per second whatever the traffic. */
  readonly minPerSecond: number;
  /** How long, in ms, deposits and withdrawals count. */
  readonly window: number;
  /** The name given in the options, if any. */
  readonly name: string | undefined;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly events = new Emitter<RetryBudgetEvents>(['exhausted']);
  /** `minPerSecond × window / 1000`: the retries every window allows without any call. */
  private readonly reserve: number;
  private readonly origin: number;
  /** Calls deposited, per bucket: the bucket of serial `s` is at `s % BUCKETS`. */
  private readonly deposits = new Float64Array(BUCKETS);
  /** Retries withdrawn, per bucket. */
  private readonly withdrawals = new Float64Array(BUCKETS);
  private depositTotal = 0;
  private withdrawalTotal = 0;
  /** The serial of the current bucket: buckets since `origin`. */
  private serial = 0;

  constructor(options?: RetryBudgetOptions) {
    const opts = validate.options('RetryBudget', options, OPTION_KEYS, PEER_NAMES);
    this.ratio = opts.ratio === undefined ? 0.2 : finiteWithin('RetryBudget ratio', opts.ratio, 0, MAX_RATIO);
    this.minPerSecond = opts.minPerSecond === undefined ? 10 : validate.finite('RetryBudget minPerSecond', opts.minPerSecond, 0);
    this.window = opts.window === undefined ? 10_000 : finiteWithin('RetryBudget window', opts.window, 1, MAX_TIMER_DELAY, ' (a duration in ms)');
    this.clock = opts.clock === undefined ? systemClock : clockWithNow('RetryBudget clock', opts.clock);
    this.name = opts.name === undefined ? undefined : validate.text('RetryBudget name', opts.name);
    this.reserve = (this.minPerSecond * this.window) / 1000;
    const now = this.clock.now();
    this.origin = Number.isFinite(now) ? now : 0; // a clock that reads NaN now must not stop the window for good
  }

  /**
   * Counts one call. A retry or hedging policy calls it once per call it runs (on the first
   * attempt), whatever its outcome.
   */
  deposit(): void {
    this.advance();
    const slot = this.serial % BUCKETS;
    this.deposits[slot] = (this.deposits[slot] as number) + 1;
    this.depositTotal++;
  }

  /**
   * Takes one retry (or hedge) from the budget: true when it may go, false when the budget is
   * spent (then nothing is taken and `exhausted` is emitted).
   */
  tryWithdraw(): boolean {
    return this.take() !== SPENT;
  }

  /** How many retries the budget would allow now: a whole number ≥ 0 (at most `Number.MAX_SAFE_INTEGER`). */
  get available(): number {
    this.advance();
    const allowed = Math.floor(this.allowance() + EPSILON);
    return allowed > 0 ? Math.min(allowed, Number.MAX_SAFE_INTEGER) : 0;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof RetryBudgetEvents>(event: K, listener: Listener<RetryBudgetEvents[K]>): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** The retries the window allows before rounding: may be fractional or negative. */
  private allowance(): number {
    return this.reserve + this.ratio * this.depositTotal - this.withdrawalTotal;
  }

  /** Takes one retry: the serial of the bucket it was counted in, or `SPENT`. */
  private take(): number {
    this.advance();
    if (!(this.allowance() + EPSILON >= 1)) {
      if (this.events.has('exhausted')) this.events.emit('exhausted', { deposits: this.depositTotal, withdrawals: this.withdrawalTotal });
      return SPENT;
    }
    const slot = this.serial % BUCKETS;
    this.withdrawals[slot] = (this.withdrawals[slot] as number) + 1;
    this.withdrawalTotal++;
    return this.serial;
  }

  /** Gives back a retry taken in bucket `serial` that never ran; nothing once that bucket left the window. */
  private giveBack(serial: number): void {
    this.advance();
    if (serial <= this.serial - BUCKETS || serial > this.serial) return;
    const slot = serial % BUCKETS;
    this.withdrawals[slot] = (this.withdrawals[slot] as number) - 1;
    this.withdrawalTotal--;
  }

  /** What a retry policy with this budget describes besides its own: the budget's gauge, and the counter of give-ups it caused. */
  private describeRetry(on: (event: string, listener: (payload: any) => void) => Unsubscribe): Partial<PolicyDescription> {
    return {
      // Built here rather than at load: a spread at the top level is code a bundler keeps.
      counters: [...RETRY_COUNTERS, BUDGET_GIVE_UPS],
      gauges: RETRY_BUDGET_GAUGES,
      readGauges: () => ({ retryBudgetAvailable: this.available }),
      // The counter of budget give-ups counts the retry's give-ups whose reason is the budget.
      on: (event, listener) =>
        event === BUDGET_GIVE_UP
          ? on('giveUp', (payload: { reason: string }) => {
              if (payload.reason === 'budget-spent') listener(payload);
            })
          : on(event, listener),
    };
  }

  /** Moves the window on to the clock's time, emptying the buckets that left it. */
  private advance(): void {
    // × BUCKETS before ÷ window: exact for whole milliseconds, where ÷ (window / BUCKETS) is not (7 / 0.35 < 20).
    const serial = Math.floor(((this.clock.now() - this.origin) * BUCKETS) / this.window);
    // A clock that stepped back (or read NaN) leaves the window where it is.
    if (!(serial > this.serial)) return;
    if (serial - this.serial >= BUCKETS) {
      this.deposits.fill(0);
      this.withdrawals.fill(0);
      this.depositTotal = 0;
      this.withdrawalTotal = 0;
    } else {
      for (let next = this.serial + 1; next <= serial; next++) {
        const slot = next % BUCKETS;
        this.depositTotal -= this.deposits[slot] as number;
        this.withdrawalTotal -= this.withdrawals[slot] as number;
        this.deposits[slot] = 0;
        this.withdrawals[slot] = 0;
      }
    }
    this.serial = serial;
  }
}

/**
 * What a retry policy uses of its budget besides `deposit()`: members TypeScript keeps
 * private, reached through this shape only (the budget's code stays out of a bundle that uses
 * retries without one). Not public.
 */
export interface RetryBudgetInternals {
  /** Takes one retry: the serial of the bucket it was counted in (its receipt), or -1 when spent. */
  take(): number;
  /** Gives back the retry of `receipt`: it never ran. */
  giveBack(receipt: number): void;
  /** What the description of a retry policy with this budget adds; `on` subscribes to the policy's events. */
  describeRetry(on: (event: string, listener: (payload: any) => void) => Unsubscribe): Partial<PolicyDescription>;
}

/** The event the counter of budget give-ups is fed by: `giveUp` with `reason: 'budget-spent'`. */
const BUDGET_GIVE_UP = 'giveUp:budget-spent';

const BUDGET_GIVE_UPS: CounterDescription = {
  field: 'retryBudgetGiveUps',
  event: BUDGET_GIVE_UP,
  unit: '{call}',
  description: 'Calls the retry policy gave up on because its retry budget was spent.',
};

const RETRY_BUDGET_GAUGES: readonly GaugeDescription[] = [
  {
    field: 'retryBudgetAvailable',
    prometheus: 'retry_budget_available_retries',
    otel: 'bulwark.retry.budget.available',
    description: "Retries the retry policy's budget would allow now.",
    unit: '{retry}',
    type: 'count',
  },
];

function finiteWithin(name: string, value: unknown, min: number, max: number, what = ''): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${validate.show(value)}`);
  if (!(value >= min && value <= max)) throw new RangeError(`${name} must be a number from ${min} to ${max}${what}, got ${validate.show(value)}`);
  return value;
}

function clockWithNow(name: string, value: Pick<Clock, 'now'>): Pick<Clock, 'now'> {
  const candidate = value as { now?: unknown } | null;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.now !== 'function') {
    throw new TypeError(`${name} must be a Clock with now(), got ${validate.show(value)}`);
  }
  return value;
}
