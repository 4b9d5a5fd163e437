/**
 * The contract of bulwark: what a caller sees of a policy (`Policy`, `ExecutionContext`,
 * `ExecuteOptions`), and what a policy sees of a call (`LayerCall` and the handles it gives).
 * A new kind of policy is one class extending `LayerPolicy` and using only these types; see
 * docs/extending.md for the rules a policy keeps.
 */
import type { Clock } from '../shared/clock.js';

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
 * The one interface every bulwark policy implements, and what `compose` returns.
 *
 * @typeParam Alt - what the policy may return instead of the function's result (a fallback's
 * value); `never` for policies that only pass the result on or reject.
 */
export interface Policy<Alt = never> {
  /**
   * Type-only: carries `Alt` for `compose`'s result type. Never set at run time, and an
   * implementation of `Policy` need not declare it.
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
 * A call as one policy sees it, in one of its hooks (`enter`, `onValue`, `onError`, `run`).
 * It is valid while that hook runs: a policy that acts on the call later (a retry after its
 * backoff, a hedge after its delay) takes `inner()` there and keeps that.
 */
export interface LayerCall {
  /** The attempt number at this policy's place: 1 on the first try, more inside a retry. */
  readonly attempt: number;
  /**
   * True once the call was aborted here — by its caller, or by a timeout enclosing this
   * policy — and its caller answered: start no new work (no retry, no fallback).
   */
  readonly aborted: boolean;
  /**
   * True once the caller's own signal aborted (not a timeout): an outcome from then on says
   * nothing of the dependency's health, so a breaker does not count it.
   */
  readonly callerAborted: boolean;
  /** The context the function would get at this place (its `signal` is made on first read). */
  readonly context: ExecutionContext;

  /** In `enter`: the policies inside, and the function, see attempt `attempt`. */
  setAttempt(attempt: number): void;
  /**
   * In `enter`, for a policy whose `abortsWork` is true: the policies inside run in a scope
   * this one can abort (a timeout). Aborting it answers the call at once with the reason,
   * aborts the `ctx.signal` of the work inside, and ends every wait inside.
   */
  openAbortScope(): AbortScope;
  /**
   * In `enter`: `released(token)` runs once the work started inside this policy has really
   * ended, even when an abort answered the caller first (a function that ignores its signal
   * keeps running). A bulkhead frees its slot there.
   */
  trackWork(): void;
  /**
   * In `enter`: runs `check` once the work inside has started (in a microtask after the
   * function returned; three when a policy with its own `run` is next, whose answer comes up
   * that much later), so a call that settles in the turn that started it never needs it.
   */
  afterStart(check: () => void): void;
  /**
   * In `enter`: makes the call wait at this policy; return the `Admission` from `enter`. The
   * policies inside run once `grant(token)` is called (in the caller's async context); `refuse`
   * turns the call away (a refusal, as if `enter` had thrown it). If the call is aborted
   * first, `onAbort(reason, context)` runs (leave your queue there) and the call answers with
   * the abort's reason. `context` is handed back to `onAbort` as given: with it, one function
   * of the policy serves every waiting call, and a call waiting in a long queue holds no closure.
   */
  wait<C = undefined>(onAbort?: (reason: unknown, context: C) => void, context?: C): Admission;
  /**
   * In `onValue`, `onError` or `run`: the policies inside this one, and the function, to run
   * again (a retry) or several times at once (hedging). Valid as long as the call lasts.
   */
  inner(): InnerLayers;
  /**
   * In `onValue`, `onError` or `run`: runs user code (a fallback function) under this call:
   * it settles with the abort's reason as soon as the call is aborted, and its work counts
   * toward every `trackWork` around this policy.
   */
  invoke<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>): Promise<T>;
}

/** A scope of a call that its policy can abort (see {@link LayerCall.openAbortScope}). */
export interface AbortScope {
  /** Aborts the work inside with `reason`; the call answers with it at once. Only the first abort counts. */
  abort(reason: unknown): void;
}

/** A call waiting at a policy (see {@link LayerCall.wait}). */
export interface Admission {
  /** Lets the call go on; `token` comes back to this policy's `onValue`/`onError`/`released`. */
  grant(token?: unknown): void;
  /** Turns the call away with `error`, a refusal. */
  refuse(error: unknown): void;
}

/** The policies inside one policy, and the function (see {@link LayerCall.inner}). */
export interface InnerLayers {
  /** True once the call was aborted at this place: start nothing more. */
  readonly aborted: boolean;
  /** Runs the policies inside and the function once more, as attempt `attempt` (default: the current one). */
  run(attempt?: number): Promise<unknown>;
  /**
   * Runs them in a scope of their own that `abort` ends, for attempts that race (hedging): the
   * losers are aborted, their `ctx.signal` with them, and their outcomes never reach the caller.
   */
  start(attempt?: number): InnerRun;
  /** Waits `ms` on `clock`, or rejects with the abort's reason as soon as the call is aborted. */
  sleep(ms: number, clock: Clock): Promise<void>;
}

