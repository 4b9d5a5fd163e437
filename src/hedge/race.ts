/**
 * One call through a hedging policy: the attempts it races, the timer of the next hedge, and
 * the error its losers are aborted with.
 */
import type { ExecutionContext, InnerLayers, InnerRun } from '../engine/contract.js';
import { ResilienceError, isRefusal, refusal, withoutStack } from '../errors.js';
import type { Emitter } from '../events.js';
import { MAX_TIMER_DELAY, type Clock } from '../shared/clock.js';
import { isThenable, reportCallbackError, synchronousAnswer, watchReturned } from '../shared/report.js';
import { show } from '../shared/show.js';
import type { HedgeBudget, HedgeDelay, HedgeEvents } from './types.js';

/**
 * What an attempt that lost the race is aborted with (its `ctx.signal.reason`): another attempt
 * settled the call. It never reaches the caller. It is a refusal (`isRefusal` is true), so a
 * circuit breaker inside the hedging policy does not count a loser as a failure of the
 * dependency, and a retry inside does not repeat it.
 */
export class HedgeLostError extends ResilienceError {
  /** Always `'HedgeLostError'`. */
  override readonly name = 'HedgeLostError' as const;
  /** The attempt that settled the call. */
  readonly winner: number;

  constructor(winner: number) {
    super(`Attempt ${winner} of the hedged call settled it first`);
    this.winner = winner;
    // Branded on the prototype, once, by the first one made: a brand set when the module loads
    // would be code that runs in every bundle of bulwark, hedging or not.
    if (!prototypeBranded) {
      refusal(HedgeLostError.prototype);
      prototypeBranded = true;
    }
  }
}

let prototypeBranded = false;

/** What every call through one hedging policy reads: its options and its events. */
export interface Settings {
  readonly delay: number | HedgeDelay;
  readonly maxHedgedAttempts: number;
  readonly hedgeOn: (error: unknown, attempt: number) => boolean;
  readonly hedgeOnResult: ((value: unknown, attempt: number) => boolean) | undefined;
  readonly budget: HedgeBudget | undefined;
  readonly clock: Clock;
  readonly events: Emitter<HedgeEvents>;
}

/** The delay before hedge `hedge`; a delay function's throw or bad answer is reported and read as `Infinity`. */
function delayOf(delay: number | HedgeDelay, hedge: number, context: ExecutionContext | undefined): number {
  if (typeof delay === 'number') return delay;
  let ms: unknown;
  try {
    ms = delay({ hedge, attempt: hedge + 1, context: context as ExecutionContext });
  } catch (error) {
    reportCallbackError('the hedge delay function', error);
    return Infinity;
  }
  if (typeof ms === 'number' && ((ms >= 0 && ms <= MAX_TIMER_DELAY) || ms === Infinity)) return ms;
  const promise = isThenable(ms);
  if (promise) watchReturned('the hedge delay function', ms);
  const got = promise ? 'a promise' : show(ms);
  reportCallbackError('the hedge delay function', new TypeError(`hedge delay(info) must return a duration in ms from 0 to ${MAX_TIMER_DELAY} or Infinity, got ${got}; read as Infinity`));
  return Infinity;
}

/** Asks the budget for a hedge: a throw, or an answer other than true or false, is reported and read as false. */
function withdraw(budget: HedgeBudget): boolean {
  let answer: unknown;
  try {
    answer = synchronousAnswer('hedge budget.tryWithdraw()', budget.tryWithdraw());
  } catch (error) {
    reportCallbackError('hedge budget.tryWithdraw()', error);
    return false;
  }
  if (typeof answer === 'boolean') return answer;
  reportCallbackError('hedge budget.tryWithdraw()', new TypeError(`hedge budget.tryWithdraw() must return true or false, got ${show(answer)}; read as false`));
  return false;
}

/** What `finish` is given when no attempt settled the call: an abort, or every attempt failed. */
const NO_WINNER = -1;

const settled = /* @__PURE__ */ Promise.resolve();

