import type { Clock } from './clock.js';
import { isTimeoutError } from './errors.js';
import { reportListenerError } from './events.js';
import { reportCallbackError, watchReturned } from './report.js';

/**
 * What a policy passes to the function it runs.
 */
export interface ExecutionContext {
  /**
   * Aborts when the caller's signal aborts (with the caller's reason) or when an enclosing
   * `withTimeout` expires (with its `TimeoutError`). Pass it on to `fetch`, database drivers
   * and SDKs so abandoned work really stops. Created on first read: a call that never reads it
   * pays nothing for it.
   */
  readonly signal: AbortSignal;
  /** 1 on the first try; `retryWithBackoff` counts up (2 on the first retry, …). */
  readonly attempt: number;
}

/** Options of one call to {@link Policy.execute}. */
export interface ExecuteOptions {
  /**
   * The caller's signal. When it aborts, the call rejects at once with `signal.reason`,
   * whether it is queued, sleeping between retries or running, and no policy counts that as
   * a failure of the dependency or retries it.
   */
  signal?: AbortSignal | undefined;
}

/**
 * The one interface every bulwark policy implements, and what {@link compose} returns.
 *
 * @typeParam Alt - what the policy may return instead of the function's result (a fallback's
 * value); `never` for policies that only pass the result on or reject.
 */
export interface Policy<Alt = never> {
  /**
   * Type-only: carries `Alt` for {@link compose}'s result type. Never set at run time, and
   * an implementation of `Policy` need not declare it.
   */
  readonly '~alt'?: () => Alt;
  /**
   * Runs `fn` under the policy. What `fn` throws reaches the caller unchanged unless it is
   * this policy's job to replace it.
   *
   * @example
   * ```ts
   * const user = await policy.execute(({ signal }) => fetch(url, { signal }).then((r) => r.json()));
   * ```
   */
  execute<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T | Alt>;
  /**
   * Returns a function with `fn`'s parameters that runs `fn` under the policy.
   *
   * @example
   * ```ts
   * const chargeCard = payments.wrap((cardId: string, cents: number) => gateway.charge(cardId, cents));
   * await chargeCard('card_1', 4_200);
   * ```
   */
  wrap<A extends unknown[], R>(fn: (...args: A) => R | PromiseLike<R>): (...args: A) => Promise<R | Alt>;
}

/**
 * One layer of a stack. A layer that can let a call through without waiting implements the
 * synchronous trio `enter`/`leave`/`leaveWithError`: consecutive such layers are entered in one
 * go and left in one reaction to the inner promise, so a stack of five costs about one
 * promise hop, not five. A layer that must wait (a full bulkhead's queue) or that wraps code of
 * its own (a foreign policy) implements `run`, which takes the call from there down.
 * @internal
 */
export interface Layer {
  /** True for a layer that can abort the work inside it (a timeout). */
  readonly abortsWork: boolean;
  /**
   * Lets the call in without waiting: returns the scope for the layers inside, or undefined
   * when the call must wait (then `run` takes it). Throws to refuse the call (an open circuit).
   * What the leave needs later goes in `frame.keep(slot, token)`.
   */
  enter?(call: Call, scope: Scope, frame: Frame, slot: number): Scope | undefined;
  /** The layers inside answered with a value. Throws to fail the call instead. */
  leave?(call: Call, token: unknown): void;
  /**
   * The layers inside failed with `error`: throws to pass an error outward, or returns what
   * answers instead (a value, or a promise: a retry, a fallback function).
   */
  leaveWithError?(call: Call, index: number, token: unknown, error: unknown): unknown;
  /** Runs this layer and everything inside it: its own work around `call.next(index + 1, scope)`. */
  run?(call: Call, scope: Scope, index: number): Promise<unknown>;
}

/** Where a layer's observer lives: one object shape for every layer. @internal */
export interface LayerHooks {
  observer: CallObserver | undefined;
}

/**
 * A layer as the engine runs it: its hooks as fields of one object shape shared by every kind
 * of layer. Reading `enter` off five different policy classes makes every such read in the
 * engine megamorphic (a slow, global lookup); reading it off steps keeps them monomorphic,
 * which on a five-policy stack saves more than all the policies' own work.
 * @internal
 */
export interface Step {
  readonly layer: Layer;
  readonly enter: ((call: Call, scope: Scope, frame: Frame, slot: number) => Scope | undefined) | undefined;
  readonly leave: ((call: Call, token: unknown) => void) | undefined;
  readonly leaveWithError: ((call: Call, index: number, token: unknown, error: unknown) => unknown) | undefined;
  readonly run: ((call: Call, scope: Scope, index: number) => Promise<unknown>) | undefined;
  readonly hooks: LayerHooks;
}

