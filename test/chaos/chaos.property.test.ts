// The chaos policies checked against a model on random stacks: fast-check draws 1–4 chaos
// layers (fault, latency, outcome; rate 0, 1 or between; enabled on, off, or for odd calls
// only), maybe a timeout around them, and 1–10 calls (start, a function that resolves or rejects
// after a while, maybe a caller abort). Every draw of every layer's `random` is recorded with
// the call that made it, so the model can replay each call through the layers:
//
//   a call reaches a layer (unless an abort or the timeout ended it first); there, it is
//   injected into iff `enabled` answers true for it and (rate is 1, or rate is above 0 and the
//   one draw it made is below rate); a fault ends it with the fault, an outcome with the
//   outcome, a latency moves it on that much later; past the last layer the function runs.
//
// The property: each call settles once, with the model's outcome, at the model's instant; a
// layer draws a random number exactly for the calls that reach it enabled at a rate strictly
// between 0 and 1; `enabled` is asked exactly for the calls that reach it; the function runs
// exactly for the calls that pass every layer; `injected` events match the model; no timer, no
// abort listener, no delayed call is left, and no rejection goes unhandled.
//
// Times are chosen so that no two events can tie: starts and latencies and durations are
// even, aborts and deadlines odd. A failure prints fast-check's seed and path; replay with
//   BULWARK_PROPERTY_SEED=<seed> BULWARK_PROPERTY_PATH=<path> npx vitest run test/chaos/chaos.property.test.ts
import { AsyncLocalStorage } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { compose, isTimeoutError, withTimeout, type Policy } from '../../src/index.js';
import { chaosFault, chaosLatency, chaosOutcome, seededRandom } from '../../src/chaos/index.js';
import { flush } from '../fixtures/promises.js';
import { propertyParameters, propertyRuns } from '../fixtures/property.js';
import { SteppingClock } from '../fixtures/stepping-clock.js';

type Enabled = 'on' | 'off' | 'odd calls';

interface LayerSpec {
  readonly kind: 'fault' | 'latency' | 'outcome';
  readonly rate: number;
  readonly enabled: Enabled;
  /** For a latency layer: even ms. */
  readonly latency: number;
  readonly seed: number;
}

interface CallSpec {
  readonly start: number;
  readonly fails: boolean;
  /** Even ms. */
  readonly duration: number;
  /** Odd ms after start; negative: the signal is aborted before the call. Undefined: no abort. */
  readonly abortAfter: number | undefined;
}

interface Scenario {
  readonly layers: readonly LayerSpec[];
  /** Odd ms, or none. */
  readonly timeout: number | undefined;
  readonly calls: readonly CallSpec[];
}

const even = (max: number): fc.Arbitrary<number> => fc.integer({ min: 0, max: max / 2 }).map((n) => n * 2);
const odd = (max: number): fc.Arbitrary<number> => fc.integer({ min: 0, max: (max - 1) / 2 }).map((n) => n * 2 + 1);

const layerArb: fc.Arbitrary<LayerSpec> = fc.record({
  kind: fc.constantFrom('fault' as const, 'latency' as const, 'outcome' as const),
  rate: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
  enabled: fc.constantFrom<Enabled>('on', 'off', 'odd calls'),
  latency: even(60),
  seed: fc.integer(),
});

const callArb: fc.Arbitrary<CallSpec> = fc.record({
  start: even(40),
  fails: fc.boolean(),
  duration: even(30),
  abortAfter: fc.option(fc.oneof(fc.constant(-1), odd(99)), { nil: undefined }),
});

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    layers: fc.array(layerArb, { minLength: 1, maxLength: 4 }),
    timeout: fc.option(odd(99), { nil: undefined }),
    calls: fc.array(callArb, { minLength: 1, maxLength: 10 }),
  })
  .map((scenario) => Object.assign(scenario, { [fc.toStringMethod]: () => describeScenario(scenario) }));

function describeScenario({ layers, timeout, calls }: Scenario): string {
  const stack = layers.map(({ kind, rate, enabled, latency }) => `${kind}(rate ${rate}, ${enabled}${kind === 'latency' ? `, ${latency} ms` : ''})`);
  if (timeout !== undefined) stack.unshift(`withTimeout(${timeout})`);
  const described = calls.map(
    (call, i) => `#${i} at ${call.start}: ${call.fails ? 'rejects' : 'resolves'} after ${call.duration}${call.abortAfter === undefined ? '' : `, caller aborts ${call.abortAfter < 0 ? 'before' : `at +${call.abortAfter}`}`}`,
  );
  return `stack: ${stack.join(' › ')}\ncalls: ${described.join(' | ')}`;
}