/*
 * Most calls are answered within a few microtasks of their start (a cache hit, an answer
 * already buffered): arming a timer for them, and clearing it, would cost more than the rest of
 * the call. So the timers of the calls that scheduled a hedge are armed together two microtasks
 * later, once an answer that was already there has come through. No timer can fire while
 * microtasks run, so a delay starts late only by the synchronous work of those microtasks,
 * never early. The calls wait in one module-level list: no closure per call.
 */
let waitingToArm: HedgedCall[] = [];

function armSoon(call: HedgedCall): void {
  if (waitingToArm.push(call) === 1) void settled.then(afterOneHop);
}

function afterOneHop(): void {
  void settled.then(armWaiting);
}

function armWaiting(): void {
  const calls = waitingToArm;
  waitingToArm = [];
  for (const call of calls) {
    try {
      call.arm();
    } catch (error) {
      // An injected clock that throws: that call hedges no more on time, the others still do.
      reportCallbackError('the hedge clock.setTimeout()', error);
    }
  }
}

/**
 * One call through a hedging policy: the attempts it started, the timer of the next hedge, and
 * whether it is settled. Attempts are counted from 1, whatever the enclosing attempt (as inside
 * a retry).
 */
export class HedgedCall {
  readonly settings: Settings;
  readonly inner: InnerLayers;
  readonly context: ExecutionContext | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  /** The first attempt while it runs. */
  first: InnerRun | undefined = undefined;
  /** The hedges started, by attempt number − 2, each while it runs (made with the first hedge). */
  hedges: (InnerRun | undefined)[] | undefined = undefined;
  started = 0;
  running = 0;
  /** No further hedge starts: a refusal declined by `hedgeOn`, or the budget refused one. */
  stopped = false;
  done = false;
  timer: unknown = undefined;
  /** The delay of a timer about to be armed (see `armSoon`). */
  toArm: number | undefined = undefined;
  /** How the attempt that ended last without answering the call ended: `lastError` threw, or (`lastReturned`) returned it. */
  lastError: unknown = undefined;
  lastReturned = false;

  constructor(settings: Settings, inner: InnerLayers, context: ExecutionContext | undefined, resolve: (value: unknown) => void, reject: (error: unknown) => void) {
    this.settings = settings;
    this.inner = inner;
    this.context = context;
    this.resolve = resolve;
    this.reject = reject;
  }

  begin(): void {
    this.launch('delay');
    this.schedule();
  }

  /** Starts the next attempt; false when the budget refused it (hedging then stops). */
  private launch(trigger: 'delay' | 'failure'): boolean {
    const attempt = this.started + 1;
    if (attempt > 1) {
      const { budget, events } = this.settings;
      if (budget !== undefined && !withdraw(budget)) {
        this.stopped = true;
        // Stryker disable next-line ConditionalExpression: emit() with no listener returns at once; the guard only spares building the payload.
        if (events.has('budgetExhausted')) events.emit('budgetExhausted', { attempt });
        return false;
      }
      // Stryker disable next-line ConditionalExpression: emit() with no listener returns at once; the guard only spares building the payload.
      if (events.has('hedge')) events.emit('hedge', { attempt, trigger });
    }
    this.started = attempt;
    this.running++;
    let run: InnerRun;
    try {
      run = this.inner.start(attempt);
    } catch (error) {
      // Not expected of the engine; an attempt that could not start fails like one that threw.
      run = { outcome: Promise.reject(error), abort: () => {} };
    }
    if (attempt === 1) this.first = run;
    else (this.hedges ??= []).push(run);
    run.outcome.then(
      (value) => this.succeeded(attempt, value),
      (error: unknown) => this.failed(attempt, error),
    );
    return true;
  }

  /** Arms the timer of the next hedge, or starts the hedges whose delay is 0 at once. */
  private schedule(): void {
    // Stryker disable next-line ConditionalExpression,LogicalOperator: no caller schedules a call that is done or stopped (their outcomes come in later microtasks; a refused hedge returns first), so only the count decides.
    while (!this.done && !this.stopped && this.started <= this.settings.maxHedgedAttempts) {
      const delay = delayOf(this.settings.delay, this.started, this.context);
      if (delay === Infinity) return;
      if (delay > 0) {
        this.armSoon(delay);
        return;
      }
      if (!this.launch('delay')) return;
    }
  }

