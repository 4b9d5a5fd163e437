// The contract of DESIGN.md checked on randomly built stacks: fast-check draws a stack of 1–6
// policies and 1–15 calls (start time, kind of function, caller abort, key), runs them on one
// hand-driven clock, and shrinks any stack that breaks the contract to a small one. Besides the
// five first built-in kinds, a stack may hold the in-flight limit of examples/in-flight-limit.ts,
// and the kinds written later against the same public contract (docs/extending.md): a rate
// limiter (token bucket or sliding window, refusing or queueing), hedging (with or without a
// RetryBudget), a retry with a RetryBudget, and the three chaos policies of bulwark/chaos
// (seeded). Each must keep the contract too:
// - every call settles exactly once, a caller's abort answers at once with its reason;
// - a rejection is the function's own error (the same object), the caller's reason, or the
//   documented answer of a policy of the stack (a timeout, a refusal, a chaos fault's injected
//   error); a value is the function's, a fallback's or a chaos outcome's; every refusal is
//   recognised by isRefusal, and the function's own error and an injected fault are not;
// - a function's signal aborts only with the caller's reason, a TimeoutError, or a
//   HedgeLostError (a refusal, which never reaches a caller);
// - nothing outlives a call: no timer of a policy once its call settled, and none at all while
//   no call is pending (a rate limiter's one timer and a hedge's are shared or armed in a batch,
//   so they are checked that way), no abort listener, no queued or delayed call, no place held;
// - the function runs at most Π(maxRetries + 1) × Π(maxHedgedAttempts + 1) times per call.
//
// Results as failures: a function that returns may return a failing value (`{ failing: true }`,
// as an HTTP client returns a 503), on every run or on its first run only, and a breaker, a
// retry, a fallback and a hedge may carry their `…Result` predicate, which calls it a failure
// (a retry also, sometimes, a `delay` hook answering a few ms or undefined). Then:
// - a failing value reaches the caller as the very object the function returned for that
//   call, never as an error, and never through a stack holding a fallback with handlesResult
//   (which replaces it); the bound on attempts above holds, retries of values included;
// - a predicate is asked about values only (never an error), with an attempt within its
//   policy's bound, and never about a value of a call whose caller aborted while it was
//   pending; a fallback function is told of a value as `(undefined, ctx, { ok: true, value })`;
//   a `delay` hook is asked only before a retry that runs (attempt ≤ maxRetries), with the
//   outcome of that attempt and a backoff within [0, maxDelay].
//
// A failure prints fast-check's seed and path. To replay it:
//   BULWARK_PROPERTY_SEED=<seed> BULWARK_PROPERTY_PATH=<path> npx vitest run test/engine/contract.property.test.ts
// BULWARK_PROPERTY_RUNS=<n> runs more (or fewer) stacks than the default.
import { AsyncLocalStorage } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  HedgeLostError,
  RateLimiter,
  RetryBudget,
  compose,
  hedge,
  isBulkheadRejectedError,
  isCircuitOpenError,
  isRateLimitedError,
  isRefusal,
  isTimeoutError,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type Clock,
  type ExecuteOptions,
  type ExecutionContext,
  type JitterMode,
  type Outcome,
  type Policy,
  type RateLimitAlgorithm,
} from '../../src/index.js';
import { chaosFault, chaosLatency, chaosOutcome, seededRandom as chaosRandom, type ChaosOptions } from '../../src/chaos/index.js';
import { InFlightLimit, InFlightLimitError } from '../../examples/in-flight-limit.js';
import { flush } from '../fixtures/promises.js';
import { propertyParameters, propertyRuns } from '../fixtures/property.js';
import { SteppingClock } from '../fixtures/stepping-clock.js';

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

type LayerSpec =
  | { readonly kind: 'bulkhead'; readonly maxConcurrent: number; readonly maxQueue: number; readonly queueTimeout: number | undefined }
  | { readonly kind: 'timeout'; readonly ms: number }
  | {
      readonly kind: 'retry';
      readonly maxRetries: number;
      readonly baseDelay: number;
      readonly jitter: JitterMode;
      readonly seed: number;
      readonly budget: BudgetSpec | undefined;
      /** With `retryOnResult`: a failing value is retried. */
      readonly results: boolean;
      readonly delayHook: DelayHookSpec | undefined;
    }
  | { readonly kind: 'breaker'; readonly failureThreshold: number; readonly recoveryTimeout: number; readonly halfOpenMaxCalls: number; readonly results: boolean }
  /** `results`: with `handlesResult`, a failing value is replaced too. */
  | { readonly kind: 'fallback'; readonly delay: number | undefined; readonly results: boolean }
  | { readonly kind: 'foreign' }
  | { readonly kind: 'in-flight-limit'; readonly maxPerKey: number }
  | {
      readonly kind: 'rate-limiter';
      readonly algorithm: RateLimitAlgorithm;
      readonly rate: number;
      readonly interval: number;
      /** Token bucket only; `undefined`: the default (rate). */
      readonly burst: number | undefined;
      readonly maxWait: number;
      /** `undefined`: the default (Infinity); given with maxWait 0 only as 0. */
      readonly maxQueue: number | undefined;
    }
  | { readonly kind: 'hedge'; readonly delay: number; readonly maxHedgedAttempts: number; readonly budget: BudgetSpec | undefined; readonly results: boolean }
  | { readonly kind: 'chaos-fault'; readonly chaos: ChaosSpec; readonly fault: 'one error' | 'fresh errors' }
  /** `latency` Infinity only below a timeout (see `scenarioOf`): the call hangs until something aborts it. */
  | { readonly kind: 'chaos-latency'; readonly chaos: ChaosSpec; readonly latency: number }
  /** `delay` undefined: the outcome is a value; else a function answering it that much later. */
  | { readonly kind: 'chaos-outcome'; readonly chaos: ChaosSpec; readonly delay: number | undefined };

