/**
 * The breaker's state machine alone: no engine, no promise, no call; only clock readings and
 * the outcomes it is told of. What a breaker in a stack does is tested in
 * circuit-breaker.test.ts; here each rule is one step of the machine.
 */
import { describe, expect, it } from 'vitest';
import { BreakerSettings } from '../../src/circuit-breaker/options.js';
import { BreakerMachine, type Admitted } from '../../src/circuit-breaker/state.js';
import type { CircuitBreakerOptions, CircuitStateChangeReason } from '../../src/circuit-breaker/types.js';
import { CircuitOpenError, isRefusal } from '../../src/errors.js';

/** A machine on a clock moved by hand, with the state changes it announced. */
function machine(options: CircuitBreakerOptions = {}) {
  let time = 1_000_000;
  const clock = { now: () => time, setTimeout: () => 0, clearTimeout: () => {} };
  const state = new BreakerMachine(new BreakerSettings({ ...options, clock }));
  const changes: string[] = [];
  state.onTransition = (from, to, reason: CircuitStateChangeReason) => changes.push(`${from}->${to}:${reason}`);
  const admit = (): Admitted | CircuitOpenError => {
    const trial = state.current === 'closed' ? false : state.admission();
    if (typeof trial !== 'boolean') return trial;
    return { generation: state.generation, trial, startedAt: time, abandoned: false };
  };
  const succeed = (call: Admitted): void => state.recordSuccess(call.generation, call.trial, call.startedAt);
  const fail = (call: Admitted, error: unknown = new Error('down'), callerAborted = false): unknown => state.recordError(call, error, callerAborted);
  const admitted = (): Admitted => {
    const call = admit();
    if (call instanceof CircuitOpenError) throw new Error(`refused: ${call.message}`);
    return call;
  };
  return {
    state,
    changes,
    admit,
    admitted,
    succeed,
    fail,
    advance: (ms: number) => {
      time += ms;
    },
  };
}

describe('BreakerMachine, with clock readings alone', () => {
  it('opens on the failureThreshold-th failure in a row, and a success in between resets the count', () => {
    const m = machine({ failureThreshold: 3, recoveryTimeout: 100 });
    m.fail(m.admitted());
    m.fail(m.admitted());
    m.succeed(m.admitted());
    m.fail(m.admitted());
    m.fail(m.admitted());
    expect(m.state.current).toBe('closed');
    m.fail(m.admitted());
    expect(m.changes).toEqual(['closed->open:failure-threshold']);
  });

  it('refuses with the exact time left while open, and lets one trial through once the break ends', () => {
    const m = machine({ failureThreshold: 1, recoveryTimeout: 100 });
    m.fail(m.admitted());
    m.advance(40);
    const refused = m.admit();
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(isRefusal(refused)).toBe(true);
    expect((refused as CircuitOpenError).retryAfter).toBe(60);
    m.advance(60);
    const trial = m.admitted();
    expect(trial.trial).toBe(true);
    expect((m.admit() as CircuitOpenError).state).toBe('half-open');
    m.succeed(trial);
    expect(m.changes).toEqual(['closed->open:failure-threshold', 'open->half-open:recovery-timeout', 'half-open->closed:trial-success']);
  });

  it('ignores the outcome of a call admitted before a state change', () => {
    const m = machine({ failureThreshold: 1 });
    const straggler = m.admitted();
    m.fail(m.admitted());
    m.succeed(straggler);
    expect(m.state.current).toBe('open');
    expect(m.state.stats().consecutiveFailures).toBe(1);
  });

  it('counts neither a refusal from inside nor a caller abort, and marks the call abandoned so a trial frees its place once its work ends', () => {
    const m = machine({ failureThreshold: 1, recoveryTimeout: 10 });
    m.fail(m.admitted());
    m.advance(10);
    const trial = m.admitted();
    m.fail(trial, new Error('gave up'), true);
    expect(trial.abandoned).toBe(true);
    expect(m.state.stats()).toMatchObject({ state: 'half-open', trialsInFlight: 1 });
    m.state.trialWorkEnded(trial.generation);
    expect(m.state.stats().trialsInFlight).toBe(0);
    const next = m.admitted();
    m.fail(next, Object.assign(new Error('queue full'), {}), false);
    expect(m.state.current).toBe('open'); // a plain error from the dependency counts
    const refusedInside = new CircuitOpenError(5);
    m.advance(10);
    const third = m.admitted();
    m.fail(third, refusedInside);
    expect(third.abandoned).toBe(true);
    expect(m.state.current).toBe('half-open');
  });

  it('opens on the failure rate of a count window once it holds minimumCalls outcomes', () => {
    const m = machine({ failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 4 } } });
    m.fail(m.admitted());
    m.succeed(m.admitted());
    m.fail(m.admitted());
    expect(m.state.current).toBe('closed');
    m.succeed(m.admitted());
    expect(m.changes).toEqual(['closed->open:failure-rate']);
    expect(m.state.stats()).toMatchObject({ calls: 4, failures: 2, failureRate: 0.5 });
  });

  it('re-opens a half-open circuit whose trial never answers, exactly halfOpenMaxWait after the first trial', () => {
    const m = machine({ failureThreshold: 1, recoveryTimeout: 100, halfOpenMaxWait: 1_000 });
    m.fail(m.admitted());
    m.advance(100);
    m.admitted();
    m.advance(999);
    m.state.catchUp(1_000_000 + 100 + 999);
    expect(m.state.current).toBe('half-open');
    m.advance(1);
    expect(m.state.stats().state).toBe('open');
    expect(m.changes.at(-1)).toBe('half-open->open:half-open-timeout');
  });

  it('gives trials at least 30 s by default after a short break', () => {
    const m = machine({ failureThreshold: 1, recoveryTimeout: 5 });
    m.fail(m.admitted());
    m.advance(5);
    const trial = m.admitted();
    m.advance(29_999);
    m.succeed(trial);
    expect(m.state.current).toBe('closed');
  });

  it('saves and restores its state as plain JSON, a break that ended while saved coming back ready for a trial', () => {
    const m = machine({ failureThreshold: 1, recoveryTimeout: 100 });
    m.fail(m.admitted());
    const saved = m.state.toJSON();
    expect(saved).toMatchObject({ version: 1, state: 'open', consecutiveOpens: 1, breakDuration: 100, retryAt: saved.savedAt + 100 });
    const other = machine({ failureThreshold: 1, recoveryTimeout: 100 });
    other.advance(150);
    other.state.load({ state: 'open', consecutiveFailures: 1, consecutiveOpens: 1, openedAt: saved.openedAt ?? undefined, retryAt: saved.retryAt ?? 0, breakDuration: 100, trialSuccesses: 0, window: undefined });
    expect(other.state.stats().state).toBe('half-open');
  });
});
