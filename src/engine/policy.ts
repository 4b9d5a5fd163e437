/**
 * Policies as callers use them: `execute` and `wrap` over a list of steps, the base class a
 * policy extends, and `compose`.
 */
import { Call } from './call.js';
import type { Step } from './step.js';
import type { Admission, ExecuteOptions, ExecutionContext, LayerCall, Policy, PolicyDescription } from './contract.js';
import { Scope } from './scope.js';
import { isAbortSignal, onAbort } from './signal.js';

/** Why `execute` cannot take `options`, or undefined when it can. */
function refuseOptions(options: unknown): TypeError | undefined {
  if (typeof options !== 'object' || options === null) return new TypeError(`execute(fn, options): options must be an object, got ${options === null ? 'null' : typeof options}`);
  // cockatiel's execute(fn, signal): the signal would be read as an options object without a
  // `signal` key and silently ignored, and the call could never be aborted.
  if (isAbortSignal(options)) return new TypeError('execute(fn, options): got an AbortSignal; pass it as execute(fn, { signal })');
  for (const key of Object.keys(options)) {
    if (key !== 'signal') return new TypeError(`execute(fn, options) has no option ${JSON.stringify(key)}; known options: "signal"`);
  }
  return undefined;
}

/** The outermost scope of a call: attempt 1, aborted by the caller's signal only. */
function rootScope(call: Call): Scope {
  // Stryker disable next-line BooleanLiteral,UnaryOperator: the root has no parent and is no frame's inner scope: walks up a frame stop at its base, so its `abortable` (read by close() and, with a parent, by `signal`) and its opener (-1) are never read.
  return new Scope(call, undefined, 1, true, undefined, -1);
}

/** Runs `fn` through `steps`: the body of every `execute()`. */
function runSteps(steps: readonly Step[], abortsWork: boolean, fn: (ctx: ExecutionContext) => unknown, options: ExecuteOptions | undefined): Promise<unknown> {
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
    return call.next(0, rootScope(call));
  }
  if (!isAbortSignal(signal)) {
    return Promise.reject(new TypeError(`execute(fn, { signal }): signal must be an AbortSignal, got ${signal === null ? 'null' : typeof signal}`));
  }
  if (signal.aborted) return Promise.reject(signal.reason);
  const call = new Call(steps, fn, signal, true);
  const root = rootScope(call);
  // The caller's abort wins at once, even over a policy that is slow to give up.
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

/**
 * What the engine keeps on a policy. TypeScript-private members, read here through this shape:
 * the declarations show them as `private` without a type, and unlike a static block granting
 * access to `#` fields, nothing runs when the class is defined, so a bundler drops every class
 * a program does not use.
 */
interface PolicyInternals {
  steps: readonly Step[] | undefined;
  /** True when a step may abort the work inside it: calls then race their function. */
  abortable: boolean;
}

/** The steps of a bulwark policy, outermost first, for `compose` and the metrics registry. */
export function stepsOf(policy: PolicyBase<unknown>): readonly Step[] {
  const internals = policy as unknown as PolicyInternals;
  if (internals.steps === undefined) setSteps(internals, [layerStep(policy as unknown as LayerPolicy<unknown, unknown>)]);
  return internals.steps as readonly Step[];
}

function setSteps(internals: PolicyInternals, steps: readonly Step[]): void {
  internals.steps = steps;
  internals.abortable = steps.some((step) => step.abortsWork);
}

/** What every bulwark policy shares: `execute` and `wrap` over its steps. */
export abstract class PolicyBase<Alt = never> implements Policy<Alt> {
  /** Type-only: see {@link Policy}. */
  declare readonly '~alt'?: () => Alt;
  // A layer's are built on first use: a policy made and never run (an idle breaker of a group) pays for none.
  private steps: readonly Step[] | undefined = undefined;
  // Stryker disable next-line BooleanLiteral: setSteps() sets it with the steps, before execute() or wrap() first reads it.
  private abortable = false;

  execute<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T | Alt> {
    const steps = this.steps ?? stepsOf(this);
    return runSteps(steps, this.abortable, fn, options) as Promise<T | Alt>;
  }

