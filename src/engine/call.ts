/**
 * One `execute()` as it travels down a stack: entering policies, running the function, leaving
 * them with its outcome, and aborting what waits when the caller or a timeout gives up.
 */
import type { Clock } from '../shared/clock.js';
import type { AbortScope, Admission, ExecutionContext, InnerLayers, LayerCall } from './contract.js';
import { Frame } from './frame.js';
import { FAILURE, SUCCESS, finishObserving, newPass, observeRefusal, startObserving } from './observe.js';
import { WorkTracker, type Scope, type ScopeOwner } from './scope.js';
import { brandRefusal } from '../errors.js';
import { abortedByScope } from './signal.js';
import { Inner } from './inner.js';
import { queueChecks } from './checks.js';
import { leaveFrom, leaveGroup, leaveWithErrorFrom } from './leave.js';
import { release, type Step } from './step.js';
import { Invocation, Waiting, addWaiter, sleep, takeWaitersWithin, unlinkWaiter, type Waiter, type WaiterList } from './waiters.js';

/** Which hook runs now, for the handle methods that belong to one. */
const IDLE = 0;
const ENTERING = 1;
const LEAVING = 2;

const settled = /* @__PURE__ */ Promise.resolve();

/** One function for every wait that ends: no closure per waiting call. */
function continueAfterWait(waiting: Waiting): unknown {
  return (waiting.owner as Call).afterWait(waiting);
}


/**
 * The state of one `execute()`. It is also the `LayerCall` handle each hook receives: before a
 * hook runs, the engine points it at the hook's policy (`at`), scope and frame.
 */
export class Call implements LayerCall, ScopeOwner, WaiterList {
  readonly steps: readonly Step[];
  readonly fn: (ctx: ExecutionContext) => unknown;
  readonly callerSignal: AbortSignal | undefined;
  /** False when nothing can abort this call (no caller signal, no policy that aborts work): the function then runs without a race. */
  readonly abortable: boolean;
  /** What the call waits on now: the newest (innermost) of a list linked through the waiters. */
  lastWaiter: Waiter | undefined = undefined;
  /** Scopes whose `signal` was read and may still abort, so an abort reaches their controllers. */
  private signalScopes: Scope[] | undefined = undefined;
  /** Checks to queue once the work now being entered has started (`afterStart`): one, or several. */
  private checks: (() => void) | (() => void)[] | undefined = undefined;
  // The hook running now.
  phase: number = IDLE;
  at = 0;
  /** The scope of the hook running now; in `enter`, the scope the policies inside will run in (setAttempt, trackWork and openAbortScope move it). */
  here: Scope | undefined = undefined;
  frame: Frame | undefined = undefined;

  constructor(steps: readonly Step[], fn: (ctx: ExecutionContext) => unknown, callerSignal: AbortSignal | undefined, abortable: boolean) {
    this.steps = steps;
    this.fn = fn;
    this.callerSignal = callerSignal;
    this.abortable = abortable;
  }

  // ── The LayerCall handle ─────────────────────────────────────────────────────────────────

  get attempt(): number {
    return this.hookScope().attempt;
  }

  get aborted(): boolean {
    return this.abortable && this.hookScope().isAborted();
  }

  /**
   * True once the caller's own signal aborted: from then on no failure is the dependency's. A
   * `ctx.signal` that an abort scope (a timeout) aborted is not a caller's abort, even when
   * passed by hand to an inner `execute`.
   */
  get callerAborted(): boolean {
    const signal = this.callerSignal;
    return signal !== undefined && signal.aborted && !abortedByScope.has(signal);
  }

  get context(): ExecutionContext {
    return this.hookScope();
  }

  setAttempt(attempt: number): void {
    const scope = this.enteringScope('setAttempt');
    if (attempt !== scope.attempt) this.here = scope.openAttempt(attempt, this.at - (this.frame as Frame).from);
  }

  openAbortScope(): AbortScope {
    const scope = this.enteringScope('openAbortScope');
    if (!(this.steps[this.at] as Step).abortsWork) throw new Error('LayerCall.openAbortScope(): only a policy whose abortsWork is true may abort the work inside it');
    const opened = scope.openAbortable(this.at - (this.frame as Frame).from);
    this.here = opened;
    return opened.aborter();
  }