/** A RetryBudget; `shared`: one budget of the scenario, made from the first shared spec, used by every layer with a shared spec. */
interface BudgetSpec {
  readonly ratio: number;
  readonly minPerSecond: number;
  readonly window: number;
  readonly shared: boolean;
}

/**
 * A retry's `delay` hook: it answers `ms` (`undefined`: keep the backoff), or, `onlyValues`,
 * `ms` after a failing value and `undefined` after an error (a server's Retry-After).
 */
interface DelayHookSpec {
  readonly ms: number | undefined;
  readonly onlyValues: boolean;
}

/** What every chaos layer draws: its rate, its seeded random source, and whether it is enabled. */
interface ChaosSpec {
  readonly rate: number;
  readonly seed: number;
  readonly enabled: 'on' | 'off' | 'odd attempts';
}

/** What the called function does: return or throw at once, settle after `duration`, or resolve after `duration` unless `ctx.signal` aborts first. */
type FnKind = 'value' | 'throw' | 'resolve' | 'reject' | 'resolve-unless-aborted';

/** What a function that returns answers: its good value, a failing value on every run, or a failing value on its first run only. */
type Returns = 'good' | 'failing' | 'failing first';

/** A value a `…Result` predicate of the stack calls a failure (an HTTP 503, say): a new object per run of the function. */
interface FailingValue {
  readonly failing: true;
  readonly call: number;
  readonly run: number;
}

const isFailing = (value: unknown): value is FailingValue => typeof value === 'object' && value !== null && (value as Partial<FailingValue>).failing === true;

interface CallSpec {
  /** When the call starts (ms after the scenario starts). */
  readonly start: number;
  readonly fn: FnKind;
  readonly duration: number;
  /** What the function answers when it returns (`value`, `resolve`, `resolve-unless-aborted`). */
  readonly returns: Returns;
  /** Absent: no caller signal. `abortAfter` is counted from `start`; negative aborts the signal before the call. */
  readonly caller: { readonly abortAfter: number | undefined } | undefined;
  /** The key of the call at every in-flight limit of the stack. */
  readonly key: CallKey;
}

const CALL_KEYS = ['a', 'b'] as const;
type CallKey = (typeof CALL_KEYS)[number];

interface Scenario {
  readonly layers: readonly LayerSpec[];
  readonly calls: readonly CallSpec[];
}

const MAX_DELAY = 40;

/** What a chaos outcome layer answers with. */
const CHAOS_OUTCOME = 'chaos outcome';

const bulkheadArb: fc.Arbitrary<LayerSpec> = fc.record({
  kind: fc.constant('bulkhead' as const),
  maxConcurrent: fc.integer({ min: 1, max: 3 }),
  maxQueue: fc.integer({ min: 0, max: 3 }),
  queueTimeout: fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined }),
});

const inFlightLimitArb: fc.Arbitrary<LayerSpec> = fc.record({ kind: fc.constant('in-flight-limit' as const), maxPerKey: fc.integer({ min: 1, max: 3 }) });

/** Small budgets over short windows of the hand-driven clock, so they run out within a scenario (ratio 0 and minPerSecond 0: no retry at all). */
const budgetArb: fc.Arbitrary<BudgetSpec> = fc.record({
  ratio: fc.constantFrom(0, 0.2, 0.5, 1),
  minPerSecond: fc.constantFrom(0, 10, 50),
  window: fc.integer({ min: 1, max: 200 }),
  shared: fc.boolean(),
});

/** Small rates on the hand-driven clock: a permit every 0.3–50 ms; a wait of 0 (refuse), up to 60 ms, or for ever. */
const rateLimiterArb: fc.Arbitrary<LayerSpec> = fc
  .record({
    kind: fc.constant('rate-limiter' as const),
    algorithm: fc.constantFrom<RateLimitAlgorithm>('token-bucket', 'sliding-window'),
    rate: fc.integer({ min: 1, max: 3 }),
    interval: fc.integer({ min: 1, max: 50 }),
    burst: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    maxWait: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 }), fc.constant(Infinity)),
    maxQueue: fc.option(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(Infinity)), { nil: undefined }),
  })
  .map((layer) => ({
    ...layer,
    // A sliding window has no burst; with maxWait 0 no call waits, and a maxQueue > 0 is refused.
    burst: layer.algorithm === 'sliding-window' ? undefined : layer.burst,
    maxQueue: layer.maxWait === 0 && layer.maxQueue !== undefined ? 0 : layer.maxQueue,
  }));

const hedgeArb: fc.Arbitrary<LayerSpec> = fc.record({
  kind: fc.constant('hedge' as const),
  delay: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 }), fc.constant(Infinity)),
  maxHedgedAttempts: fc.integer({ min: 0, max: 3 }),
  budget: fc.option(budgetArb, { nil: undefined }),
  results: fc.boolean(),
});

const delayHookArb: fc.Arbitrary<DelayHookSpec | undefined> = fc.option(
  fc.record({ ms: fc.option(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 })), { nil: undefined }), onlyValues: fc.boolean() }),
  { nil: undefined, freq: 2 },
);

const chaosArb: fc.Arbitrary<ChaosSpec> = fc.record({
  rate: fc.constantFrom(0, 0.3, 0.5, 0.8, 1),
  seed: fc.integer(),
  enabled: fc.constantFrom<ChaosSpec['enabled']>('on', 'on', 'off', 'odd attempts'),
});

/** The three chaos policies of bulwark/chaos. */
const chaosLayerArbs: readonly fc.Arbitrary<LayerSpec>[] = [
  fc.record({ kind: fc.constant('chaos-fault' as const), chaos: chaosArb, fault: fc.constantFrom<'one error' | 'fresh errors'>('one error', 'fresh errors') }),
  fc.record({ kind: fc.constant('chaos-latency' as const), chaos: chaosArb, latency: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 }), fc.constant(Infinity)) }),
  fc.record({ kind: fc.constant('chaos-outcome' as const), chaos: chaosArb, delay: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }) }),
];

