/**
 * What a call waits on that an abort must end at once: the user's code (an `Invocation`) and a
 * policy's queue place (a `Waiting`).
 */
import { brandRefusal } from '../errors.js';
import { reportCallbackError } from '../shared/report.js';
import type { Clock } from '../shared/clock.js';
import type { Admission } from './contract.js';
import type { Frame } from './frame.js';
import type { Scope } from './scope.js';

/**
 * Something a call is waiting on (the user's function, a retry sleep, a queue place) that an
 * abort of `scope` or of an enclosing scope must end at once.
 */
export interface Waiter {
  readonly scope: Scope;
  /** Ends the wait with the abort's reason; runs at most once, and only while registered. */
  reject(reason: unknown): void;
  /** The waiter registered before this one (an intrusive list: registering allocates nothing more). */
  previousWaiter: Waiter | undefined;
  nextWaiter: Waiter | undefined;
  registered: boolean;
}

/**
 * What a call waits on: a list linked through the waiters themselves, newest (innermost) last,
 * so registering allocates nothing. The call keeps the list's end; these functions keep the links.
 */
export interface WaiterList {
  lastWaiter: Waiter | undefined;
}

/** Registers something the call waits on; its `reject` runs once if its scope aborts first. */
export function addWaiter(list: WaiterList, waiter: Waiter): void {
  waiter.registered = true;
  waiter.previousWaiter = list.lastWaiter;
  waiter.nextWaiter = undefined;
  if (list.lastWaiter !== undefined) list.lastWaiter.nextWaiter = waiter;
  list.lastWaiter = waiter;
}

/** Unregisters a waiter that ended by itself; one already ended by an abort is ignored. */
export function unlinkWaiter(list: WaiterList, waiter: Waiter): void {
  if (!waiter.registered) return;
  waiter.registered = false;
  const { previousWaiter, nextWaiter } = waiter;
  if (previousWaiter !== undefined) previousWaiter.nextWaiter = nextWaiter;
  if (nextWaiter !== undefined) nextWaiter.previousWaiter = previousWaiter;
  else list.lastWaiter = previousWaiter;
  waiter.previousWaiter = undefined;
  waiter.nextWaiter = undefined;
}

/** Unregisters the waiters inside `scope` and returns them, innermost first. */
export function takeWaitersWithin(list: WaiterList, scope: Scope): Waiter[] {
  const taken: Waiter[] = [];
  for (let waiter = list.lastWaiter; waiter !== undefined; waiter = waiter.previousWaiter) {
    if (waiter.scope.isWithin(scope)) taken.push(waiter);
  }
  for (const waiter of taken) unlinkWaiter(list, waiter);
  return taken;
}

/** What a waiter needs of its call. */
export interface WaiterOwner {
  readonly abortable?: boolean;
  register?(waiter: Waiter): void;
  removeWaiter(waiter: Waiter): void;
  leaveFrom(frame: Frame, top: number, value: unknown): unknown;
  leaveWithErrorFrom(frame: Frame, top: number, error: unknown): unknown;
}

function ignore(): void {}

const settled = /* @__PURE__ */ Promise.resolve();

/**
 * User code running in a call that can be aborted, below a group of entered policies or none:
 * the policies are left when it settles or, at once, when its scope aborts (it may keep
 * running: the work trackers around it count it until it settles). One object is the waiter
 * and the answer's state.
 */
export class Invocation implements Waiter {
  readonly owner: WaiterOwner;
  readonly frame: Frame | undefined;
  readonly scope: Scope;
  resolve: (value: unknown) => void = ignore;
  rejectAnswer: (error: unknown) => void = ignore;
  answered = false;
  previousWaiter: Waiter | undefined = undefined;
  nextWaiter: Waiter | undefined = undefined;
  // Stryker disable next-line BooleanLiteral: runUserCode() registers every invocation as soon as it is made, which sets it.
  registered = false;

  constructor(owner: WaiterOwner, frame: Frame | undefined, scope: Scope) {
    this.owner = owner;
    this.frame = frame;
    this.scope = scope;
  }

  /**
   * The scope aborted: answer with its reason. With policies to leave, in a microtask of its
   * own, so no policy's leave (a retry, a fallback) runs inside the loop that aborts; but the
   * answer is decided now: code that settles in its own abort listener (a fetch that resolves
   * with what it had) must not slip its value past the policies in that microtask's wait.
   */
  reject(reason: unknown): void {
    // Stryker disable next-line ConditionalExpression: only a registered invocation is rejected, once (an abort unregisters it first), and it is answered only after workSettled() unregistered it.
    if (this.answered) return;
    if (this.frame === undefined) {
      this.leaveWithError(reason);
      return;
    }
    this.answered = true;
    void settled.then(() => this.leaveFrameWithError(reason));
  }

  /** The code's promise settled: it no longer waits, and its work is no longer counted. */
  workSettled(): void {
    this.owner.removeWaiter(this);
    this.scope.countWork(-1);
  }

