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
 * One layer of a stack: its own work around `call.next(index + 1, scope)`, which runs the
 * layers inside it and, past the last one, the user's function. A composed stack is a flat
 * array of layers run by index, so stacking costs no closure per layer.
 * @internal
 */
export interface Layer {
  run(call: Call, scope: Scope, index: number): Promise<unknown>;
  /** True for a layer that can abort the work inside it (a timeout). */
  readonly abortsWork: boolean;
}

/**
 * Something a call is waiting on (the user's function, a retry sleep, a bulkhead queue
 * place) that an abort of `scope` or of an enclosing scope must end at once.
 */
interface Waiter {
  readonly scope: Scope;
  readonly reject: (reason: unknown) => void;
  readonly previous: Waiter | undefined;
}

/** Counts the user's promises still running below a bulkhead slot. @internal */
export interface WorkTracker {
  pending: number;
  closed: boolean;
  readonly onIdle: () => void;
  readonly previous: WorkTracker | undefined;
}

/**
 * The state of one `execute()` as it travels down a stack.
 *
 * Within one call, work is sequential (a retry runs one attempt at a time), so what the call
 * waits on forms a stack of waiters, innermost on top, and the work below an aborted scope is
 * exactly the top of that stack.
 * @internal
 */
export class Call {
  readonly layers: readonly Layer[];
  readonly fn: (ctx: ExecutionContext) => unknown;
  readonly callerSignal: AbortSignal | undefined;
  /** False when nothing can abort this call (no caller signal, no timeout in the stack): the user's function then runs without a race. */
  readonly abortable: boolean;
  /** The innermost thing the call waits on. */
  private waiter: Waiter | undefined = undefined;
  /** Open work trackers, innermost first: see {@link Call.trackWork}. */
  private trackers: WorkTracker | undefined = undefined;
  /** Scopes whose `signal` was read, so an abort reaches their controllers. */
  private signalScopes: Scope[] | undefined = undefined;

  constructor(layers: readonly Layer[], fn: (ctx: ExecutionContext) => unknown, callerSignal: AbortSignal | undefined, abortable: boolean) {
    this.layers = layers;
    this.fn = fn;
    this.callerSignal = callerSignal;
    this.abortable = abortable;
  }

  /** Runs the layer at `index`, or the user's function past the last layer. */
  next(index: number, scope: Scope): Promise<unknown> {
    const layer = this.layers[index];
    return layer === undefined ? this.invoke(scope, this.fn) : layer.run(this, scope, index);
  }

  /** True once the caller's own signal aborted: from then on no failure is the dependency's. */
  get callerAborted(): boolean {
    return this.callerSignal !== undefined && this.callerSignal.aborted;
  }

  /**
   * Runs user code (the function, a fallback) and settles with its outcome, or with the abort
   * reason as soon as `scope` aborts, even when the code ignores its signal. A synchronous
   * throw becomes a rejection.
   */
  invoke(scope: Scope, fn: (ctx: ExecutionContext) => unknown): Promise<unknown> {
    if (this.abortable && scope.isAborted()) return Promise.reject(scope.abortReason());
    let result: unknown;
    try {
      result = fn(scope);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!this.abortable || !isPromiseLike(result)) return Promise.resolve(result);
    return this.race(scope, Promise.resolve(result));
  }