/** Every built-in layer but a bulkhead (the chaos policies of bulwark/chaos included), and a foreign one. */
const builtinOtherLayerArbs: readonly fc.Arbitrary<LayerSpec>[] = [
  fc.record({ kind: fc.constant('timeout' as const), ms: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 80 })) }),
  fc.record({
    kind: fc.constant('retry' as const),
    maxRetries: fc.integer({ min: 0, max: 3 }),
    baseDelay: fc.integer({ min: 0, max: 20 }),
    jitter: fc.constantFrom<JitterMode>('proportional', 'full', 'equal', 'decorrelated', 'none'),
    seed: fc.integer(),
    budget: fc.option(budgetArb, { nil: undefined }),
    results: fc.boolean(),
    delayHook: delayHookArb,
  }),
  fc.record({
    kind: fc.constant('breaker' as const),
    failureThreshold: fc.integer({ min: 1, max: 3 }),
    recoveryTimeout: fc.integer({ min: 0, max: 50 }),
    halfOpenMaxCalls: fc.integer({ min: 1, max: 2 }),
    results: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('fallback' as const), delay: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }), results: fc.boolean() }),
  fc.constant({ kind: 'foreign' as const }),
  rateLimiterArb,
  hedgeArb,
  ...chaosLayerArbs,
];

/** Every layer but a bulkhead. */
const otherLayerArb: fc.Arbitrary<LayerSpec> = fc.oneof(...builtinOtherLayerArbs, inFlightLimitArb);

const layerArb: fc.Arbitrary<LayerSpec> = fc.oneof(bulkheadArb, otherLayerArb);

const callArb: fc.Arbitrary<CallSpec> = fc.record({
  start: fc.integer({ min: 0, max: 60 }),
  fn: fc.constantFrom<FnKind>('value', 'throw', 'resolve', 'reject', 'resolve-unless-aborted'),
  duration: fc.integer({ min: 0, max: 100 }),
  returns: fc.constantFrom<Returns>('good', 'failing', 'failing first', 'good'),
  caller: fc.option(fc.record({ abortAfter: fc.option(fc.integer({ min: -10, max: 120 }), { nil: undefined }) }), { nil: undefined }),
  key: fc.constantFrom(...CALL_KEYS),
});

/**
 * The scenario of `layers` and `calls`, printed by fast-check as its description. An injected
 * latency of Infinity hangs its call until something aborts it, as documented: it is kept only
 * below a timeout, and made 60 ms elsewhere, so that every call of a scenario settles.
 */
function scenarioOf(layers: readonly LayerSpec[], calls: readonly CallSpec[]): Scenario {
  const bounded = layers.map((layer, at) =>
    layer.kind === 'chaos-latency' && layer.latency === Infinity && !layers.slice(0, at).some((outer) => outer.kind === 'timeout') ? { ...layer, latency: 60 } : layer,
  );
  const scenario: Scenario = { layers: bounded, calls };
  return Object.assign(scenario, { [fc.toStringMethod]: () => describeScenario(scenario) });
}

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({ layers: fc.array(layerArb, { minLength: 1, maxLength: 6 }), calls: fc.array(callArb, { minLength: 1, maxLength: 15 }) })
  .map(({ layers, calls }) => scenarioOf(layers, calls));

function describeLayer(layer: LayerSpec): string {
  switch (layer.kind) {
    case 'bulkhead':
      return `Bulkhead(max ${layer.maxConcurrent}, queue ${layer.maxQueue}${layer.queueTimeout === undefined ? '' : `, queueTimeout ${layer.queueTimeout}`})`;
    case 'timeout':
      return `withTimeout(${layer.ms})`;
    case 'retry':
      return `retry(maxRetries ${layer.maxRetries}, base ${layer.baseDelay}, ${layer.jitter}, seed ${layer.seed}${describeBudget(layer.budget)}${describeResults(layer.results, 'retryOnResult')}${describeDelayHook(layer.delayHook)})`;
    case 'breaker':
      return `CircuitBreaker(threshold ${layer.failureThreshold}, recovery ${layer.recoveryTimeout}, trials ${layer.halfOpenMaxCalls}${describeResults(layer.results, 'isFailureResult')})`;
    case 'fallback':
      return `withFallback(${layer.delay === undefined ? 'at once' : `after ${layer.delay}`}${describeResults(layer.results, 'handlesResult')})`;
    case 'foreign':
      return 'foreign pass-through';
    case 'in-flight-limit':
      return `InFlightLimit(maxPerKey ${layer.maxPerKey})`;
    case 'rate-limiter': {
      const burst = layer.burst === undefined ? '' : `, burst ${layer.burst}`;
      const maxQueue = layer.maxQueue === undefined ? '' : `, maxQueue ${layer.maxQueue}`;
      return `RateLimiter(${layer.algorithm} ${layer.rate} per ${layer.interval}${burst}, maxWait ${layer.maxWait}${maxQueue})`;
    }
    case 'hedge':
      return `hedge(delay ${layer.delay}, maxHedgedAttempts ${layer.maxHedgedAttempts}${describeBudget(layer.budget)}${describeResults(layer.results, 'hedgeOnResult')})`;
    case 'chaos-fault':
      return `chaosFault(${describeChaos(layer.chaos)}, ${layer.fault})`;
    case 'chaos-latency':
      return `chaosLatency(${describeChaos(layer.chaos)}, latency ${layer.latency})`;
    case 'chaos-outcome':
      return `chaosOutcome(${describeChaos(layer.chaos)}, ${layer.delay === undefined ? 'a value' : `a function answering after ${layer.delay}`})`;
  }
}

function describeBudget(budget: BudgetSpec | undefined): string {
  if (budget === undefined) return '';
  return `, ${budget.shared ? 'shared ' : ''}budget(ratio ${budget.ratio}, minPerSecond ${budget.minPerSecond}, window ${budget.window})`;
}

