// The CircuitBreaker against a small reference model. fast-check draws the options and a
// sequence of steps (calls that succeed or fail, fast or slow; bursts of concurrent calls left
// pending; settling one of them; clock advances; isolate, reset, save-and-restore), runs them on
// the real breaker and on the model, and compares after every step: which calls were admitted
// and how the others were refused (state and exact retryAfter), then the state and stats.
//
// The model keeps every outcome in a plain array and recomputes each rate from it; it follows
// the rules of docs/circuit-breaker.md one by one and shares no code with the breaker.
//
// A failure prints fast-check's seed and path. To replay it:
//   BULWARK_PROPERTY_SEED=<seed> BULWARK_PROPERTY_PATH=<path> npx vitest run test/circuit-breaker/model.test.ts
// BULWARK_PROPERTY_RUNS=<n> runs more (or fewer) sequences than the default.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { CircuitBreaker, isCircuitOpenError, type CircuitBreakerOptions, type CircuitState } from '../../src/index.js';
import { deferred, type Deferred } from '../fixtures/promises.js';
import { propertyParameters } from '../fixtures/property.js';

// ---------------------------------------------------------------------------------------------
// Options and steps
// ---------------------------------------------------------------------------------------------

interface Config {
  readonly failureThreshold: number | undefined;
  readonly failureRate: { readonly threshold: number; readonly minimumCalls: number; readonly window: { calls: number } | { duration: number; buckets: number } } | undefined;
  readonly slowCall: { readonly duration: number; readonly rateThreshold: number } | undefined;
  /** A fixed break, or `base × opens` (capped at 200). */
  readonly recovery: { readonly fixed: number } | { readonly base: number };
  readonly halfOpenMaxCalls: number;
  readonly halfOpenSuccessThreshold: number | undefined;
  readonly halfOpenMaxWait: number | undefined;
}

type Step =
  | { readonly kind: 'call'; readonly fails: boolean; readonly duration: number }
  | { readonly kind: 'start'; readonly count: number }
  | { readonly kind: 'settle'; readonly pick: number; readonly fails: boolean }
  | { readonly kind: 'advance'; readonly ms: number }
  /** Moves the clock to the model's next moment of change (the break's end, the half-open deadline, a bucket edge), or `offset` ms from it. */
  | { readonly kind: 'boundary'; readonly offset: number }
  | { readonly kind: 'isolate' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'restore'; readonly fresh: boolean };

const rateArb = fc.constantFrom(0.25, 0.5, 0.6, 0.75, 1);

const configArb: fc.Arbitrary<Config> = fc.record({
  failureThreshold: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
  failureRate: fc.option(
    fc.record({
      threshold: rateArb,
      minimumCalls: fc.integer({ min: 1, max: 4 }),
      window: fc.oneof(
        fc.record({ calls: fc.integer({ min: 4, max: 6 }) }),
        fc.record({ duration: fc.constantFrom(100, 150, 300), buckets: fc.integer({ min: 1, max: 6 }) }),
      ),
    }),
    { nil: undefined },
  ),
  slowCall: fc.option(fc.record({ duration: fc.integer({ min: 0, max: 40 }), rateThreshold: rateArb }), { nil: undefined }),
  recovery: fc.oneof(fc.record({ fixed: fc.constantFrom(0, 10, 50, 100) }), fc.record({ base: fc.integer({ min: 5, max: 60 }) })),
  halfOpenMaxCalls: fc.integer({ min: 1, max: 3 }),
  halfOpenSuccessThreshold: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
  halfOpenMaxWait: fc.option(fc.integer({ min: 1, max: 150 }), { nil: undefined }),
});

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('call' as const), fails: fc.boolean(), duration: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 60 })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('start' as const), count: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('settle' as const), pick: fc.nat(), fails: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 120 })) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('boundary' as const), offset: fc.constantFrom(-1, 0, 0, 1) }) },
  { weight: 1, arbitrary: fc.constantFrom<Step>({ kind: 'isolate' }, { kind: 'reset' }, { kind: 'restore', fresh: false }, { kind: 'restore', fresh: true }) },
);

const recoveryOf = (config: Config) => (opens: number): number => ('fixed' in config.recovery ? config.recovery.fixed : Math.min(200, config.recovery.base * opens));