/**
 * The step of `layer`. Its hooks are the layer's own methods, unbound (called with the layer
 * as `this`): a step allocates no function, so a policy costs a few bytes more, not hundreds.
 * @internal
 */
export function stepOf(layer: Layer, hooks: LayerHooks): Step {
  return { layer, enter: layer.enter, leave: layer.leave, leaveWithError: layer.leaveWithError, run: layer.run, hooks };
}

/**
 * The layers of one call entered together by `Call.next`, with what each needs to leave.
 * @internal
 */
export class Frame {
  /** The first layer entered. */
  readonly from: number;
  /** One past the last layer entered. */
  to: number;
  /**
   * For each observed layer, by `index - from`: the observer that saw its call start (at
   * `2 × slot`) and its token (at `2 × slot + 1`). One array, sized once for the whole frame.
   */
  observations: unknown[] | undefined = undefined;
  // What each layer kept for its leave, by `index - from`: fields for the first five (a whole
  // stack, usually), so keeping allocates nothing; an array past them.
  private token0: unknown = undefined;
  private token1: unknown = undefined;
  private token2: unknown = undefined;
  private token3: unknown = undefined;
  private token4: unknown = undefined;
  private moreTokens: unknown[] | undefined = undefined;

  constructor(from: number) {
    this.from = from;
    this.to = from;
  }

  keep(slot: number, token: unknown): void {
    switch (slot) {
      case 0:
        this.token0 = token;
        break;
      case 1:
        this.token1 = token;
        break;
      case 2:
        this.token2 = token;
        break;
      case 3:
        this.token3 = token;
        break;
      case 4:
        this.token4 = token;
        break;
      default:
        (this.moreTokens ??= [])[slot - 5] = token;
    }
  }

  token(slot: number): unknown {
    switch (slot) {
      case 0:
        return this.token0;
      case 1:
        return this.token1;
      case 2:
        return this.token2;
      case 3:
        return this.token3;
      case 4:
        return this.token4;
      default:
        return this.moreTokens?.[slot - 5];
    }
  }
}

/**
 * Watches the calls through one policy. `started` runs as a call enters the policy and
 * returns a token (a start time); `finished` runs once when the policy's part of the call
 * settles, with `error` undefined and `failed` false on success, on the observer that saw it
 * start. Both get a reading of the observer's `now`: within one synchronous pass over a stack
 * (entering its layers, or leaving them) the clock is read once for all observers that share
 * it, so timing five layers costs two clock reads, not ten. None may throw: what they throw is
 * reported like a listener's error and the call goes on.
 * @internal
 */
export interface CallObserver {
  readonly now: () => number;
  started(time: number): number;
  finished(token: number, failed: boolean, error: unknown, time: number): void;
}

/** The clock read in the current pass, and its reading (see {@link CallObserver}). */
let passClock: (() => number) | undefined;
let passTime = Number.NaN;

/** Starts a pass: the next observer reads its clock afresh. */
function newPass(): void {
  passClock = undefined;
}

function readClock(observer: CallObserver): number {
  const clock = observer.now;
  if (clock === passClock) return passTime;
  let time: number;
  try {
    time = clock();
    if (typeof time !== 'number') {
      watchReturned('MetricsRegistry now', time);
      time = Number.NaN;
    }
  } catch (thrown) {
    reportCallbackError('the now() clock of a MetricsRegistry', thrown);
    time = Number.NaN;
  }
  passClock = clock;
  passTime = time;
  return time;
}

function startObserving(observer: CallObserver): number {
  try {
    return observer.started(readClock(observer));
  } catch (thrown) {
    reportListenerError('observer', thrown);
    return Number.NaN;
  }
}

function notifyObserver(observer: CallObserver, token: number, failed: boolean, error: unknown): void {
  try {
    observer.finished(token, failed, error, readClock(observer));
  } catch (thrown) {
    reportListenerError('observer', thrown);
  }
}

function finishObserving(frame: Frame, slot: number, failed: boolean, error: unknown): void {
  const observations = frame.observations;
  if (observations === undefined) return;
  const observer = observations[2 * slot] as CallObserver | undefined;
  if (observer !== undefined) notifyObserver(observer, observations[2 * slot + 1] as number, failed, error);
}

function observeRefusal(observer: CallObserver, refusal: unknown): void {
  notifyObserver(observer, startObserving(observer), true, refusal);
}

function observe(observer: CallObserver, run: () => Promise<unknown>): Promise<unknown> {
  newPass();
  const token = startObserving(observer);
  return run().then(
    (value) => {
      newPass();
      notifyObserver(observer, token, false, undefined);
      return value;
    },
    (error: unknown) => {
      newPass();
      notifyObserver(observer, token, true, error);
      throw error;
    },
  );
}

