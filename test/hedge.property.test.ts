// The invariant of hedging checked on random calls: fast-check draws the hedging options (delay
// fixed, 0, Infinity or a function; up to 4 hedged attempts), what each attempt does (how long
// it takes, whether it answers, fails with an error hedgeOn accepts, fails with one it declines,
// or is refused; whether it listens to its signal), a caller's abort and an enclosing timeout,
// and runs the call on one hand-driven clock, one timer at a time. Whatever it draws:
// - no more than maxHedgedAttempts + 1 attempts start, and none after the call settled;
// - the call settles exactly once, in the very step of the event that decides it: the first
//   acceptable outcome in time order (a value, a failure hedgeOn declines that is not a refusal,
//   the caller's abort, the timeout), or, when every attempt failed, the last failure;
// - every attempt whose function had not settled then is aborted through its signal (with
//   HedgeLostError when an attempt decided, with the abort's reason otherwise), and the deciding
//   attempt is not;
// - no timer of a policy is left once the call settled; the events count the hedges.
//
// A failure prints fast-check's seed and path. To replay it:
//   BULWARK_PROPERTY_SEED=<seed> BULWARK_PROPERTY_PATH=<path> npx vitest run test/hedge.property.test.ts
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HedgeLostError, compose, hedge, isRefusal, isTimeoutError, refusal, withTimeout, type ExecutionContext, type HedgeDelay, type Policy } from '../src/index.js';
import { flush } from './fixtures/promises.js';
import { propertyParameters } from './fixtures/property.js';
import { SteppingClock } from './fixtures/stepping-clock.js';

type Outcome = 'value' | 'error' | 'declined' | 'refusal';

interface AttemptSpec {
  /** 0: settles in the turn that started it. */
  readonly duration: number;
  readonly outcome: Outcome;
  /** Settles with the abort's reason as soon as its signal aborts. */
  readonly listens: boolean;
}

interface Scenario {
  readonly maxHedgedAttempts: number;
  readonly delay: number | 'function';
  readonly attempts: readonly AttemptSpec[];
  readonly abortAt: number | undefined;
  readonly timeout: number | undefined;
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  maxHedgedAttempts: fc.integer({ min: 0, max: 4 }),
  delay: fc.oneof(fc.constant(0), fc.constant(Infinity), fc.integer({ min: 1, max: 40 }), fc.constant('function' as const)),
  attempts: fc.array(
    fc.record({
      duration: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 60 })),
      outcome: fc.constantFrom<Outcome>('value', 'error', 'declined', 'refusal'),
      listens: fc.boolean(),
    }),
    { minLength: 5, maxLength: 5 },
  ),
  abortAt: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined }),
  timeout: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined }),
});

/** A delay per hedge: at once, later, only on failure. */
const delayFunction: HedgeDelay = ({ hedge: n }) => [7, 0, 25, Infinity][n % 4] as number;

/** What the log records, in the order it happened. */
type Entry =
  | { readonly type: 'start'; readonly attempt: number }
  | { readonly type: 'outcome'; readonly attempt: number; readonly outcome: Outcome; readonly result: unknown }
  | { readonly type: 'abort'; readonly reason: unknown }
  | { readonly type: 'timeout' }
  | { readonly type: 'settled'; readonly fulfilled: boolean; readonly result: unknown };

const hedgeOn = (error: unknown): boolean => !isRefusal(error) && !(error instanceof Error && error.message.startsWith('declined'));