  private race(scope: Scope, work: Promise<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const waiter = this.pushWaiter(scope, reject);
      const trackers = this.trackers;
      for (let tracker = trackers; tracker !== undefined; tracker = tracker.previous) tracker.pending++;
      const finish = (): void => {
        this.popWaiter(waiter);
        for (let tracker = trackers; tracker !== undefined; tracker = tracker.previous) {
          if (--tracker.pending === 0 && tracker.closed) tracker.onIdle();
        }
      };
      work.then(
        (value) => {
          finish();
          resolve(value);
        },
        (error: unknown) => {
          finish();
          reject(error);
        },
      );
    });
  }

  /**
   * Waits `ms` on `clock`, or rejects with the abort reason as soon as `scope` aborts (and
   * clears the timer then).
   */
  sleep(scope: Scope, ms: number, clock: { setTimeout(callback: () => void, ms: number): unknown; clearTimeout(handle: unknown): void }): Promise<void> {
    if (scope.isAborted()) return Promise.reject(scope.abortReason());
    return new Promise<void>((resolve, reject) => {
      const waiter = this.pushWaiter(scope, (reason) => {
        clock.clearTimeout(timer);
        reject(reason);
      });
      const timer = clock.setTimeout(() => {
        this.popWaiter(waiter);
        resolve();
      }, ms);
    });
  }

  /** Registers something the call waits on; `onAbort` runs once if `scope` aborts first. */
  pushWaiter(scope: Scope, onAbort: (reason: unknown) => void): Waiter {
    const waiter: Waiter = { scope, reject: onAbort, previous: this.waiter };
    this.waiter = waiter;
    return waiter;
  }

  /** Unregisters a waiter that ended by itself; one already ended by an abort is ignored. */
  popWaiter(waiter: Waiter): void {
    if (this.waiter === waiter) this.waiter = waiter.previous;
  }

  /**
   * Aborts `scope` (a timeout's, or the root one when the caller aborts): marks it, aborts
   * the signals the user read inside it, and rejects everything waiting inside it.
   */
  abort(scope: Scope, reason: unknown): void {
    if (scope.aborted) return;
    scope.aborted = true;
    scope.reason = reason;
    if (this.signalScopes !== undefined) {
      for (const candidate of this.signalScopes) {
        if (candidate.isWithin(scope)) candidate.abortSignal(reason);
      }
    }
    let waiter = this.waiter;
    while (waiter !== undefined && waiter.scope.isWithin(scope)) {
      this.waiter = waiter.previous;
      waiter.reject(reason);
      waiter = this.waiter;
    }
  }

  /**
   * Starts counting the user's work that runs from now on, so a bulkhead can hold its slot
   * until that work really ends, even after an abort answered the caller: `onIdle` runs once,
   * when {@link Call.endTracking} was called and every counted promise has settled.
   */
  trackWork(onIdle: () => void): WorkTracker {
    const tracker: WorkTracker = { pending: 0, closed: false, onIdle, previous: this.trackers };
    this.trackers = tracker;
    return tracker;
  }

  endTracking(tracker: WorkTracker): void {
    if (this.trackers === tracker) this.trackers = tracker.previous;
    tracker.closed = true;
    if (tracker.pending === 0) tracker.onIdle();
  }

  trackSignal(scope: Scope): void {
    (this.signalScopes ??= []).push(scope);
  }
}

/**
 * The context of the user's function at one depth of a stack. A timeout opens a scope that it
 * can abort; a retry opens a scope per attempt that only changes `attempt`. The object itself
 * is the `ExecutionContext` the function receives.
 * @internal
 */
export class Scope implements ExecutionContext {
  readonly call: Call;
  readonly parent: Scope | undefined;
  readonly attempt: number;
  /** True for a scope that can be aborted on its own (the root, a timeout's); false for a retry attempt's. */
  private readonly abortable: boolean;
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | undefined = undefined;

  constructor(call: Call, parent: Scope | undefined, attempt: number, abortable: boolean) {
    this.call = call;
    this.parent = parent;
    this.attempt = attempt;
    this.abortable = abortable;
  }

  get signal(): AbortSignal {
    if (this.controller !== undefined) return this.controller.signal;
    if (!this.abortable && this.parent !== undefined) return this.parent.signal;
    if (this.parent === undefined && this.call.callerSignal !== undefined) return this.call.callerSignal;
    const controller = new AbortController();
    this.controller = controller;
    if (this.isAborted()) controller.abort(this.abortReason());
    else this.call.trackSignal(this);
    return controller.signal;
  }