const settled = Promise.resolve();

function isPromise(value: unknown): value is Promise<unknown> {
  return value instanceof Promise;
}

/** Signals bulwark handed out as `ctx.signal` inside a timeout (or another abortable scope). */
const deadlineSignals = new WeakSet<AbortSignal>();

/**
 * Something a call is waiting on (the user's function, a retry sleep, a bulkhead queue
 * place) that an abort of `scope` or of an enclosing scope must end at once.
 * @internal
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
 * Counts the user's promises still running below one bulkhead slot, so the slot is held
 * until that work really ends, even after an abort answered the caller.
 * @internal
 */
export interface WorkTracker {
  pending: number;
  closed: boolean;
  released: boolean;
  readonly onIdle: () => void;
}

/** Starts counting the work below a bulkhead slot: `onIdle` runs once, after {@link closeWorkTracker} and when the counted work has settled. @internal */
export function openWorkTracker(onIdle: () => void): WorkTracker {
  return { pending: 0, closed: false, released: false, onIdle };
}

/** The layers under the slot have answered; `onIdle` runs as soon as their work has settled too. @internal */
export function closeWorkTracker(tracker: WorkTracker): void {
  tracker.closed = true;
  releaseIfIdle(tracker);
}

/**
 * Runs `onSettle` when `promise` settles, and passes its outcome on unchanged: `finally`
 * without the extra promise it allocates. `onSettle` must not throw.
 * @internal
 */
export function whenSettled<T>(promise: Promise<T>, onSettle: () => void): Promise<T> {
  return promise.then(
    (value) => {
      onSettle();
      return value;
    },
    (error: unknown) => {
      onSettle();
      throw error;
    },
  );
}

function releaseIfIdle(tracker: WorkTracker): void {
  if (tracker.closed && tracker.pending === 0 && !tracker.released) {
    tracker.released = true;
    tracker.onIdle();
  }
}

/**
 * User code (the function, a fallback, a foreign policy) running in a call that can be
 * aborted, below a group of entered layers or none: the layers are left when it settles or,
 * at once, when its scope aborts (it may keep running: its bulkhead slot is held until it
 * settles). One object is the waiter and the answer's state.
 */
class Invocation implements Waiter {
  readonly call: Call;
  readonly frame: Frame | undefined;
  readonly scope: Scope;
  resolve: (value: unknown) => void = ignore;
  rejectAnswer: (error: unknown) => void = ignore;
  answered = false;
  previousWaiter: Waiter | undefined = undefined;
  nextWaiter: Waiter | undefined = undefined;
  registered = false;

  constructor(call: Call, frame: Frame | undefined, scope: Scope) {
    this.call = call;
    this.frame = frame;
    this.scope = scope;
  }

  /**
   * The scope aborted: answer with its reason. With layers to leave, in a microtask of its
   * own, so no layer's leave (a retry, a fallback) runs inside the loop that aborts.
   */
  reject(reason: unknown): void {
    if (this.frame === undefined) this.leaveWithError(reason);
    else void settled.then(() => this.leaveWithError(reason));
  }

  /** The function's promise settled: it no longer waits, and its work no longer holds a slot. */
  workSettled(): void {
    this.call.removeWaiter(this);
    this.scope.countWork(-1);
  }

  leave(value: unknown): void {
    if (this.answered) return;
    this.answered = true;
    const frame = this.frame;
    try {
      this.resolve(frame === undefined ? value : this.call.leaveAll(frame, value));
    } catch (error) {
      this.rejectAnswer(error);
    }
  }

  leaveWithError(error: unknown): void {
    if (this.answered) return;
    this.answered = true;
    const frame = this.frame;
    if (frame === undefined) {
      this.rejectAnswer(error);
      return;
    }
    try {
      this.resolve(this.call.leaveAllWithError(frame, error));
    } catch (thrown) {
      this.rejectAnswer(thrown);
    }
  }
}

function ignore(): void {}

/**
 * The state of one `execute()` as it travels down a stack.
 * @internal
 */
export class Call {
  readonly steps: readonly Step[];
  readonly fn: (ctx: ExecutionContext) => unknown;
  readonly callerSignal: AbortSignal | undefined;
  /** False when nothing can abort this call (no caller signal, no timeout in the stack): the user's function then runs without a race. */
  readonly abortable: boolean;
  /** What the call waits on now: the newest (innermost) of a list linked through the waiters. */
  private lastWaiter: Waiter | undefined = undefined;
  /** Scopes whose `signal` was read and may still abort, so an abort reaches their controllers. */
  private signalScopes: Scope[] | undefined = undefined;
  /** Checks to queue once the work now being entered has started (see {@link Call.checkWhenStarted}): the first, and any more. */
  private check: (() => void) | undefined = undefined;
  private moreChecks: (() => void)[] | undefined = undefined;

