/**
 * What `LayerCall.inner()` gives a policy: the policies inside it, to run again or at once.
 */
import type { Clock } from '../shared/clock.js';
import type { InnerLayers, InnerRun } from './contract.js';
import type { Scope } from './scope.js';

/** What an `Inner` needs of its call. */
export interface InnerOwner {
  readonly abortable: boolean;
  next(index: number, scope: Scope): Promise<unknown>;
  abort(scope: Scope, reason: unknown): void;
  forgetSignal(scope: Scope): void;
  sleep(scope: Scope, ms: number, clock: Clock): Promise<void>;
}

/** The policies inside one policy, for a retry or hedging to run again (see `LayerCall.inner`). */
export class Inner implements InnerLayers {
  readonly #call: InnerOwner;
  readonly #from: number;
  readonly #scope: Scope;
  /** The policy that asked declared `abortsWork` (a stack holding one is always abortable). */
  readonly #abortsWork: boolean;

  constructor(call: InnerOwner, from: number, scope: Scope, abortsWork: boolean) {
    this.#call = call;
    this.#from = from;
    this.#scope = scope;
    this.#abortsWork = abortsWork;
  }

  get aborted(): boolean {
    return this.#call.abortable && this.#scope.isAborted();
  }

  run(attempt?: number): Promise<unknown> {
    const scope = this.#scope;
    // Stryker disable next-line UnaryOperator: the scope a run starts in is its frame's base, and walks up a frame stop at the base: its opener (-1) is never read.
    return this.#call.next(this.#from, attempt === undefined || attempt === scope.attempt ? scope : scope.openAttempt(attempt, -1));
  }

  start(attempt?: number): InnerRun {
    const call = this.#call;
    // Checked on the policy, not on the call: a missing `abortsWork` must fail in every call, not only in those a caller's signal or a timeout made abortable.
    if (!this.#abortsWork) throw new Error('InnerLayers.start(): only a policy whose abortsWork is true may start runs it can abort');
    // Stryker disable next-line ConditionalExpression,UnaryOperator: a scope for the same attempt changes nothing read below it (the run's abort scope opens on top either way); the attempt scope is above the run's frame, whose walks stop at its base, so its opener is never read.
    const base = attempt === undefined || attempt === this.#scope.attempt ? this.#scope : this.#scope.openAttempt(attempt, -1);
    // Stryker disable next-line UnaryOperator: this scope is the run's frame's base: its opener (-1) is never read.
    const scope = base.openAbortable(-1);
    const outcome = call.next(this.#from, scope);
    const forget = (): void => call.forgetSignal(scope);
    outcome.then(forget, forget);
    return { outcome, abort: (reason) => call.abort(scope, reason) };
  }

  sleep(ms: number, clock: Clock): Promise<void> {
    return this.#call.sleep(this.#scope, ms, clock);
  }
}
