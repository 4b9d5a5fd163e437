/**
 * The context of a call at one depth of a stack, and the work counted under it.
 */
import type { AbortScope, ExecutionContext } from './contract.js';
import type { Frame } from './frame.js';
import { abortedByScope } from './signal.js';
import { release, type Step } from './step.js';

/** What a scope needs of its call. */
export interface ScopeOwner {
  readonly callerSignal: AbortSignal | undefined;
  abort(scope: Scope, reason: unknown): void;
  trackSignal(scope: Scope): void;
  forgetSignal(scope: Scope): void;
}

/**
 * Counts the work still running below one policy that asked to hear when it ends
 * (`trackWork`): a bulkhead's slot, a breaker's trial. The policy's `released` runs once,
 * after `close()` and when the counted work has settled. It names the policy by its step and
 * its token's place rather than holding a closure: one object per tracked call, nothing more.
 */
export class WorkTracker {
  pending = 0;
  /** 0 while the policy is entered, 1 once it is left, 2 once `released` ran. */
  state = 0;
  readonly step: Step;
  readonly frame: Frame;
  readonly slot: number;

  constructor(step: Step, frame: Frame, slot: number) {
    this.step = step;
    this.frame = frame;
    this.slot = slot;
  }

  /** The policy was left: `released` runs as soon as the work inside has settled too. */
  close(): void {
    this.state = 1;
    this.releaseIfIdle();
  }

  releaseIfIdle(): void {
    if (this.state === 1 && this.pending === 0) {
      this.state = 2;
      release(this.step, this.frame.token(this.slot));
    }
  }
}

/**
 * A depth of a call: a timeout opens one it can abort; a retry opens one per attempt that only
 * changes `attempt`; `trackWork` opens one whose work a tracker counts. The object is the
 * `ExecutionContext` the function receives: its own fields are private, so spreading or
 * logging it shows `attempt` alone.
 */
export class Scope implements ExecutionContext {
  readonly attempt: number;
  readonly #owner: ScopeOwner;
  readonly #parent: Scope | undefined;
  /** True for a scope that can be aborted on its own (the root, an abort scope). */
  readonly #abortable: boolean;
  readonly #tracker: WorkTracker | undefined;
  /** The slot, in its frame, of the policy whose `enter` opened this scope; -1 for a frame's first scope. */
  readonly #openedBy: number;
  #aborted = false;
  #reason: unknown = undefined;
  #controller: AbortController | undefined = undefined;

  constructor(owner: ScopeOwner, parent: Scope | undefined, attempt: number, abortable: boolean, tracker: WorkTracker | undefined, openedBy: number) {
    this.attempt = attempt;
    this.#owner = owner;
    this.#parent = parent;
    this.#abortable = abortable;
    this.#tracker = tracker;
    this.#openedBy = openedBy;
  }

  /** True when the policy at `slot` of the frame being left opened this scope (it is not the frame's first). */
  openedBy(slot: number): boolean {
    return this.#openedBy === slot;
  }

  /** The scope this one was opened in (a frame's first scope is never asked). */
  get parent(): Scope {
    return this.#parent as Scope;
  }

  /**
   * The policy that opened this scope is left: an abort scope can abort no more (its signal is
   * forgotten), a tracked scope's work is released once it settles.
   */
  close(): void {
    // Stryker disable next-line ConditionalExpression: only a scope that can be aborted on its own hands out a signal of its own, so only such a scope is ever tracked.
    if (this.#abortable) this.#owner.forgetSignal(this);
    this.#tracker?.close();
  }

  get signal(): AbortSignal {
    if (this.#controller !== undefined) return this.#controller.signal;
    if (!this.#abortable && this.#parent !== undefined) return this.#parent.signal;
    if (this.#parent === undefined && this.#owner.callerSignal !== undefined) return this.#owner.callerSignal;
    const controller = new AbortController();
    this.#controller = controller;
    if (this.isAborted()) this.abortSignal(this.abortReason(), this.abortedOnItsOwn());
    else this.#owner.trackSignal(this);
    return controller.signal;
  }

  isAborted(): boolean {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.#parent) {
      if (scope.#aborted) return true;
    }
    return false;
  }

  /** The reason of the nearest aborted scope, this one or an enclosing one. */
  abortReason(): unknown {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.#parent) {
      if (scope.#aborted) return scope.#reason;
    }
    return undefined;
  }

  /** Marks this scope aborted; false when it already was. */
  markAborted(reason: unknown): boolean {
    // Stryker disable next-line BooleanLiteral: going on keeps the first reason, finds no signal left to abort and no waiter inside (nothing registers in an aborted scope).
    if (this.#aborted) return false;
    this.#aborted = true;
    this.#reason = reason;
    return true;
  }

  /** True for the call's outermost scope, which only the caller's signal aborts. */
  isRoot(): boolean {
    return this.#parent === undefined;
  }

  isWithin(ancestor: Scope): boolean {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.#parent) {
      if (scope === ancestor) return true;
    }
    return false;
  }

  /** Aborts the signal handed out here, if one was; `byScope`: an abort scope's own abort, not the caller's. */
  abortSignal(reason: unknown, byScope: boolean): void {
    const controller = this.#controller;
    if (controller === undefined || controller.signal.aborted) return;
    if (byScope) abortedByScope.add(controller.signal);
    controller.abort(reason);
  }

  /** True when the nearest aborted scope is not the root: an abort scope's own abort, not the caller's. */
  // Stryker disable all: a signal read after its scope aborted is aborted as it is made: an execute given it rejects at once, before any policy reads callerAborted.
  private abortedOnItsOwn(): boolean {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.#parent) {
      if (scope.#aborted) return scope.#parent !== undefined;
    }
    return false;
  }
  // Stryker restore all

  /** Adds `delta` to the work counted by every tracker enclosing this scope. */
  countWork(delta: 1 | -1): void {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.#parent) {
      const tracker = scope.#tracker;
      if (tracker !== undefined) {
        // Stryker disable next-line AssignmentOperator: counting down from 0 instead of up, the count is 0 at the same moments, and only 0 is tested.
        tracker.pending += delta;
        // Stryker disable next-line ConditionalExpression,EqualityOperator: after adding 1 the count is never 0, and only 0 releases.
        if (delta < 0) tracker.releaseIfIdle();
      }
    }
  }

  /** A child scope that can be aborted on its own, opened by the policy at `slot`. */
  openAbortable(slot: number): Scope {
    return new Scope(this.#owner, this, this.attempt, true, undefined, slot);
  }

  /** What aborts this scope, for the policy that opened it (kept apart: the scope is also the function's context). */
  aborter(): AbortScope {
    return new ScopeAborter(this.#owner, this);
  }

  /** A child scope for attempt `attempt`, opened by the policy at `slot`. */
  openAttempt(attempt: number, slot: number): Scope {
    return new Scope(this.#owner, this, attempt, false, undefined, slot);
  }

  /** A child scope whose work `tracker` counts, opened by the policy at `slot`. */
  openTracked(tracker: WorkTracker, slot: number): Scope {
    return new Scope(this.#owner, this, this.attempt, false, tracker, slot);
  }
}

class ScopeAborter implements AbortScope {
  readonly #owner: ScopeOwner;
  readonly #scope: Scope;

  constructor(owner: ScopeOwner, scope: Scope) {
    this.#owner = owner;
    this.#scope = scope;
  }

  abort(reason: unknown): void {
    this.#owner.abort(this.#scope, reason);
  }
}