  trackWork(): void {
    const scope = this.enteringScope('trackWork');
    const frame = this.frame as Frame;
    const slot = this.at - frame.from;
    // Nothing can answer the caller early: the policy is left when the work itself settles.
    // Stryker disable next-line ConditionalExpression,BlockStatement: a shortcut: a tracker in such a call counts no work and releases as the policy is left, at the same point.
    if (!this.abortable && slot < 31) {
      frame.releaseAfterLeave |= 1 << slot;
      return;
    }
    this.here = scope.openTracked(new WorkTracker(this.steps[this.at] as Step, frame, slot), slot);
  }

  /** The policy at `at` turned the call away: what its `enter` threw, as the call's outcome. */
  private refused(step: Step, frame: Frame, at: number, slot: number, entry: Scope, thrown: unknown): Promise<unknown> {
    this.phase = IDLE;
    // What enter throws is a refusal by contract: branded, so breakers and retries around treat it as one.
    const refusal = brandRefusal(thrown);
    // It asked to hear when its work ends, then turned the call away: no work ran inside it.
    this.releaseRefused(frame, at, slot, entry);
    if (step.observer !== undefined) observeRefusal(step.observer, refusal);
    return Promise.reject(refusal);
  }

  /**
   * A policy called `trackWork` in `enter`, then threw: its `released` runs now, with no
   * token (it returned none), so a place it took is not lost.
   */
  private releaseRefused(frame: Frame, at: number, slot: number, entry: Scope): void {
    // Stryker disable next-line EqualityOperator: slot 31's bit (1 << 31) is never set, as 0 is not.
    const bit = slot < 31 ? 1 << slot : 0;
    if ((frame.releaseAfterLeave & bit) !== 0) {
      frame.releaseAfterLeave &= ~bit;
      release(this.steps[at] as Step, undefined);
      return;
    }
    for (let scope = this.here as Scope; scope !== entry && scope.openedBy(slot); scope = scope.parent) scope.close();
  }

  afterStart(check: () => void): void {
    this.enteringScope('afterStart');
    const checks = this.checks;
    if (checks === undefined) this.checks = check;
    else if (typeof checks === 'function') this.checks = [checks, check];
    else checks.push(check);
  }

  wait<C = undefined>(onAbort?: (reason: unknown, context: C) => void, context?: C): Admission {
    const scope = this.enteringScope('wait');
    const waiting = new Waiting(this, scope, onAbort as ((reason: unknown, context: unknown) => void) | undefined, context);
    // Stryker disable next-line ConditionalExpression: nothing aborts a call that is not abortable, and its wait unregisters itself as it ends.
    if (this.abortable) {
      // Already aborted: ended in a microtask, once the policy has queued it (so onAbort finds it).
      if (scope.isAborted()) void settled.then(() => waiting.reject(scope.abortReason()));
      else this.register(waiting);
    }
    return waiting;
  }

  inner(): InnerLayers {
    if (this.phase !== LEAVING) throw new Error('LayerCall.inner() can only be called in onValue, onError or run');
    return new Inner(this, this.at + 1, this.hookScope(), (this.steps[this.at] as Step).abortsWork);
  }