/** The call whose work runs now (bulwark runs a call's work in its caller's async context). */
const currentCall = new AsyncLocalStorage<number>();

let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

const START = 1_700_000_000_000;
const TIMEOUT = Symbol('a TimeoutError');

interface Expected {
  readonly value: unknown;
  readonly at: number;
  readonly rejected: boolean;
}

async function run(scenario: Scenario): Promise<string[]> {
  const violations: string[] = [];
  const clock = new SteppingClock(START, () => currentCall.getStore());
  const layerState = scenario.layers.map((spec, j) => ({
    spec,
    fault: new Error(`fault of layer ${j}`),
    outcome: `outcome of layer ${j}`,
    draws: new Map<number, number[]>(),
    asked: new Map<number, number>(),
    injected: 0,
  }));
  const policies: Policy<unknown>[] = layerState.map((layer) => {
    const seeded = seededRandom(layer.spec.seed);
    const random = (): number => {
      const call = currentCall.getStore() ?? -1;
      const drawn = seeded();
      layer.draws.set(call, [...(layer.draws.get(call) ?? []), drawn]);
      return drawn;
    };
    const enabled =
      layer.spec.enabled === 'on'
        ? true
        : layer.spec.enabled === 'off'
          ? false
          : () => {
              const call = currentCall.getStore() ?? -1;
              layer.asked.set(call, (layer.asked.get(call) ?? 0) + 1);
              return call % 2 === 1;
            };
    const common = { rate: layer.spec.rate, enabled, random };
    const policy =
      layer.spec.kind === 'fault'
        ? chaosFault({ ...common, fault: layer.fault })
        : layer.spec.kind === 'latency'
          ? chaosLatency({ ...common, latency: layer.spec.latency, clock: clock.forPolicies })
          : chaosOutcome({ ...common, outcome: layer.outcome });
    (policy as { on(event: 'injected', listener: () => void): unknown }).on('injected', () => layer.injected++);
    return policy;
  });
  const stack = compose(...(scenario.timeout === undefined ? [] : [withTimeout(scenario.timeout, { clock: clock.forPolicies })]), ...policies);

  const outcomes = scenario.calls.map(() => ({ settlements: 0, value: undefined as unknown, rejected: false, at: Number.NaN, fnRuns: 0 }));
  const controllers = scenario.calls.map(() => new AbortController());
  const reasons = scenario.calls.map((_, i) => new Error(`caller ${i} aborted`));
  const failures = scenario.calls.map((_, i) => new Error(`call ${i} failed`));

  scenario.calls.forEach((spec, i) => {
    const outcome = outcomes[i]!;
    const controller = controllers[i]!;
    if (spec.abortAfter === -1) controller.abort(reasons[i]);
    else if (spec.abortAfter !== undefined) clock.setTimeout(() => controller.abort(reasons[i]), spec.start + spec.abortAfter);
    clock.setTimeout(() => {
      const promise = currentCall.run(i, () =>
        stack.execute(
          () => {
            outcome.fnRuns++;
            return new Promise((resolve, reject) => clock.setTimeout(() => (spec.fails ? reject(failures[i]) : resolve(`value ${i}`)), spec.duration));
          },
          spec.abortAfter === undefined ? undefined : { signal: controller.signal },
        ),
      );
      const settled = (rejected: boolean) => (value: unknown) => {
        outcome.settlements++;
        if (outcome.settlements > 1) return;
        Object.assign(outcome, { value, rejected, at: clock.elapsed });
      };
      promise.then(settled(false), settled(true));
    }, spec.start);
  });

  unhandled = [];
  await flush();
  for (let steps = 0; await clock.step(); steps++) {
    if (steps > 10_000) {
      violations.push('timers still fire after 10 000 steps');
      break;
    }
  }
  await flush();

  // The model, call by call.
  const expectedInjections = layerState.map(() => 0);
  scenario.calls.forEach((spec, i) => {
    const abortAt = spec.abortAfter === undefined ? Infinity : spec.abortAfter < 0 ? spec.start : spec.start + spec.abortAfter;
    const deadline = scenario.timeout === undefined ? Infinity : spec.start + scenario.timeout;
    const endAt = Math.min(abortAt, deadline);
    const ended = (): Expected => ({ value: abortAt <= deadline ? reasons[i] : TIMEOUT, at: endAt, rejected: true });
    let expected: Expected | undefined = spec.abortAfter === -1 ? ended() : undefined;
    let t = spec.start;
    let reachedBottom = false;
    layerState.forEach((layer, j) => {
      const draws = layer.draws.get(i) ?? [];
      const asked = layer.asked.get(i) ?? 0;
      const reaches = expected === undefined && t < endAt;
      const enabled = layer.spec.enabled === 'on' || (layer.spec.enabled === 'odd calls' && i % 2 === 1);
      const asks = reaches && layer.spec.enabled === 'odd calls' && layer.spec.rate > 0; // at rate 0 the layer is a pass-through
      const draws_ = reaches && enabled && layer.spec.rate > 0 && layer.spec.rate < 1;
      if (asked !== (asks ? 1 : 0)) violations.push(`call ${i}: layer ${j} asked enabled ${asked} times, expected ${asks ? 1 : 0}`);
      if (draws.length !== (draws_ ? 1 : 0)) violations.push(`call ${i}: layer ${j} drew ${draws.length} random numbers, expected ${draws_ ? 1 : 0}`);
      if (!reaches) {
        if (expected === undefined) expected = ended();
        return;
      }
      const injects = enabled && (layer.spec.rate === 1 || (draws_ && (draws[0] as number) < layer.spec.rate));
      if (!injects) return;
      expectedInjections[j]!++;
      if (layer.spec.kind === 'fault') expected = { value: layer.fault, at: t, rejected: true };
      else if (layer.spec.kind === 'outcome') expected = { value: layer.outcome, at: t, rejected: false };
      else t += layer.spec.latency;
    });
    if (expected === undefined) {
      if (t < endAt) {
        reachedBottom = true;
        const settleAt = t + spec.duration;
        expected = settleAt < endAt ? { value: spec.fails ? failures[i] : `value ${i}`, at: settleAt, rejected: spec.fails } : ended();
      } else {
        expected = ended();
      }
    }
    const outcome = outcomes[i]!;
    if (outcome.settlements !== 1) violations.push(`call ${i} settled ${outcome.settlements} times`);
    if (outcome.fnRuns !== (reachedBottom ? 1 : 0)) violations.push(`call ${i} ran its function ${outcome.fnRuns} times, expected ${reachedBottom ? 1 : 0}`);
    const matches = expected.value === TIMEOUT ? isTimeoutError(outcome.value) : outcome.value === expected.value;
    if (!matches || outcome.rejected !== expected.rejected || outcome.at !== expected.at) {
      violations.push(
        `call ${i} ${outcome.rejected ? 'rejected with' : 'resolved with'} ${show(outcome.value)} at ${outcome.at} ms; the model: ${expected.rejected ? 'rejected with' : 'resolved with'} ${show(expected.value)} at ${expected.at} ms`,
      );
    }
    if (getEventListeners(controllers[i]!.signal, 'abort').length > 0) violations.push(`call ${i} left a listener on its caller's signal`);
  });
  layerState.forEach((layer, j) => {
    if (layer.injected !== expectedInjections[j]) violations.push(`layer ${j} emitted ${layer.injected} injected events, the model ${expectedInjections[j]}`);
  });
  policies.forEach((policy, j) => {
    const delayed = (policy as { delayed?: number }).delayed;
    if (delayed !== undefined && delayed !== 0) violations.push(`latency layer ${j} ends with ${delayed} delayed calls`);
  });
  const left = clock.armed();
  if (left.length > 0) violations.push(`${left.length} timer(s) left armed`);
  if (unhandled.length > 0) violations.push(`${unhandled.length} unhandled rejection(s): ${unhandled.map(show).join(', ')}`);
  return violations;
}

function show(value: unknown): string {
  if (value === TIMEOUT) return 'a TimeoutError';
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

const RUNS = 1_500;

describe('chaos policies against their model', () => {
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  it('inject exactly where the model does, settle each call once when and how it says, and leave nothing behind', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const violations = await run(scenario);
        if (violations.length > 0) throw new Error(`${violations.join('\n')}\n${describeScenario(scenario)}`);
      }),
      propertyParameters(RUNS),
    );
  }, 20_000 + 5 * propertyRuns(RUNS));
});