  leave(value: unknown): void {
    if (this.answered) return;
    // Stryker disable next-line BooleanLiteral: leave() runs after workSettled() unregistered the invocation, so no abort can come after it, and its promise settles once.
    this.answered = true;
    const frame = this.frame;
    try {
      this.resolve(frame === undefined ? value : this.owner.leaveFrom(frame, frame.to, value));
    } catch (error) {
      this.rejectAnswer(error);
    }
  }

  leaveWithError(error: unknown): void {
    if (this.answered) return;
    // Stryker disable next-line BooleanLiteral: without a frame, a later leave() only resolves a promise already rejected; with one, an abort's reject() sets it first, and workSettled() unregisters the invocation before the code's own answer.
    this.answered = true;
    if (this.frame === undefined) this.rejectAnswer(error);
    else this.leaveFrameWithError(error);
  }

  private leaveFrameWithError(error: unknown): void {
    const frame = this.frame as Frame;
    try {
      this.resolve(this.owner.leaveWithErrorFrom(frame, frame.to, error));
    } catch (thrown) {
      this.rejectAnswer(thrown);
    }
  }
}

/**
 * A call waiting at a policy (its queue, its rate): the `Admission` the policy keeps, and the
 * waiter an abort ends.
 */
const PENDING = 0;
const GRANTED = 1;
const REFUSED = 2;
const ABORTED = 3;

export class Waiting implements Admission, Waiter {
  readonly owner: WaiterOwner;
  readonly scope: Scope;
  /**
   * Resolves with this object once the wait ends, however it ends (`failed` tells): one shared
   * continuation then carries the call on, so a call waiting in a long queue holds no closure.
   */
  readonly promise: Promise<Waiting>;
  /** The token the policy granted with, or the error the wait ended with. */
  outcome: unknown = undefined;
  previousWaiter: Waiter | undefined = undefined;
  nextWaiter: Waiter | undefined = undefined;
  registered = false;
  /** The frame whose last policy made the call wait: where it goes on once let in (its `to` and `cursor`). */
  frame: Frame | undefined = undefined;
  private state = PENDING;
  private readonly onAbort: ((reason: unknown, context: unknown) => void) | undefined;
  private readonly context: unknown;
  private resolveWait: (waiting: Waiting) => void = ignore;

  constructor(owner: WaiterOwner, scope: Scope, onAbort: ((reason: unknown, context: unknown) => void) | undefined, context: unknown) {
    this.owner = owner;
    this.scope = scope;
    this.onAbort = onAbort;
    this.context = context;
    this.promise = new Promise((resolve) => {
      this.resolveWait = resolve;
    });
  }

  /** True when the policy turned the call away: a refusal, not a failure. */
  get refused(): boolean {
    return this.state === REFUSED;
  }

  /** True when the call was not let in (refused, or aborted while it waited); `outcome` is then the error. */
  get failed(): boolean {
    return this.state >= REFUSED;
  }

  grant(token?: unknown): void {
    if (this.state !== PENDING) return;
    this.state = GRANTED;
    this.owner.removeWaiter(this);
    this.outcome = token;
    this.resolveWait(this);
  }

  refuse(error: unknown): void {
    if (this.state !== PENDING) return;
    this.state = REFUSED;
    this.owner.removeWaiter(this);
    this.outcome = brandRefusal(error);
    this.resolveWait(this);
  }

  /** Its call was aborted while it waited. */
  reject(reason: unknown): void {
    if (this.state !== PENDING) return;
    this.state = ABORTED;
    try {
      this.onAbort?.(reason, this.context);
    } catch (error) {
      reportCallbackError("a policy's wait onAbort", error);
    }
    this.outcome = reason;
    this.resolveWait(this);
  }
}

/** Waits `ms` on `clock`, or rejects with the abort reason as soon as `scope` aborts (and clears the timer then). */
export function sleep(owner: WaiterOwner & { readonly abortable: boolean; register(waiter: Waiter): void }, scope: Scope, ms: number, clock: Clock): Promise<void> {
  if (owner.abortable && scope.isAborted()) return Promise.reject(scope.abortReason());
  return new Promise<void>((resolve, reject) => {
    // Stryker disable next-line ConditionalExpression,BlockStatement: a shortcut: in a call nothing aborts, the registered waiter below is never rejected and unregisters itself as its timer fires.
    if (!owner.abortable) {
      clock.setTimeout(resolve, ms);
      return;
    }
    const waiter: Waiter = {
      scope,
      reject: (reason) => {
        clock.clearTimeout(timer);
        reject(reason);
      },
      previousWaiter: undefined,
      nextWaiter: undefined,
      // Stryker disable next-line BooleanLiteral: register() sets it on the next line.
      registered: false,
    };
    owner.register(waiter);
    const timer = clock.setTimeout(() => {
      owner.removeWaiter(waiter);
      resolve();
    }, ms);
  });
}