  invoke<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>): Promise<T> {
    if (this.phase !== LEAVING) return Promise.reject(new Error('LayerCall.invoke() can only be called in onValue, onError or run'));
    return this.runUserCode(this.hookScope(), fn) as Promise<T>;
  }

  private hookScope(): Scope {
    if (this.phase === IDLE) throw new Error('A LayerCall is valid only while the hook that received it runs: keep inner() for later');
    // Leaving, the scope is found when a hook first asks: most never do.
    if (this.here === undefined) {
      const frame = this.frame as Frame;
      this.here = frame.entryScope(this.at - frame.from);
    }
    return this.here;
  }

  private enteringScope(method: string): Scope {
    if (this.phase !== ENTERING) throw new Error(`LayerCall.${method}() can only be called in enter`);
    return this.here as Scope;
  }

  // ── Entering ─────────────────────────────────────────────────────────────────────────────

  /**
   * Runs the policies from `index` down, and the function past the last one. Policies that
   * let the call through at once are entered in a row and left together when what they wrap
   * settles: one promise reaction for all of them.
   */
  next(index: number, scope: Scope): Promise<unknown> {
    const steps = this.steps;
    // Past the last policy (a call that waited at the innermost one) there is nothing to enter.
    if (index === steps.length) return this.runUserCode(scope, this.fn);
    const frame = new Frame(index, scope);
    let inner = scope;
    let at = index;
    let outcome: Promise<unknown> | undefined;
    let waited = false;
    this.frame = frame;
    for (; at < steps.length; at++) {
      const step = steps[at] as Step;
      if (step.run !== undefined) break;
      const slot = at - index;
      let token: unknown = undefined;
      const enter = step.enter;
      if (enter !== undefined) {
        this.phase = ENTERING;
        this.at = at;
        this.here = inner;
        try {
          token = enter.call(step.layer, this);
        } catch (thrown) {
          outcome = this.refused(step, frame, at, slot, inner, thrown);
          break;
        }
        this.phase = IDLE;
        inner = this.here as Scope;
      }
      // Stryker disable next-line ConditionalExpression: a new frame's slots hold undefined already.
      if (token !== undefined) frame.keep(slot, token);
      const observer = step.observer;
      if (observer !== undefined) {
        if (frame.observations === undefined) newPass();
        // Stryker disable next-line ArithmeticOperator: the size of the frame's observations; a larger array holds the same entries.
        frame.observe(slot, observer, startObserving(observer), steps.length - index);
      }
      if (token instanceof Waiting) {
        at++;
        frame.waitingSlot = slot;
        token.frame = frame;
        // The frame is left by the wait's continuation, whichever way the wait ends.
        outcome = token.promise.then(continueAfterWait);
        waited = true;
        break;
      }
    }
    frame.to = at;
    frame.cursor = inner;
    // Stryker disable next-line BooleanLiteral: false only for a refused or a waiting call: three microtasks instead of one change whether a check finds a call that settled in between, never a deadline.
    let intoRun = false;
    if (outcome === undefined) {
      intoRun = at < steps.length;
      if (intoRun) outcome = this.leaveGroup(frame, this.runOne(at, inner));
      else outcome = this.runUserCode(inner, this.fn, frame);
    } else if (!waited) {
      outcome = this.leaveGroup(frame, outcome);
    }
    const checks = this.checks;
    if (checks !== undefined) {
      this.checks = undefined;
      queueChecks(checks, intoRun);
    }
    return outcome;
  }

  /**
   * A wait ended: let in, the policies inside run and the frame is left with their outcome;
   * turned away or aborted, the frame is left with that error at once.
   */
  afterWait(waiting: Waiting): unknown {
    const frame = waiting.frame as Frame;
    if (waiting.failed) return this.leaveWithErrorFrom(frame, frame.to, waiting.outcome);
    // Let in: from now on it is left like any policy, whatever its token (even the admission itself).
    frame.keep(frame.waitingSlot, waiting.outcome);
    frame.waitingSlot = -1;
    return this.leaveGroup(frame, this.next(frame.to, frame.cursor));
  }

  /** Runs the policy at `index` with its own `run`. */
  private runOne(index: number, scope: Scope): Promise<unknown> {
    const step = this.steps[index] as Step;
    const run = step.run as (call: LayerCall) => Promise<unknown>;
    const start = (): Promise<unknown> => {
      this.phase = LEAVING;
      this.at = index;
      this.here = scope;
      try {
        return Promise.resolve(run.call(step.layer, this));
      } catch (error) {
        return Promise.reject(error);
      } finally {
        this.phase = IDLE;
      }
    };
    const observer = step.observer;
    if (observer === undefined) return start();
    newPass();
    const token = startObserving(observer);
    return start().then(
      (value) => {
        newPass();
        finishObserving(observer, token, SUCCESS, undefined);
        return value;
      },
      (error: unknown) => {
        newPass();
        finishObserving(observer, token, FAILURE, error);
        throw error;
      },
    );
  }

  leaveGroup(frame: Frame, inner: Promise<unknown>): Promise<unknown> {
    return leaveGroup(this, frame, inner);
  }

  leaveFrom(frame: Frame, top: number, value: unknown): unknown {
    return leaveFrom(this, frame, top, value);
  }

  leaveWithErrorFrom(frame: Frame, top: number, error: unknown): unknown {
    return leaveWithErrorFrom(this, frame, top, error);
  }

  // ── User code ────────────────────────────────────────────────────────────────────────────

  /**
   * Runs user code (the function, a fallback, a foreign policy) and settles with its outcome,
   * or with the abort reason as soon as `scope` aborts, even when the code ignores its signal.
   * A synchronous throw, or a result whose `then` throws, becomes a rejection. With a `frame`,
   * it leaves the frame's policies as the code settles: the same as `leaveGroup(frame, …)`
   * with one promise hop fewer, which is most of what a stack costs on the success path.
   */
  runUserCode(scope: Scope, fn: (ctx: ExecutionContext) => unknown, frame?: Frame): Promise<unknown> {
    if (!this.abortable) {
      let outcome: Promise<unknown>;
      try {
        outcome = Promise.resolve(fn(scope));
      } catch (error) {
        outcome = Promise.reject(error);
      }
      return frame === undefined ? outcome : this.leaveGroup(frame, outcome);
    }
    if (scope.isAborted()) {
      const aborted = Promise.reject(scope.abortReason());
      return frame === undefined ? aborted : this.leaveGroup(frame, aborted);
    }
    const invocation = new Invocation(this, frame, scope);
    const answer = new Promise((resolve, reject) => {
      invocation.resolve = resolve;
      invocation.rejectAnswer = reject;
    });
    // Registered before the code runs, so work it starts synchronously (a foreign policy
    // running inner policies) is nested inside it, and counted against the trackers that
    // enclose this scope only.
    this.register(invocation);
    scope.countWork(1);
    let result: unknown;
    try {
      result = fn(scope);
    } catch (error) {
      invocation.workSettled();
      invocation.leaveWithError(error);
      return answer;
    }
    Promise.resolve(result).then(
      (value) => {
        invocation.workSettled();
        invocation.leave(value);
      },
      (error: unknown) => {
        invocation.workSettled();
        invocation.leaveWithError(error);
      },
    );
    return answer;
  }

  // ── Waiting and aborting ─────────────────────────────────────────────────────────────────

  /** Waits `ms` on `clock`, or rejects with the abort reason as soon as `scope` aborts (and clears the timer then). */
  sleep(scope: Scope, ms: number, clock: Clock): Promise<void> {
    return sleep(this, scope, ms, clock);
  }

  register(waiter: Waiter): void {
    addWaiter(this, waiter);
  }

  removeWaiter(waiter: Waiter): void {
    unlinkWaiter(this, waiter);
  }

  /**
   * Aborts `scope` (an abort scope's, or the root one when the caller aborts): marks it, aborts
   * the signals the user read inside it, and rejects everything waiting inside it, innermost
   * first.
   */
  abort(scope: Scope, reason: unknown): void {
    if (!scope.markAborted(reason)) return;
    if (this.signalScopes !== undefined) {
      const byScope = !scope.isRoot();
      for (const candidate of this.signalScopes) {
        if (candidate.isWithin(scope)) candidate.abortSignal(reason, byScope);
      }
    }
    // Unregister first, then reject: a rejection may register or remove other waiters.
    for (const waiter of takeWaitersWithin(this, scope)) waiter.reject(reason);
  }

  trackSignal(scope: Scope): void {
    (this.signalScopes ??= []).push(scope);
  }

  /** Forgets a scope that can no longer abort (its policy was left), so a long call does not pile up controllers. */
  forgetSignal(scope: Scope): void {
    const scopes = this.signalScopes;
    if (scopes === undefined) return;
    const at = scopes.indexOf(scope);
    if (at !== -1) scopes.splice(at, 1);
  }
}