function describeResults(results: boolean, option: string): string {
  return results ? `, ${option}` : '';
}

function describeDelayHook(hook: DelayHookSpec | undefined): string {
  if (hook === undefined) return '';
  return `, delay hook ${hook.ms === undefined ? 'undefined' : `${hook.ms} ms`}${hook.onlyValues ? ' after values (else undefined)' : ''}`;
}

function describeChaos({ rate, seed, enabled }: ChaosSpec): string {
  return `rate ${rate}, seed ${seed}${enabled === 'on' ? '' : `, enabled ${enabled}`}`;
}

function describeCall(call: CallSpec, i: number): string {
  const returns = call.fn === 'throw' || call.fn === 'reject' || call.returns === 'good' ? '' : ` (${call.returns === 'failing' ? 'a failing value' : 'a failing value on its first run'})`;
  const fn = `${call.fn === 'value' || call.fn === 'throw' ? call.fn : `${call.fn} after ${call.duration}`}${returns}`;
  const caller = call.caller === undefined ? '' : call.caller.abortAfter === undefined ? ', signal never aborted' : `, caller aborts at ${Math.max(0, call.start + call.caller.abortAfter)}`;
  return `#${i} at ${call.start} key ${call.key}: ${fn}${caller}`;
}

function describeScenario({ layers, calls }: Scenario): string {
  return `stack: ${layers.map(describeLayer).join(' › ')}\ncalls: ${calls.map(describeCall).join(' | ')}`;
}

// ---------------------------------------------------------------------------------------------
// Running one scenario
// ---------------------------------------------------------------------------------------------

/** Mulberry32: the seeded `random` of a retry layer, so a scenario replays the same delays. */
function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A policy bulwark did not make: it passes the call straight through, as a user's own policy might. */
const foreignPassThrough: Policy = {
  async execute<T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T> {
    return fn({ signal: options?.signal ?? new AbortController().signal, attempt: 1 });
  },
  wrap<A extends unknown[], R>(fn: (...args: A) => R | PromiseLike<R>): (...args: A) => Promise<R> {
    return async (...args) => fn(...args);
  },
};

/** The call whose execution armed a timer (bulwark runs a call's work in its caller's async context). */
const currentCall = new AsyncLocalStorage<number>();

let unhandledRejections: unknown[] = [];
const onUnhandledRejection = (reason: unknown): void => {
  unhandledRejections.push(reason);
};

/**
 * Scenarios per property (about 0.3 ms each with the rate limiter, hedging, budgets, chaos and
 * results as failures among the kinds): measured at about 1.5 s and 0.5 s on 2 cores, so the
 * file passes in about 3.5 s (the results as failures cost no measurable time).
 */
const CONTRACT_RUNS = 5_000;
const LIMIT_RUNS = 2_000;

const START = 1_700_000_000_000;
/** A scenario whose timers still fire after this long (ms) keeps re-arming them. */
const HORIZON = 60_000;

interface CallState {
  readonly reason: Error;
  readonly failure: Error;
  readonly controller: AbortController | undefined;
  started: boolean;
  settlements: number;
  settledAt: number | undefined;
  outcome: { readonly fulfilled: boolean; readonly value: unknown } | undefined;
  /** The instant the call must reject with `reason` (its caller aborted while it was pending). */
  mustAbortAt: number | undefined;
  fnCalls: number;
  /** The failing values the function returned, one per run that returned one. */
  readonly failingValues: FailingValue[];
}

/**
 * Runs a scenario and returns the violations it saw, each prefixed with its invariant:
 * invariants 1–5 (`'contract'`), or only the bulkhead limit (`'bulkhead limit'`, for stacks
 * with one bulkhead), or only the per-key limit (`'in-flight limit'`, for stacks with one
 * in-flight limit), so that a break of one cannot hide a break of another.
 */