  constructor(steps: readonly Step[], fn: (ctx: ExecutionContext) => unknown, callerSignal: AbortSignal | undefined, abortable: boolean) {
    this.steps = steps;
    this.fn = fn;
    this.callerSignal = callerSignal;
    this.abortable = abortable;
  }

  /**
   * Runs the layers from `index` down, and the user's function past the last one. Layers that
   * can let the call through at once are entered in a row, and left together when what they
   * wrap settles: one promise reaction for all of them.
   */
  next(index: number, scope: Scope): Promise<unknown> {
    const steps = this.steps;
    // Past the last layer (a bulkhead granting a queued call its slot) there is nothing to enter.
    if (index === steps.length) return this.invoke(scope, this.fn);
    const frame = new Frame(index);
    let inner = scope;
    let at = index;
    let outcome: Promise<unknown> | undefined;
    for (; at < steps.length; at++) {
      const step = steps[at] as Step;
      const enter = step.enter;
      if (enter === undefined) break;
      let entered: Scope | undefined;
      try {
        entered = enter.call(step.layer, this, inner, frame, at - index);
      } catch (refusal) {
        const observer = step.hooks.observer;
        if (observer !== undefined) {
          newPass();
          observeRefusal(observer, refusal);
        }
        outcome = Promise.reject(refusal);
        break;
      }
      if (entered === undefined) break;
      const observer = step.hooks.observer;
      if (observer !== undefined) {
        let observations = frame.observations;
        if (observations === undefined) {
          newPass();
          observations = frame.observations = new Array<unknown>(2 * (steps.length - index));
        }
        const slot = at - index;
        observations[2 * slot] = observer;
        observations[2 * slot + 1] = startObserving(observer);
      }
      inner = entered;
    }
    frame.to = at;
    if (outcome !== undefined) outcome = this.leaveGroup(frame, outcome);
    else if (at < steps.length) outcome = this.leaveGroup(frame, this.runOne(at, inner));
    else outcome = this.invoke(inner, this.fn, at === index ? undefined : frame);
    if (this.check !== undefined) {
      void settled.then(this.check);
      this.check = undefined;
      const more = this.moreChecks;
      if (more !== undefined) {
        this.moreChecks = undefined;
        for (const check of more) void settled.then(check);
      }
    }
    return outcome;
  }

  /**
   * Runs `check` in a microtask queued once the work below has started: after the reaction to
   * a function that has already settled, so a call that settles at once is done by then.
   */
  checkWhenStarted(check: () => void): void {
    if (this.check === undefined) this.check = check;
    else (this.moreChecks ??= []).push(check);
  }

  /** Runs the layer at `index` with its own `run`. */
  private runOne(index: number, scope: Scope): Promise<unknown> {
    const step = this.steps[index] as Step;
    const run = step.run;
    if (run === undefined) return Promise.reject(new Error(`bulwark: layer ${index} can neither enter nor run`));
    const observer = step.hooks.observer;
    if (observer === undefined) return run.call(step.layer, this, scope, index);
    return observe(observer, () => run.call(step.layer, this, scope, index));
  }

  private leaveGroup(frame: Frame, inner: Promise<unknown>): Promise<unknown> {
    if (frame.to === frame.from) return inner;
    return inner.then(
      (value) => this.leaveFrom(frame, frame.to, value),
      (error: unknown) => this.leaveWithErrorFrom(frame, frame.to, error),
    );
  }

  /** Leaves the entered layers below `top` (exclusive), innermost first, with a value. */
  private leaveFrom(frame: Frame, top: number, value: unknown): unknown {
    if (frame.observations !== undefined) newPass();
    const steps = this.steps;
    const from = frame.from;
    for (let at = top - 1; at >= from; at--) {
      const step = steps[at] as Step;
      const leave = step.leave;
      const slot = at - from;
      if (leave !== undefined) {
        try {
          leave.call(step.layer, this, frame.token(slot));
        } catch (error) {
          finishObserving(frame, slot, true, error);
          return this.leaveWithErrorFrom(frame, at, error);
        }
      }
      finishObserving(frame, slot, false, undefined);
    }
    return value;
  }