/** One run of the inner policies started by {@link InnerLayers.start}. */
export interface InnerRun {
  /** Settles with the run's answer or failure. */
  readonly outcome: Promise<unknown>;
  /** Aborts the run with `reason`: the `ctx.signal` read inside it aborts, and whatever waits inside it rejects. */
  abort(reason: unknown): void;
}

/** A counter a policy feeds from one of its events: one more for every event emitted. */
export interface CounterDescription {
  /** The counter's field in a metrics snapshot (`retries`); `snake_case` + `_total` in Prometheus, `bulwark.<field>` in OpenTelemetry. */
  readonly field: string;
  /** The event that moves it (`'retry'`). */
  readonly event: string;
  /** What one of it is, as a UCUM annotation: `'{retry}'`. */
  readonly unit: string;
  /** What it counts, in a sentence (Prometheus `# HELP`, OpenTelemetry description). */
  readonly description: string;
}

/** A value a policy reports when a snapshot is taken (a bulkhead's active calls, a breaker's state). */
export interface GaugeDescription {
  /** The gauge's field in a metrics snapshot (`active`). */
  readonly field: string;
  /** Its name in Prometheus, after the prefix (`bulkhead_active_calls`). */
  readonly prometheus: string;
  /** Its name in OpenTelemetry (`bulwark.bulkhead.call.active`). */
  readonly otel: string;
  /** What it reports, in a sentence (Prometheus `# HELP`, OpenTelemetry description). */
  readonly description: string;
  /** UCUM: `'{call}'`, `'1'` for a ratio. */
  readonly unit: string;
  /**
   * `'count'` goes up and down by whole calls; `'ratio'` is a share from 0 to 1; `'state'`
   * is one of `states`, exported as 1 for the current one and 0 for the others.
   */
  readonly type: 'count' | 'ratio' | 'state';
  /** For a `'state'` gauge: every state, so one that is not current reads 0 rather than vanishing. */
  readonly states?: readonly string[];
  /** The label (`prometheus`) and attribute (`otel`) naming the state of a `'state'` gauge. */
  readonly stateLabel?: { readonly prometheus: string; readonly otel: string };
}

/** How `logPolicyEvents` writes one event of a policy. */
export interface LogDescription {
  /** The event of the policy it writes (`'retry'`). */
  readonly event: string;
  /** Its level (or `'off'`), or a function of the event's payload. */
  readonly level: 'info' | 'warn' | 'error' | 'off' | ((payload: any) => 'info' | 'warn' | 'error');
  /** True for an event that comes once per call: repeats are summarised. */
  readonly perCall: boolean;
  /** How a summary line counts repeats: `'rejections'`. */
  readonly plural?: string;
  /** The line's message; `label` names the policy (`circuit breaker "payments"`). */
  message(payload: any, label: string): string;
  /** The line's fields besides `policy`, `kind` and `event`. An error is best given as `{ name, message }`. */
  fields(payload: any): Record<string, unknown>;
}

/**
 * What observability reads of a policy: `MetricsRegistry`, `logPolicyEvents` and the
 * Prometheus and OpenTelemetry exporters need no other knowledge of a kind. Calls, successes,
 * failures, refusals (an `enter` that throws, a refused wait) and latency are counted for
 * every policy without being described.
 */
export interface PolicyDescription {
  /** The kind, in kebab case: `'circuit-breaker'`, `'in-flight-limit'`. */
  readonly kind: string;
  /** How messages name the kind: `'circuit breaker'`. */
  readonly label?: string;
  /** The name it was built with, if any. */
  readonly name: string | undefined;
  /** True for a policy that refuses calls itself (its `enter` throws, or refuses a wait): its rejections are exported. */
  readonly refuses?: boolean;
  /** The counters fed by its events. */
  readonly counters?: readonly CounterDescription[];
  /** The values read when a snapshot is taken (with `readGauges`). */
  readonly gauges?: readonly GaugeDescription[];
  /** How `logPolicyEvents` writes each of its events. */
  readonly logs?: readonly LogDescription[];
  /** Reads the gauges now, by field. */
  readGauges?(): Readonly<Record<string, number | string>>;
  /** Subscribes to one of the policy's events (for counters and logs); returns the function that unsubscribes. */
  on?(event: string, listener: (payload: any) => void): () => void;
}