async function run(scenario: Scenario, checks: 'contract' | 'bulkhead limit' | 'in-flight limit'): Promise<string[]> {
  const violations: string[] = [];
  const limitViolations: string[] = [];
  let untagged = false;
  const clock = new SteppingClock(START, () => (untagged ? undefined : currentCall.getStore()));
  const policyClock = clock.forPolicies;
  /**
   * The clock of the policies whose timers no one call owns: a rate limiter's one timer stands
   * for the head of its queue, whoever armed it, and a hedge arms the timers of the calls that
   * scheduled a hedge in one microtask together. Their timers are checked by the rule that no
   * policy timer is armed while no call is pending, and the end of the scenario.
   */
  const sharedClock: Clock = {
    now: () => policyClock.now(),
    setTimeout: (callback, ms) => {
      untagged = true;
      try {
        return policyClock.setTimeout(callback, ms);
      } finally {
        untagged = false;
      }
    },
    clearTimeout: (handle) => policyClock.clearTimeout(handle),
  };
  const bulkheads: Bulkhead[] = [];
  const limits: InFlightLimit[] = [];
  const rateLimiters: RateLimiter[] = [];
  const latencies: ReturnType<typeof chaosLatency>[] = [];
  const budgets: RetryBudget[] = [];
  let sharedBudget: RetryBudget | undefined;
  const budgetOf = (spec: BudgetSpec | undefined): RetryBudget | undefined => {
    if (spec === undefined) return undefined;
    if (spec.shared && sharedBudget !== undefined) return sharedBudget;
    const budget = new RetryBudget({ ratio: spec.ratio, minPerSecond: spec.minPerSecond, window: spec.window, clock: policyClock });
    if (spec.shared) sharedBudget = budget;
    budgets.push(budget);
    return budget;
  };
  /** The errors the chaos fault layers injected: the answer of their job, as a fallback's value is. */
  const injectedFaults = new Set<unknown>();
  const chaosOptions = ({ rate, seed, enabled }: ChaosSpec): ChaosOptions => ({
    rate,
    random: chaosRandom(seed),
    enabled: enabled === 'on' ? true : enabled === 'off' ? false : (ctx: ExecutionContext) => ctx.attempt % 2 === 1,
  });
  let attemptsPerCall = 1;
  /**
   * The `…Result` predicate of layer `at`: a failing value is a failure. It checks what it is
   * asked: a value (never an error), at an attempt from 1 to `maxAttempt`, of a call whose
   * caller has not aborted it.
   */
  const resultPredicate =
    (at: number, option: string, maxAttempt = Infinity) =>
    (value: unknown, attempt?: number): boolean => {
      if (value instanceof Error) violations.push(`[results] ${option} of layer ${at} was asked about the error ${show(value)} as a value`);
      if (attempt !== undefined && !(attempt >= 1 && attempt <= maxAttempt)) violations.push(`[results] ${option} of layer ${at} was asked about attempt ${attempt} (at most ${maxAttempt})`);
      if (!isFailing(value)) return false;
      const owner = calls[value.call];
      if (owner?.mustAbortAt !== undefined && clock.elapsed >= owner.mustAbortAt) {
        violations.push(`[results] ${option} of layer ${at} was asked at ${clock.elapsed} ms about a value of call ${value.call}, whose caller aborted it at ${owner.mustAbortAt} ms`);
      }
      return true;
    };
  /** Whether a fallback of the stack replaces failing values: then none reaches a caller. */
  const resultsReplaced = scenario.layers.some((layer) => layer.kind === 'fallback' && layer.results);
  const policies = scenario.layers.map((layer, at): Policy<unknown> | InFlightLimit => {
    switch (layer.kind) {
      case 'bulkhead': {
        const { maxConcurrent, maxQueue, queueTimeout } = layer;
        const bulkhead = new Bulkhead({ maxConcurrent, maxQueue, queueTimeout, clock: policyClock });
        bulkheads.push(bulkhead);
        return bulkhead;
      }
      case 'timeout':
        return withTimeout(layer.ms, { clock: policyClock });
      case 'retry': {
        const { maxRetries, results, delayHook } = layer;
        attemptsPerCall *= maxRetries + 1;
        // Asked only before a retry that runs, with the outcome of the attempt that failed.
        const delay = (attempt: number, outcome: Outcome, backoff: number): number | undefined => {
          if (!(attempt >= 1 && attempt <= maxRetries)) violations.push(`[results] the delay hook of retry ${at} (maxRetries ${maxRetries}) was asked after attempt ${attempt}`);
          if (!(backoff >= 0 && backoff <= MAX_DELAY)) violations.push(`[results] the delay hook of retry ${at} was given the backoff ${backoff}`);
          if (outcome.ok && !(results && isFailing(outcome.value))) violations.push(`[results] the delay hook of retry ${at} was asked after the value ${show(outcome.value)}`);
          return delayHook?.onlyValues === true && !outcome.ok ? undefined : delayHook?.ms;
        };
        return retryWithBackoff({
          maxRetries,
          baseDelay: layer.baseDelay,
          maxDelay: MAX_DELAY,
          jitter: layer.jitter,
          random: seededRandom(layer.seed),
          clock: policyClock,
          budget: budgetOf(layer.budget),
          retryOnResult: results ? resultPredicate(at, 'retryOnResult', maxRetries + 1) : undefined,
          delay: delayHook === undefined ? undefined : delay,
        });
      }
      case 'breaker': {
        const { failureThreshold, recoveryTimeout, halfOpenMaxCalls, results } = layer;
        const isFailureResult = results ? resultPredicate(at, 'isFailureResult') : undefined;
        return new CircuitBreaker({ failureThreshold, recoveryTimeout, halfOpenMaxCalls, isFailureResult, clock: policyClock });
      }
      case 'fallback': {
        const { delay, results } = layer;
        const answer = (error: unknown, _ctx: ExecutionContext, outcome: Outcome): string | Promise<string> => {
          // An error as `{ ok: false, error }`; a value (handlesResult only) as `(undefined, ctx, { ok: true, value })`.
          const told = outcome.ok ? error === undefined && results && isFailing(outcome.value) : outcome.error === error;
          if (!told) violations.push(`[results] fallback ${at} was called with ${show(error)} and the outcome ${outcome.ok ? `{ ok: true, value: ${show(outcome.value)} }` : `{ ok: false, error: ${show(outcome.error)} }`}`);
          return delay === undefined ? 'fallback' : new Promise<string>((resolve) => clock.setTimeout(() => resolve('fallback'), delay));
        };
        return withFallback(answer, { handlesResult: results ? resultPredicate(at, 'handlesResult') : undefined });
      }
      case 'foreign':
        return foreignPassThrough;
      case 'in-flight-limit': {
        const limit = new InFlightLimit({ maxPerKey: layer.maxPerKey });
        limits.push(limit);
        return limit;
      }
      case 'rate-limiter': {
        const { algorithm, rate, interval, burst, maxWait, maxQueue } = layer;
        const limiter = new RateLimiter({ algorithm, rate, interval, burst, maxWait, maxQueue, clock: sharedClock });
        rateLimiters.push(limiter);
        return limiter;
      }
      case 'hedge': {
        const { maxHedgedAttempts, results } = layer;
        attemptsPerCall *= maxHedgedAttempts + 1;
        const hedgeOnResult = results ? resultPredicate(at, 'hedgeOnResult', maxHedgedAttempts + 1) : undefined;
        const hedging = hedge({ delay: layer.delay, maxHedgedAttempts, budget: budgetOf(layer.budget), hedgeOnResult, clock: sharedClock });
        // 5: within one call through it, a hedge starts attempts 2 to maxHedgedAttempts + 1 at most.
        hedging.on('hedge', ({ attempt }) => {
          if (attempt < 2 || attempt > maxHedgedAttempts + 1) violations.push(`[5 bounded attempts] hedge ${at} (maxHedgedAttempts ${maxHedgedAttempts}) started attempt ${attempt}`);
        });
        return hedging;
      }
      case 'chaos-fault': {
        const injected = new Error(`fault injected by layer ${at}`);
        injectedFaults.add(injected);
        const fresh = (): Error => {
          const error = new Error(`fresh fault injected by layer ${at}`);
          injectedFaults.add(error);
          return error;
        };
        return chaosFault({ ...chaosOptions(layer.chaos), fault: layer.fault === 'one error' ? injected : fresh });
      }
      case 'chaos-latency': {
        const latency = chaosLatency({ ...chaosOptions(layer.chaos), latency: layer.latency, clock: policyClock });
        latencies.push(latency);
        return latency;
      }
      case 'chaos-outcome': {
        const { delay } = layer;
        const answer = (): Promise<string> => new Promise<string>((resolve) => clock.setTimeout(() => resolve(CHAOS_OUTCOME), delay ?? 0));
        return chaosOutcome<string>({ ...chaosOptions(layer.chaos), outcome: delay === undefined ? CHAOS_OUTCOME : answer });
      }
    }
  });
  // One stack per key, built once: an in-flight limit stands in it as the policy of that key.
  const stacks = new Map(CALL_KEYS.map((key) => [key, compose(...policies.map((policy) => (policy instanceof InFlightLimit ? policy.forKey(key) : policy)))]));
  // With one bulkhead every function runs under it: count them against its limit.
  const onlyBulkhead = checks === 'bulkhead limit' && bulkheads.length === 1 ? bulkheads[0] : undefined;
  // With one in-flight limit every function runs under the place of its key: count them per key.
  const onlyLimit = checks === 'in-flight limit' && limits.length === 1 ? limits[0] : undefined;
  let running = 0;
  const runningByKey = new Map<CallKey, number>();
  /** The signals the functions listened to, and what aborted them. */
  const signalsSeen = new Set<AbortSignal>();
  const reasonsSeen: unknown[] = [];

  const calls: CallState[] = scenario.calls.map((spec, i) => ({
    reason: new Error(`caller ${i} aborted`),
    failure: new Error(`call ${i} failed`),
    controller: spec.caller === undefined ? undefined : new AbortController(),
    started: false,
    settlements: 0,
    settledAt: undefined,
    outcome: undefined,
    mustAbortAt: undefined,
    fnCalls: 0,
    failingValues: [],
  }));

  const fnStarts = (key: CallKey): void => {
    running++;
    if (onlyBulkhead !== undefined && running > onlyBulkhead.maxConcurrent) {
      limitViolations.push(`[6 bulkhead limit] at ${clock.elapsed} ms ${running} functions run under a bulkhead of maxConcurrent ${onlyBulkhead.maxConcurrent}`);
    }
    const ofKey = (runningByKey.get(key) ?? 0) + 1;
    runningByKey.set(key, ofKey);
    if (onlyLimit !== undefined && ofKey > onlyLimit.maxPerKey) {
      limitViolations.push(`[7 in-flight limit] at ${clock.elapsed} ms ${ofKey} functions of key ${key} run under an in-flight limit of maxPerKey ${onlyLimit.maxPerKey}`);
    }
  };

  function userFunction(i: number, spec: CallSpec, state: CallState): (ctx: ExecutionContext) => unknown {
    const fnEnds = (): void => {
      running--;
      runningByKey.set(spec.key, (runningByKey.get(spec.key) ?? 0) - 1);
    };
    /** What run `run` of the function answers when it returns: a good value, or a new failing one. */
    const answer = (run: number): unknown => {
      if (spec.returns === 'good' || (spec.returns === 'failing first' && run > 1)) return `value ${i}`;
      const failing: FailingValue = { failing: true, call: i, run };
      state.failingValues.push(failing);
      return failing;
    };
    return (ctx) => {
      const run = ++state.fnCalls;
      fnStarts(spec.key);
      switch (spec.fn) {
        case 'value':
          fnEnds();
          return answer(run);
        case 'throw':
          fnEnds();
          throw state.failure;
        case 'resolve':
          return new Promise((resolve) =>
            clock.setTimeout(() => {
              fnEnds();
              resolve(answer(run));
            }, spec.duration),
          );
        case 'reject':
          return new Promise((_, reject) =>
            clock.setTimeout(() => {
              fnEnds();
              reject(state.failure);
            }, spec.duration),
          );
        case 'resolve-unless-aborted': {
          const { signal } = ctx;
          signalsSeen.add(signal);
          return new Promise((resolve, reject) => {
            if (signal.aborted) {
              fnEnds();
              reasonsSeen.push(signal.reason);
              reject(signal.reason);
              return;
            }
            const onAbort = (): void => {
              clock.clearTimeout(timer);
              fnEnds();
              reasonsSeen.push(signal.reason);
              reject(signal.reason);
            };
            const timer = clock.setTimeout(() => {
              signal.removeEventListener('abort', onAbort);
              fnEnds();
              resolve(answer(run));
            }, spec.duration);
            signal.addEventListener('abort', onAbort, { once: true });
          });
        }
      }
    };
  }

  const settled = (i: number, state: CallState, fulfilled: boolean, value: unknown): void => {
    state.settlements++;
    if (state.settlements > 1) {
      violations.push(`[1 settles once] call ${i} settled ${state.settlements} times`);
      return;
    }
    state.settledAt = clock.elapsed;
    state.outcome = { fulfilled, value };
    if (state.mustAbortAt !== undefined) {
      if (fulfilled || value !== state.reason) {
        violations.push(`[2 caller abort wins] call ${i}, aborted by its caller at ${state.mustAbortAt} ms, ${fulfilled ? 'fulfilled with' : 'rejected with'} ${show(value)} instead of the caller's reason`);
      } else if (state.settledAt !== state.mustAbortAt) {
        violations.push(`[2 caller abort wins] call ${i}, aborted by its caller at ${state.mustAbortAt} ms, rejected only at ${state.settledAt} ms`);
      }
    }
  };

  scenario.calls.forEach((spec, i) => {
    const state = calls[i] as CallState;
    clock.setTimeout(() => {
      state.started = true;
      const signal = state.controller?.signal;
      if (signal?.aborted === true) state.mustAbortAt = clock.elapsed;
      const options = signal === undefined ? undefined : { signal };
      const stack = stacks.get(spec.key) as Policy<unknown>;
      const promise = currentCall.run(i, () => stack.execute(userFunction(i, spec, state), options));
      promise.then(
        (value) => settled(i, state, true, value),
        (error: unknown) => settled(i, state, false, error),
      );
    }, spec.start);
    const abortAfter = spec.caller?.abortAfter;
    if (state.controller !== undefined && abortAfter !== undefined) {
      const controller = state.controller;
      clock.setTimeout(() => {
        if (state.started && state.settlements === 0) state.mustAbortAt = clock.elapsed;
        controller.abort(state.reason);
      }, Math.max(0, spec.start + abortAfter));
    }
  });

  unhandledRejections = [];
  await flush();
  for (let steps = 0; await clock.step(); steps++) {
    // 4: a call that settled left no timer of bulwark's armed (checked once the instant's promise reactions ran).
    for (const timer of clock.armed()) {
      const owner = timer.call === undefined ? undefined : calls[timer.call];
      if (timer.owner === 'policy' && owner !== undefined && owner.settlements > 0) {
        violations.push(`[4 nothing outlives a call] call ${timer.call} settled at ${owner.settledAt} ms but left a timer armed (due at ${timer.at - START} ms; now ${clock.elapsed} ms)`);
        clock.clearTimeout(timer.id);
      }
    }
    // 4 and 7: while no call is pending, no policy has a timer armed, whoever armed it.
    if (!calls.some((state) => state.started && state.settlements === 0)) {
      for (const timer of clock.armed()) {
        if (timer.owner !== 'policy') continue;
        violations.push(`[4 nothing outlives a call] at ${clock.elapsed} ms no call is pending but a policy timer is armed (due at ${timer.at - START} ms)`);
        clock.clearTimeout(timer.id);
      }
    }
    if (clock.elapsed > HORIZON || steps > 20_000) {
      violations.push(`[4 nothing outlives a call] timers still fire after ${clock.elapsed} ms and ${steps} steps`);
      break;
    }
  }
  await flush();
  await flush();

  calls.forEach((state, i) => {
    const spec = scenario.calls[i] as CallSpec;
    if (state.settlements !== 1) violations.push(`[1 settles once] call ${i} settled ${state.settlements} times`);
    if (state.fnCalls > attemptsPerCall) violations.push(`[5 bounded attempts] call ${i} ran its function ${state.fnCalls} times, at most ${attemptsPerCall} allowed`);
    const signal = state.controller?.signal;
    if (signal !== undefined && getEventListeners(signal, 'abort').length > 0) {
      violations.push(`[4 nothing outlives a call] call ${i} left ${getEventListeners(signal, 'abort').length} abort listener(s) on its caller's signal`);
    }
    // Errors pass through unchanged: every outcome is one the stack can produce.
    const outcome = state.outcome;
    if (outcome !== undefined && !outcome.fulfilled) {
      const error = outcome.value;
      const refused = isCircuitOpenError(error) || isBulkheadRejectedError(error) || error instanceof InFlightLimitError || isRateLimitedError(error);
      const known = error === state.failure || error === state.reason || isTimeoutError(error) || refused || injectedFaults.has(error);
      if (!known) violations.push(`[errors pass through] call ${i} (${spec.fn}) rejected with ${show(error)}`);
      // 5: a refusal is branded; the function's own error and an injected fault (a failure of the dependency, as far as the stack knows) are not.
      if (refused && !isRefusal(error)) violations.push(`[5 refusals are branded] call ${i} rejected with ${show(error)}, which isRefusal does not recognise`);
      if ((error === state.failure || injectedFaults.has(error)) && isRefusal(error)) violations.push(`[5 refusals are branded] call ${i} rejected with ${show(error)}, branded a refusal`);
    }
    if (outcome !== undefined && outcome.fulfilled) {
      const value = outcome.value;
      if (isFailing(value)) {
        // A failing value is the function's own object for this call, unless a fallback had to replace it.
        if (!state.failingValues.includes(value)) violations.push(`[values pass through] call ${i} (${spec.fn}) fulfilled with a failing value it did not return (${show(value)})`);
        else if (resultsReplaced) violations.push(`[results] call ${i} (${spec.fn}) fulfilled with its failing value ${show(value)} through a fallback with handlesResult`);
      } else if (value !== `value ${i}` && value !== 'fallback' && value !== CHAOS_OUTCOME) {
        violations.push(`[values pass through] call ${i} (${spec.fn}) fulfilled with ${show(value)}`);
      }
    }
  });
  // A function's signal aborts with the caller's reason, a timeout's, or a lost hedge's; a lost hedge is a refusal.
  const callerReasons = new Set<unknown>(calls.map((state) => state.reason));
  for (const reason of reasonsSeen) {
    if (reason instanceof HedgeLostError) {
      if (!isRefusal(reason)) violations.push(`[5 refusals are branded] a losing attempt was aborted with ${show(reason)}, which isRefusal does not recognise`);
    } else if (!callerReasons.has(reason) && !isTimeoutError(reason)) {
      violations.push(`[abort reasons] a function's signal aborted with ${show(reason)}`);
    }
  }
  for (const signal of signalsSeen) {
    const left = getEventListeners(signal, 'abort').length;
    if (left > 0) violations.push(`[4 nothing outlives a call] a function's signal ends with ${left} abort listener(s)`);
  }
  if (unhandledRejections.length > 0) violations.push(`[3 no unhandled rejection] ${unhandledRejections.length}: ${unhandledRejections.map(show).join(', ')}`);
  const left = clock.armed();
  if (left.length > 0) violations.push(`[4 nothing outlives a call] ${left.length} timer(s) left on the clock`);
  bulkheads.forEach((bulkhead, b) => {
    if (bulkhead.active !== 0 || bulkhead.queued !== 0) {
      violations.push(`[4 nothing outlives a call] bulkhead ${b} ends with active ${bulkhead.active}, queued ${bulkhead.queued}`);
    }
  });
  limits.forEach((limit, l) => {
    if (limit.total !== 0 || limit.size !== 0) {
      violations.push(`[4 nothing outlives a call] in-flight limit ${l} ends with ${limit.total} call(s) in flight over ${limit.size} key(s)`);
    }
  });
  rateLimiters.forEach((limiter, l) => {
    if (limiter.queued !== 0) violations.push(`[4 nothing outlives a call] rate limiter ${l} ends with ${limiter.queued} call(s) queued`);
    const available = limiter.available;
    if (!Number.isInteger(available) || available < 0) violations.push(`[rate limiter] rate limiter ${l} ends with ${available} permits available`);
  });
  latencies.forEach((latency, l) => {
    if (latency.delayed !== 0) violations.push(`[4 nothing outlives a call] chaos latency ${l} ends with ${latency.delayed} call(s) delayed`);
  });
  budgets.forEach((budget, b) => {
    const available = budget.available;
    if (!Number.isInteger(available) || available < 0) violations.push(`[retry budget] budget ${b} ends with ${available} retries available`);
  });
  return checks === 'contract' ? violations : limitViolations;
}