function optionsOf(config: Config, now: () => number): CircuitBreakerOptions {
  return {
    failureThreshold: config.failureThreshold,
    failureRate: config.failureRate,
    slowCall: config.slowCall,
    recoveryTimeout: 'fixed' in config.recovery ? config.recovery.fixed : recoveryOf(config),
    halfOpenMaxCalls: config.halfOpenMaxCalls,
    halfOpenSuccessThreshold: config.halfOpenSuccessThreshold,
    halfOpenMaxWait: config.halfOpenMaxWait,
    clock: { now, setTimeout: () => { throw new Error('the breaker arms no timer'); }, clearTimeout: () => { throw new Error('the breaker arms no timer'); } },
  };
}

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

interface Recorded {
  readonly at: number;
  readonly failed: boolean;
  readonly slow: boolean;
}

/** How a call was answered at admission: run (as a trial or not), or refused. */
type Admission = { readonly admitted: true; readonly trial: boolean; readonly generation: number; readonly startedAt: number } | { readonly admitted: false; readonly state: string; readonly retryAfter: number };

class Model {
  state: CircuitState = 'closed';
  /** Bumped at every state change and restore: outcomes of calls admitted before are ignored. */
  generation = 0;
  consecutiveFailures = 0;
  opens = 0;
  openedAt: number | undefined = undefined;
  retryAt = 0;
  breakDuration = 0;
  trialsInFlight = 0;
  trialSuccesses = 0;
  firstTrialAt: number | undefined = undefined;
  /** Every outcome recorded while closed since the circuit last closed, oldest first. */
  outcomes: Recorded[] = [];
  private readonly config: Config;

  constructor(config: Config) {
    this.config = config;
  }

  private get failureThreshold(): number {
    return this.config.failureThreshold ?? (this.config.failureRate === undefined ? 5 : Infinity);
  }

  private get hasWindow(): boolean {
    return this.config.failureRate !== undefined || this.config.slowCall !== undefined;
  }

  private get windowShape(): { calls: number } | { duration: number; buckets: number } {
    return this.config.failureRate?.window ?? { calls: 100 };
  }

  private get minimumCalls(): number {
    const given = this.config.failureRate?.minimumCalls;
    if (given !== undefined) return given;
    const shape = this.windowShape;
    return 'calls' in shape ? Math.min(100, shape.calls) : 100;
  }

  /** The outcomes the window holds at `now`. */
  inWindow(now: number): Recorded[] {
    if (!this.hasWindow) return [];
    const shape = this.windowShape;
    if ('calls' in shape) return this.outcomes.slice(-shape.calls);
    const width = shape.duration / shape.buckets;
    const newestBucket = Math.floor(now / width);
    return this.outcomes.filter((outcome) => Math.floor(outcome.at / width) > newestBucket - shape.buckets);
  }

  /** The next moment after `now` when time alone changes something, if any. */
  nextBoundary(now: number): number | undefined {
    if (this.state === 'open') return this.retryAt;
    if (this.state === 'half-open' && this.firstTrialAt !== undefined) {
      const wait = this.config.halfOpenMaxWait ?? Math.max(this.breakDuration, 30_000);
      if (wait !== Infinity) return this.firstTrialAt + wait;
    }
    const shape = this.windowShape;
    if (this.hasWindow && 'duration' in shape && this.outcomes.length > 0) {
      const width = shape.duration / shape.buckets;
      return Math.ceil((Math.floor(now / width) + 1) * width);
    }
    return undefined;
  }

  /** Applies what time alone changes, each change at its own moment. */
  refresh(now: number): void {
    for (;;) {
      if (this.state === 'open' && now >= this.retryAt) {
        this.state = 'half-open';
        this.generation++;
        this.trialsInFlight = 0;
        this.trialSuccesses = 0;
        this.firstTrialAt = undefined;
        continue;
      }
      if (this.state === 'half-open' && this.firstTrialAt !== undefined) {
        const wait = this.config.halfOpenMaxWait ?? Math.max(this.breakDuration, 30_000);
        if (now >= this.firstTrialAt + wait) {
          this.open(this.firstTrialAt + wait);
          continue;
        }
      }
      return;
    }
  }

  private open(at: number): void {
    this.state = 'open';
    this.generation++;
    this.trialsInFlight = 0;
    this.opens++;
    this.breakDuration = recoveryOf(this.config)(this.opens);
    this.openedAt = at;
    this.retryAt = at + this.breakDuration;
  }

  private close(): void {
    this.state = 'closed';
    this.generation++;
    this.trialsInFlight = 0;
    this.consecutiveFailures = 0;
    this.opens = 0;
    this.openedAt = undefined;
    this.outcomes = [];
  }