  /** Leaves the entered layers below `top` (exclusive), innermost first, with an error: a layer may answer instead. */
  private leaveWithErrorFrom(frame: Frame, top: number, error: unknown): unknown {
    if (frame.observations !== undefined) newPass();
    const steps = this.steps;
    const from = frame.from;
    for (let at = top - 1; at >= from; at--) {
      const step = steps[at] as Step;
      const leaveWithError = step.leaveWithError;
      const slot = at - from;
      if (leaveWithError === undefined) {
        finishObserving(frame, slot, true, error);
        continue;
      }
      let answer: unknown;
      try {
        answer = leaveWithError.call(step.layer, this, at, frame.token(slot), error);
      } catch (thrown) {
        finishObserving(frame, slot, true, thrown);
        error = thrown;
        continue;
      }
      if (!isPromise(answer)) {
        finishObserving(frame, slot, false, undefined);
        return this.leaveFrom(frame, at, answer);
      }
      // The layer answers later (a retry, a fallback function): the layers outside it wait for that.
      return answer.then(
        (value) => {
          // A later turn: the clock is read afresh, not reused from whatever pass ran last.
          newPass();
          finishObserving(frame, slot, false, undefined);
          return this.leaveFrom(frame, at, value);
        },
        (failure: unknown) => {
          newPass();
          finishObserving(frame, slot, true, failure);
          return this.leaveWithErrorFrom(frame, at, failure);
        },
      );
    }
    throw error;
  }

  /**
   * True once the caller's own signal aborted: from then on no failure is the dependency's.
   * A `ctx.signal` that an enclosing bulwark timeout aborted is not a caller's abort, even when
   * passed by hand to an inner `execute`: nested by hand, a breaker counts the timeout just as
   * it does inside `compose`.
   */
  get callerAborted(): boolean {
    const signal = this.callerSignal;
    return signal !== undefined && signal.aborted && !(deadlineSignals.has(signal) && isTimeoutError(signal.reason));
  }

  /**
   * Runs user code (the function, a fallback, a foreign policy) and settles with its outcome,
   * or with the abort reason as soon as `scope` aborts, even when the code ignores its signal.
   * A synchronous throw, or a result whose `then` throws, becomes a rejection. With a `frame`,
   * it leaves the frame's layers as the code settles: the same as `leaveGroup(frame, invoke(…))`
   * with one promise hop fewer, which is most of what a stack costs on the success path.
   */
  invoke(scope: Scope, fn: (ctx: ExecutionContext) => unknown, frame?: Frame): Promise<unknown> {
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
    // running inner layers) is nested inside it, and counted against the bulkhead slots that
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

  /** @internal Leaves the layers of `frame` from the innermost, with a value (see {@link Invocation}). */
  leaveAll(frame: Frame, value: unknown): unknown {
    return this.leaveFrom(frame, frame.to, value);
  }

  /** @internal Leaves the layers of `frame` from the innermost, with an error. */
  leaveAllWithError(frame: Frame, error: unknown): unknown {
    return this.leaveWithErrorFrom(frame, frame.to, error);
  }

  /**
   * Waits `ms` on `clock`, or rejects with the abort reason as soon as `scope` aborts (and
   * clears the timer then).
   */
  sleep(scope: Scope, ms: number, clock: Clock): Promise<void> {
    if (scope.isAborted()) return Promise.reject(scope.abortReason());
    return new Promise<void>((resolve, reject) => {
      const waiter = this.addWaiter(scope, (reason) => {
        clock.clearTimeout(timer);
        reject(reason);
      });
      const timer = clock.setTimeout(() => {
        this.removeWaiter(waiter);
        resolve();
      }, ms);
    });
  }

  /** Registers something the call waits on; `onAbort` runs once if `scope` aborts first. */
  addWaiter(scope: Scope, onAbort: (reason: unknown) => void): Waiter {
    const waiter: Waiter = { scope, reject: onAbort, previousWaiter: undefined, nextWaiter: undefined, registered: false };
    this.register(waiter);
    return waiter;
  }

  /** Registers a waiter object of the caller's making. */
  register(waiter: Waiter): void {
    waiter.registered = true;
    waiter.previousWaiter = this.lastWaiter;
    waiter.nextWaiter = undefined;
    if (this.lastWaiter !== undefined) this.lastWaiter.nextWaiter = waiter;
    this.lastWaiter = waiter;
  }

  /** Unregisters a waiter that ended by itself; one already ended by an abort is ignored. */
  removeWaiter(waiter: Waiter): void {
    if (!waiter.registered) return;
    waiter.registered = false;
    const { previousWaiter, nextWaiter } = waiter;
    if (previousWaiter !== undefined) previousWaiter.nextWaiter = nextWaiter;
    if (nextWaiter !== undefined) nextWaiter.previousWaiter = previousWaiter;
    else this.lastWaiter = previousWaiter;
    waiter.previousWaiter = undefined;
    waiter.nextWaiter = undefined;
  }

  /**
   * Aborts `scope` (a timeout's, or the root one when the caller aborts): marks it, aborts
   * the signals the user read inside it, and rejects everything waiting inside it, innermost
   * first.
   */
  abort(scope: Scope, reason: unknown): void {
    if (!scope.markAborted(reason)) return;
    if (this.signalScopes !== undefined) {
      for (const candidate of this.signalScopes) {
        if (candidate.isWithin(scope)) candidate.abortSignal(reason);
      }
    }
    // Unregister first, then reject: a rejection may register or remove other waiters.
    const aborted: Waiter[] = [];
    for (let waiter = this.lastWaiter; waiter !== undefined; waiter = waiter.previousWaiter) {
      if (waiter.scope.isWithin(scope)) aborted.push(waiter);
    }
    for (const waiter of aborted) this.removeWaiter(waiter);
    for (const waiter of aborted) waiter.reject(reason);
  }

  trackSignal(scope: Scope): void {
    (this.signalScopes ??= []).push(scope);
  }

  /** Forgets a scope that can no longer abort (its timeout settled), so a long call does not pile up controllers. */
  forgetSignal(scope: Scope): void {
    const scopes = this.signalScopes;
    if (scopes === undefined) return;
    const at = scopes.indexOf(scope);
    if (at !== -1) scopes.splice(at, 1);
  }
}

/**
 * The context of the user's function at one depth of a stack. A timeout opens a scope that it
 * can abort; a retry opens one per attempt that only changes `attempt`; a bulkhead opens one
 * that counts the work below its slot. The object itself is the `ExecutionContext` the
 * function receives: its own fields are private, so spreading or logging it shows `attempt`
 * alone.
 * @internal
 */
export class Scope implements ExecutionContext {
  readonly attempt: number;
  readonly #call: Call;
  readonly #parent: Scope | undefined;
  /** True for a scope that can be aborted on its own (the root, a timeout's). */
  readonly #abortable: boolean;
  readonly #tracker: WorkTracker | undefined;
  #aborted = false;
  #reason: unknown = undefined;
  #controller: AbortController | undefined = undefined;