async function check(scenario: Scenario): Promise<void> {
  const clock = new SteppingClock(1_000_000, () => undefined);
  const log: Entry[] = [];
  const signals = new Map<number, AbortSignal>();
  const policy = hedge({ delay: scenario.delay === 'function' ? delayFunction : scenario.delay, maxHedgedAttempts: scenario.maxHedgedAttempts, hedgeOn, clock: clock.forPolicies });
  let hedges = 0;
  let wins: number[] = [];
  policy.on('hedge', () => void hedges++);
  policy.on('won', ({ attempt }) => void wins.push(attempt));
  const stack: Policy = scenario.timeout === undefined ? policy : compose(withTimeout(scenario.timeout, { clock: clock.forPolicies }), policy);

  const fn = (ctx: ExecutionContext): Promise<string> => {
    const attempt = ctx.attempt;
    const spec = scenario.attempts[attempt - 1] as AttemptSpec;
    signals.set(attempt, ctx.signal);
    log.push({ type: 'start', attempt });
    const result = spec.outcome === 'value' ? `value ${attempt}` : spec.outcome === 'refusal' ? refusal(new Error(`refused ${attempt}`)) : new Error(`${spec.outcome} ${attempt}`);
    const settle = (resolve: (value: string) => void, reject: (error: unknown) => void): void => {
      log.push({ type: 'outcome', attempt, outcome: spec.outcome, result });
      if (spec.outcome === 'value') resolve(result as string);
      else reject(result);
    };
    if (spec.duration === 0) return new Promise(settle);
    return new Promise((resolve, reject) => {
      const timer = clock.setTimeout(() => settle(resolve, reject), spec.duration);
      if (spec.listens) {
        ctx.signal.addEventListener('abort', () => {
          clock.clearTimeout(timer);
          reject(ctx.signal.reason);
        }, { once: true });
      }
    });
  };

  let controller: AbortController | undefined;
  if (scenario.abortAt !== undefined) {
    const aborter = new AbortController();
    controller = aborter;
    clock.setTimeout(() => {
      const reason = new Error('caller gave up');
      log.push({ type: 'abort', reason });
      aborter.abort(reason);
    }, scenario.abortAt);
  }
  if (scenario.timeout !== undefined) {
    // Armed before the call, so at the same instant the log says "timeout" before the policy's own timer fires.
    clock.setTimeout(() => void log.push({ type: 'timeout' }), scenario.timeout);
  }
  let settlements = 0;
  let timersAtSettlement: number | undefined;
  /** Each attempt's signal as it stood when the call settled: its abort reason, or undefined. */
  const reasons = new Map<number, { aborted: boolean; reason: unknown }>();
  const settle = (entry: Entry): void => {
    settlements++;
    log.push(entry);
    for (const [attempt, signal] of signals) reasons.set(attempt, { aborted: signal.aborted, reason: signal.reason });
  };
  stack.execute(fn, controller === undefined ? undefined : { signal: controller.signal }).then(
    (value) => settle({ type: 'settled', fulfilled: true, result: value }),
    (error: unknown) => settle({ type: 'settled', fulfilled: false, result: error }),
  );
  await flush();
  for (;;) {
    if (settlements > 0 && timersAtSettlement === undefined) timersAtSettlement = clock.armed().filter((timer) => timer.owner === 'policy').length;
    if (!(await clock.step())) break;
  }
  if (settlements > 0 && timersAtSettlement === undefined) timersAtSettlement = clock.armed().filter((timer) => timer.owner === 'policy').length;

  // Settled once, leaving no timer of a policy behind.
  expect(settlements).toBe(1);
  expect(timersAtSettlement).toBe(0);
  const settledAt = log.findIndex((entry) => entry.type === 'settled');
  const settled = log[settledAt] as Extract<Entry, { type: 'settled' }>;
  const before = log.slice(0, settledAt);
  const starts = log.filter((entry): entry is Extract<Entry, { type: 'start' }> => entry.type === 'start');
  const startedBefore = before.filter((entry) => entry.type === 'start').length;

  // Never more than maxHedgedAttempts + 1 attempts, numbered 1, 2, …; none after the call settled.
  expect(starts.length).toBeLessThanOrEqual(scenario.maxHedgedAttempts + 1);
  expect(starts.map((entry) => entry.attempt)).toEqual(starts.map((_, i) => i + 1));
  expect(starts.length).toBe(startedBefore);
  expect(hedges).toBe(starts.length - 1);

  // The first acceptable outcome in time order decides, and the call settles in its step.
  const deciding = before.findIndex(
    (entry) => entry.type === 'abort' || entry.type === 'timeout' || (entry.type === 'outcome' && (entry.outcome === 'value' || entry.outcome === 'declined')),
  );
  const decided = before[deciding] as Extract<Entry, { type: 'abort' | 'timeout' | 'outcome' }> | undefined;
  if (decided !== undefined) {
    // Nothing happened between the deciding event and the settlement but synchronous starts of attempts it did not wait for.
    expect(before.slice(deciding + 1).every((entry) => entry.type === 'start' || (entry.type === 'outcome' && scenario.attempts[entry.attempt - 1]?.duration === 0))).toBe(true);
    if (decided.type === 'abort') expect(settled).toMatchObject({ fulfilled: false, result: decided.reason });
    else if (decided.type === 'timeout') expect(settled.fulfilled === false && isTimeoutError(settled.result)).toBe(true);
    else expect(settled).toEqual({ type: 'settled', fulfilled: decided.outcome === 'value', result: decided.result });
  } else {
    // Every attempt failed: the call rejects with the last failure, once none is running.
    const outcomes = before.filter((entry): entry is Extract<Entry, { type: 'outcome' }> => entry.type === 'outcome');
    expect(outcomes).toHaveLength(startedBefore);
    expect(settled).toEqual({ type: 'settled', fulfilled: false, result: outcomes.at(-1)?.result });
    // Hedging stopped early only after a refusal.
    if (!outcomes.some((entry) => entry.outcome === 'refusal')) expect(startedBefore).toBe(scenario.maxHedgedAttempts + 1);
  }

  // The attempts still running when the call settled were aborted through their signal; the others were not.
  const settledAttempts = new Set(before.filter((entry) => entry.type === 'outcome').map((entry) => (entry as { attempt: number }).attempt));
  for (const { attempt } of starts) {
    const signal = reasons.get(attempt) as { aborted: boolean; reason: unknown };
    // An attempt whose function settled is not waited on; the deciding one is never aborted.
    if (decided?.type === 'outcome' && decided.attempt === attempt) expect(signal.aborted).toBe(false);
    if (settledAttempts.has(attempt)) continue;
    expect(signal.aborted).toBe(true);
    if (decided?.type === 'abort') expect(signal.reason).toBe(decided.reason);
    else if (decided?.type === 'timeout') expect(signal.reason).toBe(settled.result);
    else expect(signal.reason).toEqual(new HedgeLostError((decided as { attempt: number }).attempt));
  }
  expect(wins).toEqual(decided?.type === 'outcome' && decided.outcome === 'value' && decided.attempt > 1 ? [decided.attempt] : []);
  wins = [];
}

describe('hedge: property', () => {
  it('starts at most maxHedgedAttempts + 1 attempts, settles once with the first acceptable outcome, aborts the rest and leaves no timer', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, check), propertyParameters(300));
  });
});