  admit(now: number): Admission {
    this.refresh(now);
    switch (this.state) {
      case 'closed':
        return { admitted: true, trial: false, generation: this.generation, startedAt: now };
      case 'open':
        return { admitted: false, state: 'open', retryAfter: this.retryAt - now };
      case 'isolated':
        return { admitted: false, state: 'isolated', retryAfter: Infinity };
      case 'half-open':
        if (this.trialsInFlight >= this.config.halfOpenMaxCalls) return { admitted: false, state: 'half-open', retryAfter: 0 };
        this.trialsInFlight++;
        this.firstTrialAt ??= now;
        return { admitted: true, trial: true, generation: this.generation, startedAt: now };
    }
  }

  settle(call: Admission & { admitted: true }, failed: boolean, now: number): void {
    if (call.generation !== this.generation) return;
    if (call.trial) {
      this.refresh(now);
      if (call.generation !== this.generation) return;
    }
    const slow = this.config.slowCall !== undefined && now - call.startedAt > this.config.slowCall.duration;
    this.consecutiveFailures = failed ? this.consecutiveFailures + 1 : 0;
    if (call.trial) {
      this.trialsInFlight--;
      if (failed || slow) this.open(now);
      else if (++this.trialSuccesses >= (this.config.halfOpenSuccessThreshold ?? this.config.halfOpenMaxCalls)) this.close();
      return;
    }
    if (this.hasWindow) this.outcomes.push({ at: now, failed, slow });
    if (failed && this.consecutiveFailures >= this.failureThreshold) {
      this.open(now);
      return;
    }
    const window = this.inWindow(now);
    if (window.length === 0 || window.length < this.minimumCalls) return;
    const failures = window.filter((outcome) => outcome.failed).length;
    const slowCalls = window.filter((outcome) => outcome.slow).length;
    if (this.config.failureRate !== undefined && failures / window.length >= this.config.failureRate.threshold) this.open(now);
    else if (this.config.slowCall !== undefined && slowCalls / window.length >= this.config.slowCall.rateThreshold) this.open(now);
  }

  isolate(now: number): void {
    if (this.state === 'isolated') return;
    this.state = 'isolated';
    this.generation++;
    this.trialsInFlight = 0;
    this.openedAt = now;
  }

  reset(): void {
    if (this.state === 'closed') {
      // Already closed: forgets its history, but calls in flight still count.
      this.consecutiveFailures = 0;
      this.opens = 0;
      this.outcomes = [];
      return;
    }
    this.close();
  }

  /** Saving and restoring keeps everything but the calls in flight, and restarts the half-open wait. */
  restore(now: number): void {
    this.refresh(now);
    this.generation++;
    this.trialsInFlight = 0;
    this.firstTrialAt = undefined;
    // Outcomes that left the window are gone from a snapshot, and nothing reads them again.
    this.outcomes = this.inWindow(now);
  }