  wrap<A extends unknown[], R>(fn: (...args: A) => R | PromiseLike<R>): (...args: A) => Promise<R | Alt> {
    if (typeof fn !== 'function') throw new TypeError(`wrap(fn): fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
    const steps = stepsOf(this);
    const abortable = this.abortable;
    return (...args: A) => runSteps(steps, abortable, () => fn(...args), undefined) as Promise<R | Alt>;
  }
}

/** The description of a policy that extends {@link LayerPolicy}, for observability. */
export function descriptionOf(policy: LayerPolicy<unknown, unknown>): PolicyDescription {
  return (policy as unknown as { describe(): PolicyDescription }).describe();
}

/**
 * The base class of every policy that is one layer of a stack: the five of bulwark, and yours.
 * A subclass implements the hooks it needs, each optional and synchronous; the engine runs
 * them in every stack the policy is composed into.
 *
 * - `enter(call)` as a call arrives: return a token (anything; it comes back to the other
 *   hooks), throw to refuse the call (an error branded with `refusal()`), or return
 *   `call.wait(...)` to make it wait here.
 * - `onValue(token, value, call)` when the policies inside answered with `value`: return the
 *   answer (`value` itself to pass it on), throw to fail the call, or return a promise to
 *   answer later (a retry of a result that is a failure).
 * - `onError(token, error, call)` when they failed: throw to pass a failure on (`error` or
 *   another), or return what answers instead, a value or a promise (a retry, a fallback).
 * - `released(token)` once the work inside has really ended, when `enter` called
 *   `call.trackWork()`.
 * - `run(call)`, instead of all of the above, for a policy that drives the policies inside
 *   itself (`call.inner()`): hedging. It costs a promise hop the others avoid.
 *
 * @typeParam Token - what `enter` returns and the other hooks receive.
 * @typeParam Alt - what the policy may answer instead of the function's result.
 * @example
 * ```ts
 * class Concurrency extends LayerPolicy<void> {
 *   #running = 0;
 *   constructor(readonly max: number) { super(); }
 *   protected override enter(call: LayerCall): void {
 *     if (this.#running >= this.max) throw refusal(new Error('too many calls'));
 *     this.#running++;
 *     call.trackWork();
 *   }
 *   protected override released(): void { this.#running--; }
 *   protected describe(): PolicyDescription { return { kind: 'concurrency', name: undefined }; }
 * }
 * ```
 */
export abstract class LayerPolicy<Token = unknown, Alt = never> extends PolicyBase<Alt> {
  /**
   * True for a policy that may abort the work inside it (`call.openAbortScope()`,
   * `inner().start()`): calls through a stack that holds one can be answered before their
   * function settles, which the engine prepares for. Read once, when the policy is first run.
   */
  protected get abortsWork(): boolean {
    return false;
  }

  /** What `MetricsRegistry`, `logPolicyEvents` and the exporters read of this policy. */
  protected abstract describe(): PolicyDescription;

  /** As a call arrives: a token for the other hooks, a throw to refuse the call, or `call.wait(...)`. */
  protected enter?(call: LayerCall): Token | Admission;
  /** The policies inside answered with `value`: the answer to pass on, a throw, or a promise of an answer. */
  protected onValue?(token: Token, value: unknown, call: LayerCall): unknown;
  /** The policies inside failed with `error`: a throw passes a failure on; a value or a promise answers instead. */
  protected onError?(token: Token, error: unknown, call: LayerCall): unknown;
  /** The work inside has really ended, for a call whose `enter` called `call.trackWork()`. */
  protected released?(token: Token): void;
  /** Instead of the other hooks: drives the policies inside itself through `call.inner()` (hedging). */
  protected run?(call: LayerCall): Promise<unknown>;
}

/** The hooks of a layer, as the engine reads them (its protected members). */
interface LayerHooks {
  readonly abortsWork: boolean;
  readonly enter: Step['enter'];
  readonly onValue: Step['onValue'];
  readonly onError: Step['onError'];
  readonly released: Step['released'];
  readonly run: Step['run'];
}

/** The one step of a policy that is a layer: its hooks, unbound. */
function layerStep(policy: LayerPolicy<unknown, unknown>): Step {
  const hooks = policy as unknown as LayerHooks;
  return {
    layer: policy,
    enter: hooks.enter,
    onValue: hooks.onValue,
    onError: hooks.onError,
    released: hooks.released,
    run: hooks.run,
    abortsWork: hooks.abortsWork,
    observer: undefined,
  };
}

/**
 * Runs a policy that was not made by bulwark (any object with `execute`) as a layer. It gets
 * the scope's signal; its own give-ups (a timeout of its own, an abort of the context it
 * passes in) abort the policies inside it, and the `attempt` it passes in reaches the function.
 */
class ForeignLayer {
  readonly #policy: Policy<unknown>;

  constructor(policy: Policy<unknown>) {
    this.#policy = policy;
  }

  run(call: LayerCall): Promise<unknown> {
    const inner = call.inner();
    return call.invoke((ctx) =>
      this.#policy.execute((given?: Partial<ExecutionContext>) => {
        const attempt = given?.attempt;
        const run = inner.start(typeof attempt === 'number' ? attempt : undefined);
        const signal = given?.signal;
        // Stryker disable next-line ConditionalExpression: ctx.signal passed back aborts with the scope the run is opened in, which ends the run anyway: listening to it too changes nothing.
        if (isAbortSignal(signal) && signal !== ctx.signal) {
          if (signal.aborted) run.abort(signal.reason);
          else {
            const unsubscribe = onAbort(signal, () => run.abort(signal.reason));
            const done = (): void => unsubscribe();
            run.outcome.then(done, done);
          }
        }
        return run.outcome;
      }, { signal: ctx.signal }),
    );
  }
}

function foreignStep(policy: Policy<unknown>): Step {
  const layer = new ForeignLayer(policy);
  return { layer, enter: undefined, onValue: undefined, onError: undefined, released: undefined, run: layer.run, abortsWork: true, observer: undefined };
}

/** The policy {@link compose} returns. */
class Stack<Alt> extends PolicyBase<Alt> {
  constructor(steps: readonly Step[]) {
    super();
    setSteps(this as unknown as PolicyInternals, steps);
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
      steps.push(...stepsOf(policy));
    } else if (typeof policy === 'object' && policy !== null && typeof (policy as Policy<unknown>).execute === 'function') {
      steps.push(foreignStep(policy));
    } else {
      throw new TypeError(`compose(): argument ${position + 1} is not a policy (an object with execute()), got ${policy === null ? 'null' : typeof policy}`);
    }
  });
  return new Stack<unknown>(steps);
}
