/**
 * The options and events of hedging, apart from the policy so the race of one call
 * (race.ts) and the policy (policy.ts) share them without importing each other.
 */
import type { ExecutionContext } from '../engine/contract.js';
import type { Clock } from '../shared/clock.js';

/** What a {@link HedgeDelay} function is asked about: the hedge to schedule. */
export interface HedgeDelayInfo {
  /** The hedge about to be scheduled: 1 for the first hedge (the second attempt of the call). */
  readonly hedge: number;
  /** The attempt number it will run as: `hedge + 1` (the first attempt is 1). */
  readonly attempt: number;
  /**
   * The call's context at the hedging policy: its `signal` aborts when the call is aborted;
   * its `attempt` is the enclosing retry's, if any.
   */
  readonly context: ExecutionContext;
}

/**
 * Computes the delay, in ms, before hedge `info.hedge` starts, counted from the start of the
 * attempt before it: 0 starts it at once, `Infinity` only when an attempt fails. An answer
 * that is not a duration from 0 to 2 147 483 647 ms or `Infinity` (a negative number, NaN, a
 * promise), or a throw, is reported and read as `Infinity`: a broken delay never adds load.
 */
export type HedgeDelay = (info: HedgeDelayInfo) => number;

/**
 * What hedging asks before it starts a hedge, so hedges cannot multiply the load on a
 * dependency that is slow for everyone. A `RetryBudget` is one; any object with these two
 * methods works.
 */
export interface HedgeBudget {
  /** Called once per call through the hedging policy. */
  deposit(): void;
  /** Called before each hedge: `true` lets it start, anything else keeps it from starting. */
  tryWithdraw(): boolean;
}

/** Options of {@link hedge}. */
export interface HedgeOptions {
  /**
   * How long, in ms, to wait for an answer before starting the next attempt, counted from the
   * start of the attempt before it. `0` starts every attempt at once (parallel); `Infinity`
   * starts the next one only when an attempt fails (a fallback to the same dependency). A
   * function computes it per hedge (see {@link HedgeDelay}).
   * @default 2_000
   */
  delay?: number | HedgeDelay | undefined;
  /**
   * Attempts beyond the first: `1` makes at most 2 attempts in all. `0` passes calls through.
   * A whole number from 0 to 10.
   * @default 1
   */
  maxHedgedAttempts?: number | undefined;
  /**
   * Decides whether the failure of attempt `attempt` (1 for the first) falls through: the
   * next attempt starts at once and the others go on. A failure it declines is the call's
   * answer: the call rejects with it and the other attempts are aborted, except a refusal
   * (an open circuit, a full bulkhead inside), which says nothing of the answer: it only
   * stops further hedges, and the attempts running go on. Never asked about an abort. If it
   * throws, the call rejects with what it threw.
   * @default every error but a refusal (see `isRefusal`)
   */
  hedgeOn?: ((error: unknown, attempt: number) => boolean) | undefined;
  /**
   * Decides whether the value attempt `attempt` (1 for the first) returned is not acceptable
   * (an HTTP 503): like a failure `hedgeOn` accepts, it does not answer the call, the next
   * attempt starts at once (`hedge` event with `trigger: 'failure'`) and the others go on.
   * When no attempt answers acceptably, the call ends with the outcome of the attempt that
   * ended last: a value is returned, an error thrown. A value it declines answers the call.
   * If it throws, the call rejects with what it threw; a promise is refused with a `TypeError`.
   * @default none: every value answers the call
   */
  hedgeOnResult?: ((value: unknown, attempt: number) => boolean) | undefined;
  /**
   * Asked before each hedge; when it refuses, that hedge and every later one of the call do
   * not start, and the attempts running go on (event `budgetExhausted`).
   * @default none: every hedge starts
   */
  budget?: HedgeBudget | undefined;
  /**
   * The source of time for the delays.
   * @default systemClock
   */
  clock?: Clock | undefined;
  /** A name for logs and metrics. */
  name?: string | undefined;
}

/** Events of a {@link HedgePolicy}. */
export interface HedgeEvents {
  /** Attempt `attempt` (≥ 2) started, for `trigger`: no answer within its delay (`'delay'`), or an attempt failed or returned a value `hedgeOnResult` accepted (`'failure'`). */
  hedge: { readonly attempt: number; readonly trigger: 'delay' | 'failure' };
  /** Attempt `attempt` (≥ 2), a hedge, answered the call with its value. */
  won: { readonly attempt: number };
  /** The budget refused attempt `attempt` (≥ 2): it and the later ones of the call do not start. */
  budgetExhausted: { readonly attempt: number };
}