  stats(now: number) {
    this.refresh(now);
    const window = this.inWindow(now);
    return {
      state: this.state,
      calls: window.length,
      failures: window.filter((outcome) => outcome.failed).length,
      slowCalls: window.filter((outcome) => outcome.slow).length,
      consecutiveFailures: this.consecutiveFailures,
      consecutiveOpens: this.opens,
      openedAt: this.state === 'closed' ? undefined : this.openedAt,
      retryAfter: this.state === 'open' ? this.retryAt - now : this.state === 'isolated' ? Infinity : 0,
      trialsInFlight: this.state === 'half-open' ? this.trialsInFlight : 0,
      trialSuccesses: this.state === 'half-open' ? this.trialSuccesses : 0,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Running a sequence on both
// ---------------------------------------------------------------------------------------------

interface Pending {
  readonly gate: Deferred<string>;
  readonly done: Promise<unknown>;
  readonly model: Admission & { admitted: true };
}

function describeAnswer(outcome: unknown): string {
  if (isCircuitOpenError(outcome)) return `refused(${outcome.state}, retryAfter ${outcome.retryAfter})`;
  return 'admitted';
}

function describeAdmission(admission: Admission): string {
  return admission.admitted ? 'admitted' : `refused(${admission.state}, retryAfter ${admission.retryAfter})`;
}

/** Runs the steps on a breaker and on the model; returns what differed first, or undefined. */
async function compare(config: Config, steps: readonly Step[]): Promise<string | undefined> {
  let now = 1_700_000_000_000;
  const clockNow = (): number => now;
  const options = optionsOf(config, clockNow);
  let breaker = new CircuitBreaker(options);
  const model = new Model(config);
  const pending: Pending[] = [];
  const failure = new Error('dependency down');

  /** Starts one call on both; the breaker's call waits on `gate` (or runs `body` at once). */
  const start = (body: (() => Promise<string>) | undefined): { model: Admission; gate: Deferred<string>; done: Promise<unknown>; ran: () => boolean } => {
    const admission = model.admit(now);
    const gate = deferred<string>();
    let ran = false;
    const done = breaker
      .execute(() => {
        ran = true;
        return body === undefined ? gate.promise : body();
      })
      .catch((error: unknown) => error);
    return { model: admission, gate, done, ran: () => ran };
  };

  for (const [index, step] of steps.entries()) {
    const where = `step ${index} (${JSON.stringify(step)})`;
    switch (step.kind) {
      case 'call': {
        const modelTimeBefore = now;
        const call = start(async () => {
          now += step.duration; // the call takes `duration` on the clock
          if (step.fails) throw failure;
          return 'ok';
        });
        if (call.ran() !== call.model.admitted) return `${where}: breaker ${call.ran() ? 'ran' : 'refused'} the call, model ${describeAdmission(call.model)}`;
        const answer = await call.done;
        if (!call.model.admitted) {
          if (describeAnswer(answer) !== describeAdmission(call.model)) return `${where}: breaker ${describeAnswer(answer)}, model ${describeAdmission(call.model)}`;
        } else {
          model.settle(call.model, step.fails, modelTimeBefore + step.duration);
        }
        break;
      }
      case 'start':
        for (let i = 0; i < step.count; i++) {
          const call = start(undefined);
          if (call.ran() !== call.model.admitted) return `${where}: call ${i}: breaker ${call.ran() ? 'ran' : 'refused'} it, model ${describeAdmission(call.model)}`;
          if (call.model.admitted) {
            pending.push({ gate: call.gate, done: call.done, model: call.model });
          } else {
            const answer = await call.done;
            if (describeAnswer(answer) !== describeAdmission(call.model)) return `${where}: call ${i}: breaker ${describeAnswer(answer)}, model ${describeAdmission(call.model)}`;
          }
        }
        break;
      case 'settle': {
        if (pending.length === 0) break;
        const [call] = pending.splice(step.pick % pending.length, 1);
        if (call === undefined) break;
        if (step.fails) call.gate.reject(failure);
        else call.gate.resolve('ok');
        await call.done;
        model.settle(call.model, step.fails, now);
        break;
      }
      case 'advance':
        now += step.ms;
        break;
      case 'boundary': {
        const next = model.nextBoundary(now);
        if (next !== undefined) now = Math.max(now, next + step.offset);
        break;
      }
      case 'isolate':
        breaker.isolate();
        model.isolate(now);
        break;
      case 'reset':
        breaker.reset();
        model.reset();
        break;
      case 'restore': {
        const snapshot = JSON.parse(JSON.stringify(breaker));
        if (step.fresh) breaker = new CircuitBreaker({ ...options, initialState: snapshot });
        else breaker.restore(snapshot);
        model.restore(now);
        break;
      }
    }
    const actual = breaker.stats();
    const expected = model.stats(now);
    const fields = Object.keys(expected) as (keyof typeof expected)[];
    const differing = fields.filter((field) => !Object.is(actual[field], expected[field]));
    if (differing.length > 0) {
      return `${where}: ${differing.map((field) => `${field} is ${String(actual[field])}, model says ${String(expected[field])}`).join('; ')}`;
    }
    if (breaker.state !== model.state) return `${where}: state ${breaker.state}, model ${model.state}`;
  }
  // Settle whatever is left, so no promise outlives the run.
  for (const call of pending) call.gate.resolve('ok');
  await Promise.all(pending.map((call) => call.done));
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------

describe('CircuitBreaker against its reference model', () => {
  it('agrees on every admission, refusal, state and count, step by step', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.array(stepArb, { minLength: 1, maxLength: 60 }), async (config, steps) => {
        const difference = await compare(config, steps);
        if (difference !== undefined) throw new Error(`${difference}\noptions: ${JSON.stringify(config)}`);
      }),
      propertyParameters(1_000),
    );
  }, 60_000);
});