  isAborted(): boolean {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.parent) {
      if (scope.aborted) return true;
    }
    return false;
  }

  /** The reason of the nearest aborted scope, this one or an enclosing one. */
  abortReason(): unknown {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.parent) {
      if (scope.aborted) return scope.reason;
    }
    return undefined;
  }

  isWithin(ancestor: Scope): boolean {
    for (let scope: Scope | undefined = this; scope !== undefined; scope = scope.parent) {
      if (scope === ancestor) return true;
    }
    return false;
  }

  abortSignal(reason: unknown): void {
    if (this.controller !== undefined && !this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** A child scope that a timeout can abort. */
  openAbortable(): Scope {
    return new Scope(this.call, this, this.attempt, true);
  }

  /** A child scope for one retry attempt. */
  openAttempt(attempt: number): Scope {
    return new Scope(this.call, this, attempt, false);
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function isAbortSignal(value: unknown): value is AbortSignal {
  return typeof value === 'object' && value !== null && typeof (value as AbortSignal).aborted === 'boolean' && typeof (value as AbortSignal).addEventListener === 'function';
}

/**
 * Runs `fn` through `layers`: the body of every `execute()`.
 * @internal
 */
export function runLayers(layers: readonly Layer[], abortsWork: boolean, fn: (ctx: ExecutionContext) => unknown, options: ExecuteOptions | undefined): Promise<unknown> {
  if (typeof fn !== 'function') {
    return Promise.reject(new TypeError(`execute(fn): fn must be a function, got ${fn === null ? 'null' : typeof fn}`));
  }
  const signal = options?.signal;
  if (signal === undefined) {
    const call = new Call(layers, fn, undefined, abortsWork);
    return call.next(0, new Scope(call, undefined, 1, true));
  }
  if (!isAbortSignal(signal)) {
    return Promise.reject(new TypeError(`execute(fn, { signal }): signal must be an AbortSignal, got ${signal === null ? 'null' : typeof signal}`));
  }
  if (signal.aborted) return Promise.reject(signal.reason);
  const call = new Call(layers, fn, signal, true);
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
  abstract readonly layers: readonly Layer[];
  /** @internal */
  abstract readonly abortsWork: boolean;

  execute<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T | Alt> {
    return runLayers(this.layers, this.abortsWork, fn, options) as Promise<T | Alt>;
  }

  wrap<A extends unknown[], R>(fn: (...args: A) => R | PromiseLike<R>): (...args: A) => Promise<R | Alt> {
    if (typeof fn !== 'function') throw new TypeError(`wrap(fn): fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
    const layers = this.layers;
    const abortsWork = this.abortsWork;
    return (...args: A) => runLayers(layers, abortsWork, () => fn(...args), undefined) as Promise<R | Alt>;
  }
}

/** A policy made by bulwark that is one layer of a stack. */
export abstract class SingleLayerPolicy<Alt = never> extends PolicyBase<Alt> {
  /** @internal */
  readonly layers: readonly Layer[] = [this];
  /** @internal */
  abstract run(call: Call, scope: Scope, index: number): Promise<unknown>;
}

/**
 * Runs a policy that was not made by bulwark (any object with `execute`) as a layer, with the
 * scope's signal, and without letting it delay an abort.
 */
class ForeignLayer implements Layer {
  readonly abortsWork = true;
  private readonly policy: Policy<unknown>;

  constructor(policy: Policy<unknown>) {
    this.policy = policy;
  }

  run(call: Call, scope: Scope, index: number): Promise<unknown> {
    return call.invoke(scope, (ctx) => this.policy.execute(() => call.next(index + 1, scope), { signal: ctx.signal }));
  }
}

/** The policy {@link compose} returns. */
class Stack<Alt> extends PolicyBase<Alt> {
  readonly layers: readonly Layer[];
  readonly abortsWork: boolean;

  constructor(layers: readonly Layer[]) {
    super();
    this.layers = layers;
    this.abortsWork = layers.some((layer) => layer.abortsWork);
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
  const layers: Layer[] = [];
  policies.forEach((policy, position) => {
    if (policy instanceof PolicyBase) {
      layers.push(...policy.layers);
    } else if (typeof policy === 'object' && policy !== null && typeof (policy as Policy<unknown>).execute === 'function') {
      layers.push(new ForeignLayer(policy));
    } else {
      throw new TypeError(`compose(): argument ${position + 1} is not a policy (an object with execute()), got ${policy === null ? 'null' : typeof policy}`);
    }
  });
  return new Stack<unknown>(layers);
}