  constructor(call: Call, parent: Scope | undefined, attempt: number, abortable: boolean, tracker?: WorkTracker) {
    this.attempt = attempt;
    this.#call = call;
    this.#parent = parent;
    this.#abortable = abortable;
    this.#tracker = tracker;
  }

  get signal(): AbortSignal {
    if (this.#controller !== undefined) return this.#controller.signal;
    if (!this.#abortable && this.#parent !== undefined) return this.#parent.signal;
    if (this.#parent === undefined && this.#call.callerSignal !== undefined) return this.#call.callerSignal;
    const controller = new AbortController();
    this.#controller = controller;
    if (this.#parent !== undefined) deadlineSignals.add(controller.signal);
    if (this.isAborted()) controller.abort(this.abortReason());
    else this.#call.trackSignal(this);
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
    if (this.#aborted) return false;
    this.#aborted = true;
    this.#reason = reason;
    return true;
  }

  isWithin(ancestor: Scope): boolean {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.#parent) {
      if (scope === ancestor) return true;
    }
    return false;
  }

  abortSignal(reason: unknown): void {
    if (this.#controller !== undefined && !this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  /** Adds `delta` to the work counted by every bulkhead slot enclosing this scope. */
  countWork(delta: 1 | -1): void {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.#parent) {
      const tracker = scope.#tracker;
      if (tracker !== undefined) {
        tracker.pending += delta;
        if (delta < 0) releaseIfIdle(tracker);
      }
    }
  }

  /** A child scope that a timeout can abort. */
  openAbortable(): Scope {
    return new Scope(this.#call, this, this.attempt, true);
  }

  /** A child scope for one retry attempt. */
  openAttempt(attempt: number): Scope {
    return new Scope(this.#call, this, attempt, false);
  }

  /** A child scope whose work `tracker` counts. */
  openTracked(tracker: WorkTracker): Scope {
    return new Scope(this.#call, this, this.attempt, false, tracker);
  }
}

function isAbortSignal(value: unknown): value is AbortSignal {
  return typeof value === 'object' && value !== null && typeof (value as AbortSignal).aborted === 'boolean' && typeof (value as AbortSignal).addEventListener === 'function';
}

/** Why `execute` cannot take `options`, or undefined when it can. */
function refuseOptions(options: unknown): TypeError | undefined {
  if (typeof options !== 'object' || options === null) return new TypeError(`execute(fn, options): options must be an object, got ${options === null ? "null" : typeof options}`);
  // cockatiel's execute(fn, signal): the signal would be read as an options object without a
  // `signal` key and silently ignored, and the call could never be aborted.
  if (isAbortSignal(options)) return new TypeError('execute(fn, options): got an AbortSignal; pass it as execute(fn, { signal })');
  for (const key of Object.keys(options)) {
    if (key !== 'signal') return new TypeError(`execute(fn, options) has no option ${JSON.stringify(key)}; known options: "signal"`);
  }
  return undefined;
}

/**
 * Runs `fn` through `steps`: the body of every `execute()`.
 * @internal
 */
export function runLayers(steps: readonly Step[], abortsWork: boolean, fn: (ctx: ExecutionContext) => unknown, options: ExecuteOptions | undefined): Promise<unknown> {
  if (typeof fn !== 'function') {
    return Promise.reject(new TypeError(`execute(fn): fn must be a function, got ${fn === null ? 'null' : typeof fn}`));
  }
  if (options !== undefined) {
    const refused = refuseOptions(options);
    if (refused !== undefined) return Promise.reject(refused);
  }
  const signal = options?.signal;
  if (signal === undefined) {
    const call = new Call(steps, fn, undefined, abortsWork);
    return call.next(0, new Scope(call, undefined, 1, true));
  }
  if (!isAbortSignal(signal)) {
    return Promise.reject(new TypeError(`execute(fn, { signal }): signal must be an AbortSignal, got ${signal === null ? 'null' : typeof signal}`));
  }
  if (signal.aborted) return Promise.reject(signal.reason);
  const call = new Call(steps, fn, signal, true);
  const root = new Scope(call, undefined, 1, true);
  // The caller's abort wins at once, even over a layer that is slow to give up.
  return new Promise((resolve, reject) => {
    const unsubscribe = onAbort(signal, () => {
      call.abort(root, signal.reason);
      reject(signal.reason);
    });
    call.next(0, root).then(
      (value) => {
        unsubscribe();
        resolve(value);
      },
      (error: unknown) => {
        unsubscribe();
        reject(error);
      },
    );
  });
}

/** The calls waiting on one caller signal, behind the one listener bulwark adds to it. */
interface SignalSubscribers {
  readonly callbacks: Set<() => void>;
  readonly dispatch: () => void;
}

const subscribersBySignal = new WeakMap<AbortSignal, SignalSubscribers>();

/**
 * Runs `callback` when `signal` aborts; returns the function that unsubscribes. However many
 * calls share one signal, it carries a single listener of bulwark's, removed with the last
 * call, so a signal shared by hundreds of concurrent calls raises no
 * MaxListenersExceededWarning (cockatiel #69, p-retry #71).
 */
function onAbort(signal: AbortSignal, callback: () => void): () => void {
  let subscribers = subscribersBySignal.get(signal);
  if (subscribers === undefined) {
    const callbacks = new Set<() => void>();
    const dispatch = (): void => {
      subscribersBySignal.delete(signal);
      for (const waiting of callbacks) waiting();
      callbacks.clear();
    };
    subscribers = { callbacks, dispatch };
    subscribersBySignal.set(signal, subscribers);
    signal.addEventListener('abort', dispatch, { once: true });
  }
  const { callbacks, dispatch } = subscribers;
  callbacks.add(callback);
  return () => {
    if (!callbacks.delete(callback) || callbacks.size > 0) return;
    signal.removeEventListener('abort', dispatch);
    if (subscribersBySignal.get(signal) === subscribers) subscribersBySignal.delete(signal);
  };
}

/** What every bulwark policy shares: `execute` and `wrap` over its layers. */
export abstract class PolicyBase<Alt = never> implements Policy<Alt> {
  /** Type-only: see {@link Policy}. */
  declare readonly '~alt'?: () => Alt;
  /** @internal */
  abstract readonly steps: readonly Step[];
  /** @internal */
  abstract readonly abortsWork: boolean;

  execute<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T | Alt> {
    return runLayers(this.steps, this.abortsWork, fn, options) as Promise<T | Alt>;
  }

  wrap<A extends unknown[], R>(fn: (...args: A) => R | PromiseLike<R>): (...args: A) => Promise<R | Alt> {
    if (typeof fn !== 'function') throw new TypeError(`wrap(fn): fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
    const steps = this.steps;
    const abortsWork = this.abortsWork;
    return (...args: A) => runLayers(steps, abortsWork, () => fn(...args), undefined) as Promise<R | Alt>;
  }
}

/** A policy made by bulwark that is one layer of a stack. */
export abstract class SingleLayerPolicy<Alt = never> extends PolicyBase<Alt> {
  // Built on first use: a policy made and never run (an idle breaker of a group) pays for none.
  #steps: readonly Step[] | undefined = undefined;
  #hooks: LayerHooks | undefined = undefined;

  /** @internal */
  get steps(): readonly Step[] {
    return (this.#steps ??= [stepOf(this, this.hooks)]);
  }

  /** @internal */
  get hooks(): LayerHooks {
    return (this.#hooks ??= { observer: undefined });
  }

  /** @internal Watches every call through this policy (a metrics registry); undefined costs nothing. */
  get observer(): CallObserver | undefined {
    return this.#hooks?.observer;
  }

  /** @internal */
  set observer(observer: CallObserver | undefined) {
    this.hooks.observer = observer;
  }
}

/**
 * Runs a policy that was not made by bulwark (any object with `execute`) as a layer. It gets
 * the scope's signal; its own give-ups (a timeout of its own, an abort of the context it
 * passes in) abort the layers inside it, and the `attempt` it passes in reaches the function.
 */
class ForeignLayer implements Layer {
  readonly abortsWork = true;
  private readonly policy: Policy<unknown>;

  constructor(policy: Policy<unknown>) {
    this.policy = policy;
  }

  run(call: Call, scope: Scope, index: number): Promise<unknown> {
    return call.invoke(scope, (ctx) => this.policy.execute((given?: Partial<ExecutionContext>) => this.runInside(call, scope, index, given), { signal: ctx.signal }));
  }

  private runInside(call: Call, scope: Scope, index: number, given: Partial<ExecutionContext> | undefined): Promise<unknown> {
    const inner = scope.openAbortable();
    const attempt = given?.attempt;
    const context = typeof attempt === 'number' && attempt !== inner.attempt ? inner.openAttempt(attempt) : inner;
    const signal = given?.signal;
    let unsubscribe: (() => void) | undefined;
    if (isAbortSignal(signal) && signal !== scope.signal) {
      if (signal.aborted) call.abort(inner, signal.reason);
      else unsubscribe = onAbort(signal, () => call.abort(inner, signal.reason));
    }
    return whenSettled(call.next(index + 1, context), () => {
      unsubscribe?.();
      call.forgetSignal(inner);
    });
  }
}

/** The policy {@link compose} returns. */
class Stack<Alt> extends PolicyBase<Alt> {
  readonly steps: readonly Step[];
  readonly abortsWork: boolean;

  constructor(steps: readonly Step[]) {
    super();
    this.steps = steps;
    this.abortsWork = steps.some((step) => step.layer.abortsWork);
  }
}

/**
 * The `Alt` of a policy type: what it may return instead of the function's result. It is read
 * off the type-only `~alt` member because `P extends Policy<infer Alt>` cannot see it:
 * `execute` and `wrap` are generic, and TypeScript erases their `T` to `unknown` while
 * inferring, which swallows `Alt`.
 */
export type AlternativeOf<P> = P extends { readonly '~alt'?: () => infer Alt } ? Alt : never;

/**
 * Stacks policies into one: the first is the outermost. `compose()` with no policy passes
 * calls through; nested composes behave exactly like the flat one.
 *
 * Put a fallback outermost (it sees every failure, rejections included), the breaker outside
 * the retry (it counts one failure per call; inside, it counts every attempt), the timeout
 * inside the retry (each attempt gets its own deadline) and the bulkhead innermost (it holds a
 * slot only while the dependency really works).
 *
 * @example
 * ```ts
 * const payments = compose(
 *   withFallback(() => ({ status: 'queued' })),
 *   new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 30_000 }),
 *   retryWithBackoff({ maxRetries: 3, baseDelay: 200, maxDelay: 5_000 }),
 *   withTimeout(2_000),
 *   new Bulkhead({ maxConcurrent: 10 }),
 * );
 * const result = await payments.execute(({ signal }) => fetch(url, { signal }));
 * ```
 */
export function compose(): Policy<never>;
export function compose<const P extends readonly Policy<any>[]>(...policies: P): Policy<AlternativeOf<P[number]>>;
export function compose(...policies: readonly Policy<any>[]): Policy<unknown> {
  const steps: Step[] = [];
  policies.forEach((policy, position) => {
    if (policy instanceof PolicyBase) {
      steps.push(...policy.steps);
    } else if (typeof policy === 'object' && policy !== null && typeof (policy as Policy<unknown>).execute === 'function') {
      const layer = new ForeignLayer(policy);
      steps.push(stepOf(layer, { observer: undefined }));
    } else {
      throw new TypeError(`compose(): argument ${position + 1} is not a policy (an object with execute()), got ${policy === null ? 'null' : typeof policy}`);
    }
  });
  return new Stack<unknown>(steps);
}