  /** Arms the timer of the next hedge a little later (see `armSoon`). */
  private armSoon(delay: number): void {
    if (this.toArm === undefined) armSoon(this);
    this.toArm = delay;
  }

  /** Arms the timer of the next hedge, if the call still needs it. */
  arm(): void {
    const delay = this.toArm;
    this.toArm = undefined;
    if (delay === undefined || this.done || this.timer !== undefined) return;
    this.timer = this.settings.clock.setTimeout(() => this.fire(), delay);
  }

  private fire(): void {
    this.timer = undefined;
    // An abort reaches this call through the outcomes of the attempts running: start nothing.
    if (this.done || this.inner.aborted) return;
    if (this.launch('delay')) this.schedule();
  }

  private succeeded(attempt: number, value: unknown): void {
    this.ended(attempt);
    if (this.done) return;
    const hedgeOnResult = this.settings.hedgeOnResult;
    if (hedgeOnResult !== undefined && !this.inner.aborted) {
      let unacceptable: unknown;
      try {
        unacceptable = synchronousAnswer('hedge hedgeOnResult', hedgeOnResult(value, attempt));
      } catch (thrown) {
        return this.fail(attempt, thrown);
      }
      if (unacceptable) return this.fellThrough(value, true);
    }
    this.finish(attempt);
    const events = this.settings.events;
    if (attempt > 1 && events.has('won')) events.emit('won', { attempt });
    this.resolve(value);
  }

  private failed(attempt: number, error: unknown): void {
    this.ended(attempt);
    if (this.done) return;
    // The caller aborted, or a timeout around expired: every attempt ends with it, and so does the call.
    if (this.inner.aborted) return this.fail(NO_WINNER, error);
    let falls: unknown;
    try {
      falls = synchronousAnswer('hedge hedgeOn', this.settings.hedgeOn(error, attempt));
    } catch (thrown) {
      return this.fail(attempt, thrown);
    }
    if (!falls) {
      // A declined failure is the answer; a declined refusal (the attempt never reached the
      // dependency) only stops the hedges: the attempts running may still answer.
      if (!isRefusal(error)) return this.fail(attempt, error);
      this.stopped = true;
      this.clearTimer();
    }
    this.fellThrough(error, false);
  }

  /**
   * An attempt ended without answering the call (`subject` thrown, or `returned` and not
   * acceptable): the next attempt starts at once, or, when none is left and none runs, the
   * call answers with this last outcome (a value is returned, an error thrown).
   */
  private fellThrough(subject: unknown, returned: boolean): void {
    this.lastError = subject;
    this.lastReturned = returned;
    if (!this.stopped && this.started <= this.settings.maxHedgedAttempts) {
      this.clearTimer();
      if (this.launch('failure')) return this.schedule();
    }
    if (this.running !== 0) return;
    if (!this.lastReturned) return this.fail(NO_WINNER, this.lastError);
    this.finish(NO_WINNER);
    this.resolve(this.lastError);
  }

  private fail(attempt: number, error: unknown): void {
    this.finish(attempt);
    this.reject(error);
  }

  /** The call is settled by `attempt` (`NO_WINNER`: by an abort, or every attempt failed): the others are aborted. */
  private finish(attempt: number): void {
    this.done = true;
    this.clearTimer();
    // Stryker disable next-line ConditionalExpression,LogicalOperator: a shortcut: with none running every run is cleared, and without a winner the engine has aborted every run with its reason first.
    if (this.running === 0 || attempt === NO_WINNER) return;
    const lost = withoutStack(() => new HedgeLostError(attempt));
    this.first?.abort(lost);
    if (this.hedges !== undefined) for (const run of this.hedges) run?.abort(lost);
  }

  /** Attempt `attempt` settled: it is no longer running, nor aborted with the others. */
  private ended(attempt: number): void {
    this.running--;
    if (attempt === 1) this.first = undefined;
    else (this.hedges as (InnerRun | undefined)[])[attempt - 2] = undefined;
  }

  private clearTimer(): void {
    this.toArm = undefined;
    if (this.timer === undefined) return;
    this.settings.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