function show(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (isFailing(value)) return `{ failing: true, call: ${value.call}, run: ${value.run} }`;
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

// ---------------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------------

/** Room for a long run asked through BULWARK_PROPERTY_RUNS (a scenario takes about 1 ms). */
const timeoutFor = (numRuns: number): number => 20_000 + 5 * propertyRuns(numRuns);

/** Runs `check` on `numRuns` scenarios; a failure reports the shrunk scenario, what broke, and how to replay it. */
async function assertOnScenarios(scenarios: fc.Arbitrary<Scenario>, numRuns: number, check: (scenario: Scenario) => Promise<string[]>): Promise<void> {
  await fc.assert(
    fc.asyncProperty(scenarios, async (scenario) => {
      const violations = await check(scenario);
      if (violations.length > 0) throw new Error(`${violations.join('\n')}\n${describeScenario(scenario)}`);
    }),
    propertyParameters(numRuns),
  );
}

/**
 * True when, below the bulkhead (or the in-flight limit), a retry encloses a timeout or a
 * hedge, or a hedge stands at all. The bulkhead then holds one slot for the whole call, and an
 * attempt the timeout abandoned, or a hedge lost (its function ignoring the signal), keeps
 * running beside the next attempt under that same slot, as the attempts of a hedge run side by
 * side: by design, a bulkhead outside a retry or a hedge limits calls, not attempts (docs/bulkhead.md
 * says so; innermost, it limits every attempt). An in-flight limit holds its place the same way.
 */
function attemptsShareOneSlot(layers: readonly LayerSpec[], limiting: 'bulkhead' | 'in-flight-limit' = 'bulkhead'): boolean {
  const bulkhead = layers.findIndex((layer) => layer.kind === limiting);
  const hedging = (layer: LayerSpec): boolean => layer.kind === 'hedge' && layer.maxHedgedAttempts > 0;
  if (layers.some((layer, at) => at > bulkhead && hedging(layer))) return true;
  const retry = layers.findIndex((layer, at) => at > bulkhead && layer.kind === 'retry');
  return retry !== -1 && layers.some((layer, at) => at > retry && layer.kind === 'timeout');
}

/** Stacks with exactly one bulkhead, anywhere in the stack, that limits every attempt. */
const oneBulkheadScenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    others: fc.array(otherLayerArb, { minLength: 0, maxLength: 5 }),
    bulkhead: bulkheadArb,
    at: fc.nat({ max: 5 }),
    calls: fc.array(callArb, { minLength: 1, maxLength: 15 }),
  })
  .map(({ others, bulkhead, at, calls }) => scenarioOf([...others.slice(0, at), bulkhead, ...others.slice(at)], calls))
  .filter((scenario) => !attemptsShareOneSlot(scenario.layers));

/** Stacks with exactly one in-flight limit, anywhere in the stack, among built-in layers (bulkheads included). */
const oneLimitScenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    others: fc.array(fc.oneof(bulkheadArb, ...builtinOtherLayerArbs), { minLength: 0, maxLength: 5 }),
    limit: inFlightLimitArb,
    at: fc.nat({ max: 5 }),
    calls: fc.array(callArb, { minLength: 1, maxLength: 15 }),
  })
  .map(({ others, limit, at, calls }) => scenarioOf([...others.slice(0, at), limit, ...others.slice(at)], calls))
  .filter((scenario) => !attemptsShareOneSlot(scenario.layers, 'in-flight-limit'));

describe('the contract on randomly built stacks', () => {
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandledRejection);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandledRejection);
  });

  it('settles every call once, lets caller aborts win at once, leaves nothing behind and bounds the attempts', async () => {
    await assertOnScenarios(scenarioArb, CONTRACT_RUNS, (scenario) => run(scenario, 'contract'));
  }, timeoutFor(CONTRACT_RUNS));

  it('never runs more functions under a bulkhead than maxConcurrent, even after timeouts', async () => {
    await assertOnScenarios(oneBulkheadScenarioArb, LIMIT_RUNS, (scenario) => run(scenario, 'bulkhead limit'));
  }, timeoutFor(LIMIT_RUNS));

  it('never runs more functions of one key under an in-flight limit than maxPerKey, even after timeouts', async () => {
    await assertOnScenarios(oneLimitScenarioArb, LIMIT_RUNS, (scenario) => run(scenario, 'in-flight limit'));
  }, timeoutFor(LIMIT_RUNS));
});
