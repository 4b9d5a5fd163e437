import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  BulkheadRejectedError,
  CircuitBreaker,
  CircuitOpenError,
  compose,
  isCircuitOpenError,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  type CircuitState,
} from '../../src/index.js';
import { manualClock } from '../fixtures/clock.js';
import { deferred, flush, hang, rejectionOf, type Deferred } from '../fixtures/promises.js';

async function openError(promise: Promise<unknown>): Promise<CircuitOpenError> {
  const error = await rejectionOf(promise);
  expect(error).toBeInstanceOf(CircuitOpenError);
  expect(isCircuitOpenError(error)).toBe(true);
  return error as CircuitOpenError;
}

/** Makes one call that fails with a fresh error and checks that error reaches the caller. */
async function fail(breaker: CircuitBreaker): Promise<void> {
  const boom = new Error('dependency down');
  await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
}

async function succeed(breaker: CircuitBreaker): Promise<void> {
  await expect(breaker.execute(() => 'ok')).resolves.toBe('ok');
}

function recordStates(breaker: CircuitBreaker): string[] {
  const seen: string[] = [];
  breaker.on('stateChange', ({ from, to }) => seen.push(`${from}->${to}`));
  return seen;
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

describe('CircuitBreaker: opening', () => {
  it.each([
    // sequence of outcomes (F failure, S success), threshold, state after, fn calls made
    ['FFFFF', 5, 'open', 5],
    ['FFFF', 5, 'closed', 4],
    ['F', 1, 'open', 1],
    ['FFSFF', 3, 'closed', 5],
    ['FFSFFF', 3, 'open', 6],
    ['SSSSFF', 2, 'open', 6],
    ['FSFSFSFS', 2, 'closed', 8],
    ['FSF', 2, 'closed', 3],
    // once open, the rest of the sequence is refused without calling fn
    ['FFFSS', 2, 'open', 2],
  ] as const)('%s with failureThreshold %i ends %s after %i calls of fn', async (sequence, failureThreshold, expected, calls) => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold, recoveryTimeout: 1_000, clock });
    const fn = vi.fn((fails: boolean) => (fails ? Promise.reject(new Error('down')) : Promise.resolve('up')));
    for (const outcome of sequence) {
      await breaker.execute(() => fn(outcome === 'F')).catch(() => undefined);
    }
    expect(breaker.state).toBe(expected satisfies CircuitState);
    expect(fn).toHaveBeenCalledTimes(calls);
  });

  it('reports the consecutive failure count in failure events and resets it on success', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 3, clock });
    const counts: number[] = [];
    breaker.on('failure', ({ consecutiveFailures }) => counts.push(consecutiveFailures));
    await fail(breaker);
    await fail(breaker);
    await succeed(breaker);
    await fail(breaker);
    await fail(breaker);
    await fail(breaker);
    expect(counts).toEqual([1, 2, 1, 2, 3]);
    expect(breaker.state).toBe('open');
  });

  it('defaults to 5 consecutive failures', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ clock });
    for (let i = 0; i < 4; i++) await fail(breaker);
    expect(breaker.state).toBe('closed');
    await fail(breaker);
    expect(breaker.state).toBe('open');
  });
});

describe('CircuitBreaker: open', () => {
  it.each([
    [0, 1_000],
    [1, 999],
    [250, 750],
    [999, 1],
  ])('rejects without calling fn; %i ms after opening retryAfter is %i', async (elapsed, retryAfter) => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    await fail(breaker);
    advance(elapsed);
    const fn = vi.fn(() => 'ran');
    const error = await openError(breaker.execute(fn));
    expect(fn).not.toHaveBeenCalled();
    expect(error.retryAfter).toBe(retryAfter);
    expect(error.state).toBe('open');
    expect(error.name).toBe('CircuitOpenError');
    expect(breaker.state).toBe('open');
  });

  it('retryAfter shrinks exactly as the clock advances', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 30_000, clock });
    await fail(breaker);
    const seen: number[] = [];
    for (const step of [0, 1, 4_999, 20_000, 4_999]) {
      advance(step);
      seen.push((await openError(breaker.execute(() => 'ran'))).retryAfter);
    }
    expect(seen).toEqual([30_000, 29_999, 25_000, 5_000, 1]);
    advance(1);
    await expect(breaker.execute(() => 'ran')).resolves.toBe('ran');
  });

  it('emits rejected with the very error the caller gets', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock });
    await fail(breaker);
    const rejected = vi.fn();
    breaker.on('rejected', rejected);
    const error = await openError(breaker.execute(() => 'ran'));
    expect(rejected).toHaveBeenCalledTimes(1);
    expect(rejected.mock.calls[0]?.[0]).toEqual({ error });
    expect((rejected.mock.calls[0]?.[0] as { error: unknown }).error).toBe(error);
  });

  it('does not count a rejection as a failure nor as a success', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock });
    await fail(breaker);
    const failure = vi.fn();
    const success = vi.fn();
    breaker.on('failure', failure);
    breaker.on('success', success);
    await openError(breaker.execute(() => 'ran'));
    expect(failure).not.toHaveBeenCalled();
    expect(success).not.toHaveBeenCalled();
  });
});

describe('CircuitBreaker: half-open', () => {
  it('reads half-open after recoveryTimeout without any call, arming no timer, and emits the change on that read', async () => {
    const { clock, advance, setTimeout } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    const seen = recordStates(breaker);
    await fail(breaker);
    advance(999);
    expect(breaker.state).toBe('open');
    expect(seen).toEqual(['closed->open']);
    advance(1);
    expect(seen).toEqual(['closed->open']); // nothing fires by itself: no timer
    expect(breaker.state).toBe('half-open');
    expect(seen).toEqual(['closed->open', 'open->half-open']);
    expect(breaker.state).toBe('half-open');
    expect(seen).toHaveLength(2); // reading again emits nothing
    expect(setTimeout).not.toHaveBeenCalled();
  });

  it.each([1, 3])('lets exactly halfOpenMaxCalls = %i trials through when 100 callers race, rejecting the rest at once', async (halfOpenMaxCalls) => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxCalls, clock });
    await fail(breaker);
    advance(1_000); // nobody read the state: the first caller turns it half-open
    const gate = deferred<string>();
    const fn = vi.fn(() => gate.promise);
    const outcomes: (string | unknown)[] = new Array(100).fill('pending');
    const calls = Array.from({ length: 100 }, (_, i) =>
      breaker.execute(fn).then(
        (value) => {
          outcomes[i] = value;
        },
        (error: unknown) => {
          outcomes[i] = error;
        },
      ),
    );
    await flush();
    expect(fn).toHaveBeenCalledTimes(halfOpenMaxCalls);
    const refused = outcomes.filter((outcome) => outcome !== 'pending');
    expect(refused).toHaveLength(100 - halfOpenMaxCalls);
    for (const error of refused) {
      expect(error).toBeInstanceOf(CircuitOpenError);
      expect((error as CircuitOpenError).state).toBe('half-open');
      expect((error as CircuitOpenError).retryAfter).toBe(0);
    }
    expect(outcomes.slice(0, halfOpenMaxCalls)).toEqual(new Array(halfOpenMaxCalls).fill('pending'));
    expect(breaker.state).toBe('half-open');
    gate.resolve('recovered');
    await Promise.all(calls);
    expect(outcomes.slice(0, halfOpenMaxCalls)).toEqual(new Array(halfOpenMaxCalls).fill('recovered'));
    expect(breaker.state).toBe('closed');
    expect(fn).toHaveBeenCalledTimes(halfOpenMaxCalls);
  });

  it('a trial success closes the circuit and later calls run', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 500, clock });
    await fail(breaker);
    await fail(breaker);
    advance(500);
    await succeed(breaker);
    expect(breaker.state).toBe('closed');
    // the failure count starts again from zero
    await fail(breaker);
    expect(breaker.state).toBe('closed');
  });

  it('a trial failure re-opens and restarts recoveryTimeout from the failure time', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    await fail(breaker);
    advance(1_000);
    const trial = deferred<string>();
    const boom = new Error('still down');
    const call = breaker.execute(() => trial.promise);
    expect(breaker.state).toBe('half-open');
    advance(300); // the trial takes 300 ms to fail
    trial.reject(boom);
    await expect(call).rejects.toBe(boom);
    expect(breaker.state).toBe('open');
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(1_000);
    advance(999);
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(1);
    expect(breaker.state).toBe('open');
    advance(1);
    expect(breaker.state).toBe('half-open');
  });

  it('two trials failing together re-open once and the circuit still turns half-open after recoveryTimeout', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxCalls: 2, halfOpenSuccessThreshold: 1, clock });
    await fail(breaker);
    advance(1_000);
    const seen = recordStates(breaker);
    const gate = deferred<string>();
    const first = breaker.execute(() => gate.promise);
    const second = breaker.execute(() => gate.promise);
    const boom = new Error('down');
    gate.reject(boom);
    await expect(first).rejects.toBe(boom);
    await expect(second).rejects.toBe(boom);
    expect(seen).toEqual(['open->half-open', 'half-open->open']);
    advance(999);
    expect(breaker.state).toBe('open');
    advance(1);
    expect(breaker.state).toBe('half-open');
    await succeed(breaker);
    expect(breaker.state).toBe('closed');
  });

  it('two closed-state calls failing together open once and the circuit turns half-open after recoveryTimeout', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    const seen = recordStates(breaker);
    const gate = deferred<string>();
    const calls = [breaker.execute(() => gate.promise), breaker.execute(() => gate.promise)];
    gate.reject(new Error('down'));
    await Promise.allSettled(calls);
    expect(seen).toEqual(['closed->open']);
    advance(1_000);
    expect(breaker.state).toBe('half-open');
  });
});

describe('CircuitBreaker: outcomes of calls admitted before a state change', () => {
  it('a slow closed-state call that succeeds while half-open does not close the circuit nor take the trial slot', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    const slow = deferred<string>();
    const slowCall = breaker.execute(() => slow.promise);
    await fail(breaker);
    advance(1_000);
    expect(breaker.state).toBe('half-open');
    slow.resolve('late');
    await expect(slowCall).resolves.toBe('late');
    expect(breaker.state).toBe('half-open');
    const trial = vi.fn(() => 'trial');
    await expect(breaker.execute(trial)).resolves.toBe('trial');
    expect(trial).toHaveBeenCalledTimes(1);
    expect(breaker.state).toBe('closed');
  });

  it('a slow closed-state call that fails while half-open does not re-open the circuit', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    const slow = deferred<string>();
    const slowCall = breaker.execute(() => slow.promise);
    await fail(breaker);
    advance(1_000);
    expect(breaker.state).toBe('half-open');
    const boom = new Error('late failure');
    slow.reject(boom);
    await expect(slowCall).rejects.toBe(boom);
    expect(breaker.state).toBe('half-open');
  });

  it('a slow call that fails while open does not restart the recovery timer', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    const failure = vi.fn();
    const slow = deferred<string>();
    const slowCall = breaker.execute(() => slow.promise);
    await fail(breaker);
    breaker.on('failure', failure);
    advance(600);
    const boom = new Error('late failure');
    slow.reject(boom);
    await expect(slowCall).rejects.toBe(boom);
    expect(failure).not.toHaveBeenCalled();
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(400);
    advance(400);
    expect(breaker.state).toBe('half-open');
  });

  it('with several trials, the first outcome decides: later trial outcomes are ignored', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxCalls: 3, halfOpenSuccessThreshold: 1, clock });
    await fail(breaker);
    advance(1_000);
    const gates = [deferred<string>(), deferred<string>(), deferred<string>()];
    const trials = gates.map((gate) => breaker.execute(() => gate.promise).catch((error: unknown) => error));
    gates[0]?.reject(new Error('first trial failed'));
    await trials[0];
    expect(breaker.state).toBe('open');
    gates[1]?.resolve('late success');
    await expect(trials[1]).resolves.toBe('late success');
    expect(breaker.state).toBe('open'); // a late success does not close the re-opened circuit
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(1_000);
    advance(1_000);
    await succeed(breaker);
    gates[2]?.reject(new Error('late failure'));
    await trials[2];
    expect(breaker.state).toBe('closed'); // nor does a late failure open the closed one
  });

  it('a trial that fails after reset() is not counted against the closed circuit', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 1_000, clock });
    await fail(breaker);
    await fail(breaker);
    advance(1_000);
    const trial = deferred<string>();
    const trialCall = breaker.execute(() => trial.promise);
    breaker.reset();
    trial.reject(new Error('late'));
    await trialCall.catch(() => undefined);
    expect(breaker.state).toBe('closed');
    await fail(breaker); // one counted failure of two
    expect(breaker.state).toBe('closed');
    await fail(breaker);
    expect(breaker.state).toBe('open');
  });
});

describe('CircuitBreaker: isFailure', () => {
  it('the failure event of an error isFailure accepts carries that error', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 5, clock, isFailure: () => true });
    const failures: unknown[] = [];
    breaker.on('failure', (event) => failures.push(event));
    const boom = new Error('down');
    await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(failures).toEqual([{ error: boom, state: 'closed', consecutiveFailures: 1 }]);
  });

  it('an isFailureResult that throws rejects the call with its error, and the failure event carries that error', async () => {
    const { clock } = manualClock();
    const broken = new TypeError('no status');
    const breaker = new CircuitBreaker({
      failureThreshold: 5,
      clock,
      isFailureResult: () => {
        throw broken;
      },
    });
    const failures: unknown[] = [];
    breaker.on('failure', (event) => failures.push(event));
    await expect(breaker.execute(() => 'value')).rejects.toBe(broken);
    expect(failures).toEqual([{ error: broken, state: 'closed', consecutiveFailures: 1 }]);
  });

  class NotFound extends Error {}

  it('an error it declines passes through unchanged and counts as a success', async () => {
    const { clock } = manualClock();
    const isFailure = vi.fn((error: unknown) => !(error instanceof NotFound));
    const breaker = new CircuitBreaker({ failureThreshold: 2, clock, isFailure });
    const success = vi.fn();
    breaker.on('success', success);
    await fail(breaker);
    const notFound = new NotFound('no such user');
    await expect(breaker.execute(() => Promise.reject(notFound))).rejects.toBe(notFound);
    expect(isFailure).toHaveBeenLastCalledWith(notFound);
    expect(success).toHaveBeenCalledWith({ state: 'closed' });
    await fail(breaker); // the count was reset by the declined error
    expect(breaker.state).toBe('closed');
    await fail(breaker);
    expect(breaker.state).toBe('open');
  });

  it('declined errors never open the circuit', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock, isFailure: () => false });
    for (let i = 0; i < 10; i++) await expect(breaker.execute(() => Promise.reject(new Error('4xx')))).rejects.toThrow('4xx');
    expect(breaker.state).toBe('closed');
  });

  it('a declined error from a trial closes the circuit', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 100, clock, isFailure: (error) => !(error instanceof NotFound) });
    await fail(breaker);
    advance(100);
    const notFound = new NotFound();
    await expect(breaker.execute(() => Promise.reject(notFound))).rejects.toBe(notFound);
    expect(breaker.state).toBe('closed');
  });

  it('an isFailure that throws rejects the call with its error and counts a failure', async () => {
    const { clock } = manualClock();
    const broken = new Error('isFailure is broken');
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      clock,
      isFailure: () => {
        throw broken;
      },
    });
    const failure = vi.fn();
    breaker.on('failure', failure);
    await expect(breaker.execute(() => Promise.reject(new Error('original')))).rejects.toBe(broken);
    expect(failure).toHaveBeenCalledWith({ error: broken, state: 'closed', consecutiveFailures: 1 });
    expect(breaker.state).toBe('open');
  });

  it('is not asked about successes', async () => {
    const { clock } = manualClock();
    const isFailure = vi.fn(() => true);
    const breaker = new CircuitBreaker({ clock, isFailure });
    await succeed(breaker);
    expect(isFailure).not.toHaveBeenCalled();
  });
});

describe('CircuitBreaker: caller aborts', () => {
  it('an aborted call is never counted nor shown to isFailure', async () => {
    const { clock } = manualClock();
    const isFailure = vi.fn(() => true);
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock, isFailure });
    const failure = vi.fn();
    const success = vi.fn();
    breaker.on('failure', failure);
    breaker.on('success', success);
    const controller = new AbortController();
    const reason = new Error('user navigated away');
    const call = breaker.execute(hang, { signal: controller.signal });
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(breaker.state).toBe('closed');
    expect(isFailure).not.toHaveBeenCalled();
    expect(failure).not.toHaveBeenCalled();
    expect(success).not.toHaveBeenCalled();
  });

  it('an aborted call is not counted even when fn rejects with the abort reason', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock });
    const controller = new AbortController();
    const call = breaker.execute(
      ({ signal }) =>
        new Promise<never>((_, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason as unknown));
        }),
      { signal: controller.signal },
    );
    controller.abort();
    await expect(call).rejects.toBe(controller.signal.reason);
    expect(breaker.state).toBe('closed');
  });

  it('a trial whose caller aborted holds its place until its work settles: then another trial can start and close the circuit', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    await fail(breaker);
    advance(1_000);
    const controller = new AbortController();
    const ignoringItsSignal = deferred<string>();
    const trial = breaker.execute(() => ignoringItsSignal.promise, { signal: controller.signal });
    controller.abort('gave up');
    await expect(trial).rejects.toBe('gave up');
    // The function still runs against the recovering dependency: a second trial now would be two at once.
    const refused = await openError(breaker.execute(() => 'ran'));
    expect(refused.state).toBe('half-open');
    expect(breaker.stats().trialsInFlight).toBe(1);
    ignoringItsSignal.resolve('late');
    await flush();
    expect(breaker.stats().trialsInFlight).toBe(0);
    expect(breaker.state).toBe('half-open'); // the abandoned trial's outcome is not counted
    const next = vi.fn(() => 'recovered');
    await expect(breaker.execute(next)).resolves.toBe('recovered');
    expect(next).toHaveBeenCalledTimes(1);
    expect(breaker.state).toBe('closed');
  });

  it('a trial whose caller aborted and whose work never settles holds its place until halfOpenMaxWait re-opens the circuit', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxWait: 5_000, clock });
    await fail(breaker);
    advance(1_000);
    const controller = new AbortController();
    const trial = breaker.execute(hang, { signal: controller.signal });
    controller.abort('gave up');
    await expect(trial).rejects.toBe('gave up');
    advance(4_999);
    expect((await openError(breaker.execute(() => 'ran'))).state).toBe('half-open');
    advance(1);
    expect(breaker.state).toBe('open');
    advance(1_000);
    await expect(breaker.execute(() => 'recovered')).resolves.toBe('recovered');
    expect(breaker.state).toBe('closed');
  });

  it('an abandoned trial whose work ends after its half-open period ended frees no place of the next period', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxWait: 5_000, clock });
    await fail(breaker);
    advance(1_000);
    const controller = new AbortController();
    const ignoringItsSignal = deferred<string>();
    const abandoned = breaker.execute(() => ignoringItsSignal.promise, { signal: controller.signal });
    controller.abort('gave up');
    await expect(abandoned).rejects.toBe('gave up');
    advance(5_000);
    expect(breaker.state).toBe('open'); // halfOpenMaxWait ended that period
    advance(1_000);
    const answer = deferred<string>();
    const trial = breaker.execute(() => answer.promise);
    ignoringItsSignal.resolve('late'); // the first period's work ends during the second period
    await flush();
    expect(breaker.stats()).toMatchObject({ state: 'half-open', trialsInFlight: 1 });
    expect((await openError(breaker.execute(() => 'ran'))).state).toBe('half-open');
    answer.resolve('ok');
    await expect(trial).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
  });

  it('with halfOpenMaxCalls 1, an aborted trial that ignores its signal and 100 callers racing after it put one trial on the dependency at a time', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    await fail(breaker);
    advance(1_000);
    let running = 0;
    let mostAtOnce = 0;
    const work = deferred();
    const onTheDependency = async (): Promise<string> => {
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      await work.promise;
      running--;
      return 'ok';
    };
    const controller = new AbortController();
    const abandoned = breaker.execute(onTheDependency, { signal: controller.signal });
    controller.abort('gave up');
    const racing = Array.from({ length: 100 }, () => breaker.execute(onTheDependency));
    const outcomes = await Promise.allSettled([abandoned, ...racing]);
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toHaveLength(101);
    work.resolve();
    await flush();
    expect(mostAtOnce).toBe(1);
  });

  it('a signal already aborted rejects with its reason without calling fn or counting', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock });
    const fn = vi.fn(() => 'ran');
    const reason = new Error('already aborted');
    await expect(breaker.execute(fn, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: rejections by policies inside it', () => {
  it('does not open on a burst of bulkhead rejections while the dependency is healthy', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2 });
    const stack = compose(breaker, new Bulkhead({ maxConcurrent: 1 }));
    const slow = deferred<string>();
    const running = stack.execute(() => slow.promise);
    const refused = await Promise.all([1, 2, 3, 4].map(() => rejectionOf(stack.execute(() => 'never'))));
    for (const error of refused) expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(breaker.state).toBe('closed');
    slow.resolve('done');
    await expect(running).resolves.toBe('done');
  });

  it('neither counts a bulkhead rejection as a failure nor lets it reset the failure count', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2 });
    const stack = compose(breaker, new Bulkhead({ maxConcurrent: 1 }));
    const isFailure = vi.fn(() => true);
    const watched = new CircuitBreaker({ failureThreshold: 2, isFailure });
    const watchedStack = compose(watched, new Bulkhead({ maxConcurrent: 1 }));
    for (const [policy, target] of [[stack, breaker], [watchedStack, watched]] as const) {
      await rejectionOf(policy.execute(() => Promise.reject(new Error('down'))));
      const hold = deferred();
      const holding = policy.execute(() => hold.promise);
      expect(await rejectionOf(policy.execute(() => 'never'))).toBeInstanceOf(BulkheadRejectedError);
      hold.reject(new Error('down again'));
      await rejectionOf(holding);
      expect(target.state).toBe('open');
    }
    // isFailure is asked about the two dependency failures only, never about the rejection.
    expect(isFailure).toHaveBeenCalledTimes(2);
  });

  it('frees the trial slot of a half-open trial that an inner bulkhead refused', async () => {
    const time = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock: time.clock });
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const outside = deferred();
    const occupying = bulkhead.execute(() => outside.promise);
    const stack = compose(breaker, bulkhead);
    await rejectionOf(breaker.execute(() => Promise.reject(new Error('down'))));
    time.advance(1_000);
    expect(await rejectionOf(stack.execute(() => 'trial'))).toBeInstanceOf(BulkheadRejectedError);
    expect(breaker.state).toBe('half-open');
    outside.resolve();
    await occupying;
    await expect(stack.execute(() => 'trial')).resolves.toBe('trial');
    expect(breaker.state).toBe('closed');
  });

  it('does not count an inner breaker\'s CircuitOpenError', async () => {
    const inner = new CircuitBreaker({ failureThreshold: 1 });
    const outer = new CircuitBreaker({ failureThreshold: 1 });
    await rejectionOf(inner.execute(() => Promise.reject(new Error('down'))));
    const error = await rejectionOf(compose(outer, inner).execute(() => 'never'));
    expect(isCircuitOpenError(error)).toBe(true);
    expect(outer.state).toBe('closed');
  });
});

describe('CircuitBreaker: isolate() and reset()', () => {
  it('isolate() refuses every call with retryAfter Infinity until reset()', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    const seen = recordStates(breaker);
    breaker.isolate();
    expect(breaker.state).toBe('isolated');
    const fn = vi.fn(() => 'ran');
    const error = await openError(breaker.execute(fn));
    expect(error.retryAfter).toBe(Infinity);
    expect(error.state).toBe('isolated');
    advance(10 * 365 * 24 * 3_600_000);
    expect(breaker.state).toBe('isolated');
    await openError(breaker.execute(fn));
    expect(fn).not.toHaveBeenCalled();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(fn)).resolves.toBe('ran');
    expect(seen).toEqual(['closed->isolated', 'isolated->closed']);
  });

  it('isolate() from open does not turn half-open after recoveryTimeout', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    await fail(breaker);
    breaker.isolate();
    advance(5_000);
    expect(breaker.state).toBe('isolated');
  });

  it('reset() closes an open circuit and forgets its failures', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 1_000, clock });
    await fail(breaker);
    await fail(breaker);
    expect(breaker.state).toBe('open');
    breaker.reset();
    expect(breaker.state).toBe('closed');
    await fail(breaker);
    expect(breaker.state).toBe('closed');
  });

  it('reset() forgets failures counted while closed', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, clock });
    await fail(breaker);
    breaker.reset();
    await fail(breaker);
    expect(breaker.state).toBe('closed');
  });

  it('reset() closes a half-open circuit', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    const seen = recordStates(breaker);
    await fail(breaker);
    advance(1_000);
    expect(breaker.state).toBe('half-open');
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(seen).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
    await fail(breaker);
    expect(breaker.state).toBe('open');
  });
});

describe('CircuitBreaker: events', () => {
  it('emits stateChange in order through closed→open→half-open→closed→open→half-open→open', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 1_000, clock });
    const seen = recordStates(breaker);
    await fail(breaker);
    await fail(breaker);
    advance(1_000);
    await succeed(breaker);
    await fail(breaker);
    await fail(breaker);
    advance(1_000);
    await fail(breaker);
    expect(seen).toEqual([
      'closed->open',
      'open->half-open',
      'half-open->closed',
      'closed->open',
      'open->half-open',
      'half-open->open',
    ]);
    expect(breaker.state).toBe('open');
  });

  it('emits success and failure with the state the call ran in', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 10, clock });
    const events: unknown[] = [];
    breaker.on('success', (payload) => events.push(['success', payload]));
    breaker.on('failure', (payload) => events.push(['failure', payload]));
    await succeed(breaker);
    const boom = new Error('down');
    await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    advance(10);
    await succeed(breaker);
    expect(events).toEqual([
      ['success', { state: 'closed' }],
      ['failure', { error: boom, state: 'closed', consecutiveFailures: 1 }],
      ['success', { state: 'half-open' }],
    ]);
  });

  it('a throwing listener does not break the call and is reported to console.error', async () => {
    vi.stubGlobal('reportError', undefined);
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock });
    const listenerError = new Error('metrics hook broke');
    breaker.on('stateChange', () => {
      throw listenerError;
    });
    breaker.on('success', () => {
      throw listenerError;
    });
    const after = vi.fn();
    breaker.on('stateChange', after);
    await expect(breaker.execute(() => 42)).resolves.toBe(42);
    const boom = new Error('down');
    await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(breaker.state).toBe('open');
    expect(after).toHaveBeenCalledWith({ from: 'closed', to: 'open', reason: 'failure-threshold' });
    expect(consoleError).toHaveBeenCalledTimes(2);
    for (const args of consoleError.mock.calls) expect(args).toContain(listenerError);
  });

  it('a throwing listener is reported to globalThis.reportError when it exists', async () => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock });
    const listenerError = new Error('listener broke');
    breaker.on('failure', () => {
      throw listenerError;
    });
    await fail(breaker);
    expect(breaker.state).toBe('open');
    expect(reportError).toHaveBeenCalledWith(listenerError);
    expect(consoleError).not.toHaveBeenCalled();
  });

  it('the function on() returns unsubscribes, and calling it twice is harmless', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, clock });
    const kept = vi.fn();
    const dropped = vi.fn();
    breaker.on('stateChange', kept);
    const off = breaker.on('stateChange', dropped);
    off();
    off();
    await fail(breaker);
    expect(dropped).not.toHaveBeenCalled();
    expect(kept).toHaveBeenCalledTimes(1);
  });

  it('rejects an unknown event name or a listener that is not a function', () => {
    const breaker = new CircuitBreaker();
    expect(() => breaker.on('opened' as 'stateChange', () => undefined)).toThrow(TypeError);
    expect(() => breaker.on('stateChange', 'log' as unknown as () => void)).toThrow(TypeError);
  });
});

describe('CircuitBreaker: time sources', () => {
  it.each(['value', 'error', 'value isFailureResult accepts'] as const)('a clock that throws while a %s is counted: the call keeps its own outcome and the error is reported', async (kind) => {
    vi.stubGlobal('reportError', undefined);
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const unplugged = new Error('clock unplugged');
    let broken = false;
    const clock = {
      now: (): number => {
        if (broken) throw unplugged;
        return 1_700_000_000_000;
      },
      setTimeout: (callback: () => void, ms: number): unknown => setTimeout(callback, ms),
      clearTimeout: (id: unknown): void => clearTimeout(id as ReturnType<typeof setTimeout>),
    };
    const breaker = new CircuitBreaker({
      failureRate: { threshold: 0.5, minimumCalls: 1, window: { duration: 1_000 } }, // a time window reads the clock for every outcome
      clock,
      ...(kind === 'value isFailureResult accepts' ? { isFailureResult: () => false } : {}),
    });
    broken = true;
    const boom = new Error('down');
    if (kind === 'error') await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    else await expect(breaker.execute(() => 'paid')).resolves.toBe('paid');
    expect(consoleError.mock.calls).toEqual([['bulwark: CircuitBreaker failed to record an outcome; the call keeps its own', unplugged]]);
  });

  it('runs on vi.useFakeTimers() with no clock option, arming no timer', async () => {
    vi.useFakeTimers();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 5_000 });
    await fail(breaker);
    expect(vi.getTimerCount()).toBe(0);
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(5_000);
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(3_000);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(breaker.state).toBe('half-open');
    await succeed(breaker);
    expect(breaker.state).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('honours vi.setSystemTime jumps (Date.now is the default source of time)', async () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 60_000 });
    await fail(breaker);
    vi.setSystemTime(new Date('2030-01-01T00:00:59.999Z'));
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(1);
    vi.setSystemTime(new Date('2030-01-01T00:01:00Z'));
    expect(breaker.state).toBe('half-open');
  });

  it('uses an injected clock and never its timers', async () => {
    const { clock, advance, setTimeout, clearTimeout } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 200, clock });
    await fail(breaker);
    advance(150);
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(50);
    advance(50);
    await succeed(breaker);
    expect(breaker.state).toBe('closed');
    expect(setTimeout).not.toHaveBeenCalled();
    expect(clearTimeout).not.toHaveBeenCalled();
  });
});

describe('CircuitBreaker: values and errors pass through', () => {
  const frozen = Object.freeze(new Error('frozen'));
  it.each([
    ['an Error', new Error('boom')],
    ['a frozen Error', frozen],
    ['a TypeError (fetch network failure)', new TypeError('fetch failed')],
    ['a plain object', { code: 'ECONNRESET' }],
    ['a string', 'text'],
  ])('%s thrown synchronously or rejected reaches the caller as the same value', async (_label, thrown) => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 10, clock });
    await expect(
      breaker.execute(() => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    await expect(breaker.execute(() => Promise.reject(thrown))).rejects.toBe(thrown);
  });

  it('a trial failure reaches the caller as the same object', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 10, clock });
    await fail(breaker);
    advance(10);
    const boom = new Error('trial failed');
    await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
  });

  it('returns what fn returns, sync or async, and passes a context', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ clock });
    const value = { id: 1 };
    await expect(breaker.execute(() => value)).resolves.toBe(value);
    await expect(breaker.execute(async () => value)).resolves.toBe(value);
    await expect(breaker.execute((ctx) => ctx.attempt)).resolves.toBe(1);
    const wrapped = breaker.wrap((a: number, b: number) => a + b);
    await expect(wrapped(2, 3)).resolves.toBe(5);
  });
});

describe('CircuitBreaker: options', () => {
  it('exposes its options and defaults', () => {
    const breaker = new CircuitBreaker();
    expect([breaker.failureThreshold, breaker.recoveryTimeout, breaker.halfOpenMaxCalls, breaker.state]).toEqual([5, 30_000, 1, 'closed']);
  });

  it.each([
    ['failureThreshold', 0, RangeError],
    ['failureThreshold', -1, RangeError],
    ['failureThreshold', 1.5, RangeError],
    ['failureThreshold', NaN, RangeError],
    ['failureThreshold', '5', TypeError],
    ['recoveryTimeout', -1, RangeError],
    ['recoveryTimeout', Infinity, RangeError],
    ['halfOpenMaxCalls', 0, RangeError],
    ['isFailure', 'yes', TypeError],
  ] as const)('%s = %s is refused with an error naming the option', (option, value, type) => {
    expect(() => new CircuitBreaker({ [option]: value } as never)).toThrow(type);
    expect(() => new CircuitBreaker({ [option]: value } as never)).toThrow(option);
  });

  it.each([
    ['resetTimeout', '"recoveryTimeout"'], // opossum
    ['halfOpenAfter', '"recoveryTimeout"'], // cockatiel
    ['waitDurationInOpenState', '"recoveryTimeout"'], // resilience4j
    ['breakDuration', '"recoveryTimeout"'], // Polly
    ['errorThresholdPercentage', 'failureRate.threshold, a share from 0 to 1'],
    ['failureRateThreshold', 'failureRate.threshold, a share from 0 to 1'],
    ['failureRatio', 'failureRate.threshold'],
    ['volumeThreshold', 'failureRate.minimumCalls'],
    ['minimumNumberOfCalls', 'failureRate.minimumCalls'],
    ['minimumThroughput', 'failureRate.minimumCalls'],
    ['rollingCountTimeout', 'failureRate.window: { duration }'],
    ['samplingDuration', 'failureRate.window: { duration }'],
    ['slidingWindowSize', 'failureRate.window'],
    ['permittedNumberOfCallsInHalfOpenState', '"halfOpenMaxCalls"'],
    ['maxWaitDurationInHalfOpenState', '"halfOpenMaxWait"'],
    ['slowCallDurationThreshold', 'slowCall.duration'],
    ['slowCallRateThreshold', 'slowCall.rateThreshold'],
    ['shouldHandle', '"isFailure" or "isFailureResult"'],
    ['handleWhenResult', '"isFailureResult"'],
    ['errorFilter', '"isFailure", which answers the other way round: true when the error counts'],
    ['timeout', 'withTimeout(ms), composed inside the breaker'],
  ])("names another library's option %s as bulwark's %s", (key, ours) => {
    const known = '"failureThreshold", "failureRate", "slowCall", "recoveryTimeout", "halfOpenMaxCalls", "halfOpenSuccessThreshold", "halfOpenMaxWait", "isFailure", "isFailureResult", "initialState", "clock", "name"';
    expect(() => new CircuitBreaker({ [key]: 1 } as never)).toThrow(
      new TypeError(`CircuitBreaker has no option ${JSON.stringify(key)} (another library's name: bulwark's is ${ours}); known options: ${known}`),
    );
  });
});

describe('CircuitBreaker: manual control from inside a listener', () => {
  const fail = (): Promise<never> => Promise.reject(new Error('down'));

  it('isolate() in a failure listener wins over the opening that failure would cause', async () => {
    const time = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 1_000, clock: time.clock });
    const changes: string[] = [];
    breaker.on('stateChange', ({ from, to }) => changes.push(`${from}->${to}`));
    breaker.on('failure', ({ consecutiveFailures }) => {
      if (consecutiveFailures === 2) breaker.isolate();
    });
    await rejectionOf(breaker.execute(fail));
    await rejectionOf(breaker.execute(fail));
    time.advance(10_000);
    expect(breaker.state).toBe('isolated');
    expect(changes).toEqual(['closed->isolated']);
  });

  it.each<[string, 'success' | 'failure', CircuitState]>([
    ['reset() in a failing trial’s failure listener', 'failure', 'closed'],
    ['isolate() in a succeeding trial’s success listener', 'success', 'isolated'],
  ])('%s has the last word', async (_, event, expected) => {
    const time = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock: time.clock });
    await rejectionOf(breaker.execute(fail));
    time.advance(1_000);
    breaker.on(event, () => (expected === 'closed' ? breaker.reset() : breaker.isolate()));
    await breaker.execute(event === 'failure' ? fail : () => Promise.resolve('ok')).catch(() => undefined);
    expect(breaker.state).toBe(expected);
  });

  it('reset() in the stateChange listener of the turn to half-open makes the call that caused it an ordinary closed-state call', async () => {
    const time = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 1_000, clock: time.clock });
    const changes = recordReasons(breaker);
    breaker.on('stateChange', ({ to }) => {
      if (to === 'half-open') breaker.reset();
    });
    await rejectionOf(breaker.execute(fail));
    await rejectionOf(breaker.execute(fail));
    time.advance(1_000);
    await rejectionOf(breaker.execute(fail)); // one failure of two, not a failed trial
    expect(breaker.stats()).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
    expect(changes).toEqual(['closed->open:failure-threshold', 'open->half-open:recovery-timeout', 'half-open->closed:manual']);
  });
});

// ---------------------------------------------------------------------------------------------
// Failure rate, slow calls, half-open control, break backoff, stats and saved state
// ---------------------------------------------------------------------------------------------

/** Records every state change as `from->to:reason`. */
function recordReasons(breaker: CircuitBreaker): string[] {
  const seen: string[] = [];
  breaker.on('stateChange', ({ from, to, reason }) => seen.push(`${from}->${to}:${reason}`));
  return seen;
}

/** Runs one outcome per letter: F fails, S succeeds; stops being called once the circuit refuses. */
async function play(breaker: CircuitBreaker, sequence: string): Promise<number> {
  let calls = 0;
  for (const outcome of sequence) {
    await breaker
      .execute(() => {
        calls++;
        return outcome === 'F' ? Promise.reject(new Error('down')) : 'up';
      })
      .catch(() => undefined);
  }
  return calls;
}

/** A call that takes `ms` on the manual clock (it moves the clock while it runs). */
function taking(advance: (ms: number) => void, ms: number, fails = false) {
  return async (): Promise<string> => {
    advance(ms);
    if (fails) throw new Error('slow and down');
    return 'slow';
  };
}

describe('CircuitBreaker: failureRate over a count window', () => {
  it.each([
    // sequence, threshold, minimumCalls, window calls, state after, reason of the opening
    ['SSSSSFFFFF', 0.5, 10, 10, 'open', 'failure-rate'],
    ['FFFFSSSSSS', 0.5, 10, 10, 'closed', undefined],
    // never below minimumCalls, however bad the rate
    ['FFFFFFFFF', 0.1, 10, 10, 'closed', undefined],
    // the success that brings the window to minimumCalls opens it: 9 of 10 failed
    ['FFFFFFFFFS', 0.5, 10, 10, 'open', 'failure-rate'],
    ['FFSSSSSSSS', 0.3, 10, 10, 'closed', undefined],
    ['SSSSSSSFFF', 0.3, 10, 10, 'open', 'failure-rate'],
    // 7 of 25 reaches 0.28 exactly (0.28 × 25 is 7.000000000000001 in floating point)
    ['S'.repeat(18) + 'F'.repeat(7), 0.28, 25, 25, 'open', 'failure-rate'],
    ['S'.repeat(19) + 'F'.repeat(6), 0.28, 25, 25, 'closed', undefined],
    // the window slides: a failure has left it when the next arrives
    ['FSSSSFSSS', 0.5, 4, 4, 'closed', undefined],
    ['SSSSFFSS', 0.5, 4, 4, 'open', 'failure-rate'],
    ['SSSSSF', 1, 1, 1, 'open', 'failure-rate'],
    ['SSSFSFSSSF', 0.6, 3, 5, 'closed', undefined],
    ['SSSFSFSFFS', 0.6, 3, 5, 'open', 'failure-rate'],
  ] as const)('%s with threshold %d, minimumCalls %i, window of %i calls: %s', async (sequence, threshold, minimumCalls, calls, expected, reason) => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureRate: { threshold, minimumCalls, window: { calls } }, clock });
    const seen = recordReasons(breaker);
    await play(breaker, sequence);
    expect(breaker.state).toBe(expected);
    expect(seen).toEqual(reason === undefined ? [] : [`closed->open:${reason}`]);
  });

  it('turns failureThreshold off unless it is given too; given, either condition opens', async () => {
    const { clock } = manualClock();
    const rateOnly = new CircuitBreaker({ failureRate: { threshold: 0.5, minimumCalls: 50 }, clock });
    await play(rateOnly, 'F'.repeat(49));
    expect(rateOnly.state).toBe('closed');
    expect(rateOnly.failureThreshold).toBe(Infinity);
    await play(rateOnly, 'F');
    expect(rateOnly.state).toBe('open');

    const both = new CircuitBreaker({ failureThreshold: 3, failureRate: { threshold: 0.5, minimumCalls: 50 }, clock });
    const seen = recordReasons(both);
    await play(both, 'FFF');
    expect(seen).toEqual(['closed->open:failure-threshold']);
  });

  it('when one outcome meets both conditions, the reason is failure-threshold', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 4, failureRate: { threshold: 0.5, minimumCalls: 4 }, clock });
    const seen = recordReasons(breaker);
    await play(breaker, 'FFFF');
    expect(seen).toEqual(['closed->open:failure-threshold']);
  });

  it('defaults to the last 100 calls, at least 100 of them', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.5 }, clock });
    await play(breaker, 'S'.repeat(50) + 'F'.repeat(49));
    expect(breaker.stats()).toMatchObject({ calls: 99, failures: 49, state: 'closed' });
    await play(breaker, 'F');
    expect(breaker.stats()).toMatchObject({ calls: 100, failures: 50, state: 'open' });
  });

  it('caps the default minimumCalls at a smaller window', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureRate: { threshold: 1, window: { calls: 3 } }, clock });
    await play(breaker, 'FFF');
    expect(breaker.state).toBe('open');
  });

  it('forgets the window when the circuit closes: the rate starts again from minimumCalls', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 4 } }, recoveryTimeout: 1_000, clock });
    await play(breaker, 'SSFF');
    expect(breaker.stats()).toMatchObject({ state: 'open', calls: 4, failures: 2, failureRate: 0.5 });
    advance(1_000);
    await succeed(breaker);
    expect(breaker.stats()).toMatchObject({ state: 'closed', calls: 0, failures: 0, failureRate: 0 });
    await play(breaker, 'FFF');
    expect(breaker.state).toBe('closed');
    await play(breaker, 'F');
    expect(breaker.state).toBe('open');
  });

  it('counts an error isFailure declines as a success, and never counts aborts or inner rejections', async () => {
    const { clock } = manualClock();
    class NotFound extends Error {}
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.5, minimumCalls: 2 }, isFailure: (error) => !(error instanceof NotFound), clock });
    await rejectionOf(breaker.execute(() => Promise.reject(new NotFound())));
    const controller = new AbortController();
    const aborted = breaker.execute(hang, { signal: controller.signal });
    controller.abort(new Error('caller left'));
    await rejectionOf(aborted);
    const inner = new CircuitBreaker({ clock });
    inner.isolate();
    await rejectionOf(compose(breaker, inner).execute(() => 'never'));
    expect(breaker.stats()).toMatchObject({ calls: 1, failures: 0, state: 'closed' });
  });

  it('reads no clock on the success path when nothing needs the time', async () => {
    const now = vi.fn(() => 1_700_000_000_000);
    const clock = { now, setTimeout: vi.fn(), clearTimeout: vi.fn() };
    for (const options of [{}, { failureRate: { threshold: 0.5 } }, { failureRate: { threshold: 0.5, window: { calls: 10 } } }]) {
      const breaker = new CircuitBreaker({ ...options, clock });
      for (let i = 0; i < 5; i++) await breaker.execute(() => 'ok');
      await rejectionOf(breaker.execute(() => Promise.reject(new Error('one failure'))));
    }
    expect(now).not.toHaveBeenCalled();
  });

  it('reads the clock once per outcome with a time window, twice per call with slowCall', async () => {
    const now = vi.fn(() => 1_700_000_000_000);
    const clock = { now, setTimeout: vi.fn(), clearTimeout: vi.fn() };
    const timeWindow = new CircuitBreaker({ failureRate: { threshold: 0.5, window: { duration: 10_000 } }, clock });
    for (let i = 0; i < 5; i++) await timeWindow.execute(() => 'ok');
    expect(now).toHaveBeenCalledTimes(5);
    now.mockClear();
    const slowCalls = new CircuitBreaker({ slowCall: { duration: 1_000, rateThreshold: 1 }, clock });
    for (let i = 0; i < 5; i++) await slowCalls.execute(() => 'ok');
    expect(now).toHaveBeenCalledTimes(10);
  });
});

describe('CircuitBreaker: failureRate over a time window', () => {
  it('drops a bucket whole once duration has passed since it began, and arms no timer', async () => {
    const { clock, advance, setTimeout } = manualClock(); // starts on a bucket boundary
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.5, minimumCalls: 4, window: { duration: 1_000, buckets: 10 } }, clock });
    await play(breaker, 'FFF');
    advance(999);
    expect(breaker.stats()).toMatchObject({ calls: 3, failures: 3 });
    advance(1);
    expect(breaker.stats()).toMatchObject({ calls: 0, failures: 0 });
    await play(breaker, 'F'); // alone in the window: under minimumCalls
    expect(breaker.state).toBe('closed');
    expect(setTimeout).not.toHaveBeenCalled();
  });

  it('opens on outcomes spread over the window and not on the same outcomes spread wider', async () => {
    const spread = async (gap: number): Promise<CircuitState> => {
      const { clock, advance } = manualClock();
      const breaker = new CircuitBreaker({ failureRate: { threshold: 0.75, minimumCalls: 4, window: { duration: 10_000, buckets: 10 } }, clock });
      for (const outcome of 'FSFF') {
        await play(breaker, outcome);
        advance(gap);
      }
      return breaker.state;
    };
    expect(await spread(3_000)).toBe('open'); // 9 s from first to last: all four in the window
    expect(await spread(4_000)).toBe('closed'); // the first failure left before the last arrived
  });

  it('runs on vi.useFakeTimers() with no clock, arming no timer', async () => {
    vi.useFakeTimers();
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.5, minimumCalls: 2, window: { duration: 60_000 } } });
    await fail(breaker);
    await vi.advanceTimersByTimeAsync(60_000);
    await fail(breaker);
    expect(breaker.state).toBe('closed');
    await fail(breaker);
    expect(breaker.state).toBe('open');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('CircuitBreaker: slow calls', () => {
  it('a call that takes exactly slowCall.duration is not slow; one ms longer is', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ slowCall: { duration: 500, rateThreshold: 1 }, clock });
    await breaker.execute(taking(advance, 500));
    expect(breaker.stats().slowCalls).toBe(0);
    await breaker.execute(taking(advance, 501));
    expect(breaker.stats()).toMatchObject({ calls: 2, slowCalls: 1, slowCallRate: 0.5, failures: 0 });
  });

  it('opens with reason slow-call-rate when the rate of slow calls reaches rateThreshold, even though they succeed', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ slowCall: { duration: 100, rateThreshold: 0.5 }, failureRate: { threshold: 1, minimumCalls: 4, window: { calls: 4 } }, clock });
    const seen = recordReasons(breaker);
    await succeed(breaker);
    await succeed(breaker);
    await breaker.execute(taking(advance, 150));
    expect(breaker.state).toBe('closed'); // 3 calls: under minimumCalls
    await breaker.execute(taking(advance, 150));
    expect(breaker.state).toBe('open');
    expect(seen).toEqual(['closed->open:slow-call-rate']);
  });

  it('a slow failure counts as a failure and as a slow call', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ slowCall: { duration: 100, rateThreshold: 1 }, failureRate: { threshold: 1, minimumCalls: 10 }, clock });
    await rejectionOf(breaker.execute(taking(advance, 101, true)));
    expect(breaker.stats()).toMatchObject({ calls: 1, failures: 1, slowCalls: 1 });
  });

  it('without failureRate, uses the last 100 calls with at least 100 of them, and keeps failureThreshold', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ slowCall: { duration: 10, rateThreshold: 1 }, clock });
    expect(breaker.failureThreshold).toBe(5);
    for (let i = 0; i < 99; i++) await breaker.execute(taking(advance, 11));
    expect(breaker.stats()).toMatchObject({ state: 'closed', calls: 99, slowCalls: 99 });
    await breaker.execute(taking(advance, 11));
    expect(breaker.stats()).toMatchObject({ state: 'open', calls: 100, slowCalls: 100 });
  });

  it('times the call from admission to settlement, not the time spent refused', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ slowCall: { duration: 100, rateThreshold: 1 }, clock });
    const gate = deferred<string>();
    const call = breaker.execute(() => gate.promise);
    advance(100);
    gate.resolve('on time');
    await call;
    advance(1_000);
    await succeed(breaker);
    expect(breaker.stats().slowCalls).toBe(0);
  });

  it('a slow trial re-opens the circuit (reason trial-slow) though it succeeded', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, slowCall: { duration: 100, rateThreshold: 1 }, clock });
    const seen = recordReasons(breaker);
    await fail(breaker);
    advance(1_000);
    await expect(breaker.execute(taking(advance, 101))).resolves.toBe('slow');
    expect(breaker.state).toBe('open');
    expect(seen).toEqual(['closed->open:failure-threshold', 'open->half-open:recovery-timeout', 'half-open->open:trial-slow']);
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(1_000);
    advance(1_000);
    await breaker.execute(taking(advance, 100));
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: halfOpenSuccessThreshold', () => {
  it('stays half-open until that many trials succeeded; one failure re-opens', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenSuccessThreshold: 3, clock });
    const seen = recordReasons(breaker);
    await fail(breaker);
    advance(1_000);
    await succeed(breaker);
    await succeed(breaker);
    expect(breaker.stats()).toMatchObject({ state: 'half-open', trialSuccesses: 2 });
    await fail(breaker);
    expect(breaker.state).toBe('open');
    advance(1_000);
    await succeed(breaker);
    await succeed(breaker);
    expect(breaker.state).toBe('half-open'); // the count started again
    await succeed(breaker);
    expect(breaker.state).toBe('closed');
    expect(seen.slice(-1)).toEqual(['half-open->closed:trial-success']);
  });

  it('larger than halfOpenMaxCalls, admits a new trial as each one succeeds', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxCalls: 2, halfOpenSuccessThreshold: 5, clock });
    await fail(breaker);
    advance(1_000);
    const gates: Deferred<string>[] = [];
    const fn = vi.fn(() => {
      const gate = deferred<string>();
      gates.push(gate);
      return gate.promise;
    });
    const race = async (): Promise<unknown[]> => {
      const calls = Array.from({ length: 100 }, () => breaker.execute(fn).catch((error: unknown) => error));
      await flush();
      return calls;
    };
    const first = await race();
    expect(fn).toHaveBeenCalledTimes(2);
    gates[0]?.resolve('ok');
    await first[0];
    await race();
    expect(fn).toHaveBeenCalledTimes(3);
    for (const gate of gates.slice(1)) gate.resolve('ok');
    await flush();
    expect(breaker.stats()).toMatchObject({ state: 'half-open', trialSuccesses: 3, trialsInFlight: 0 });
    await race();
    expect(fn).toHaveBeenCalledTimes(5);
    for (const gate of gates.slice(3)) gate.resolve('ok');
    await flush();
    expect(breaker.state).toBe('closed');
    expect(fn).toHaveBeenCalledTimes(5);
  });

  it('smaller than halfOpenMaxCalls, closes at once and ignores the trials still running', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxCalls: 3, halfOpenSuccessThreshold: 1, clock });
    const seen = recordReasons(breaker);
    await fail(breaker);
    advance(1_000);
    const gates = [deferred<string>(), deferred<string>(), deferred<string>()];
    const trials = gates.map((gate) => breaker.execute(() => gate.promise).catch(() => 'failed'));
    gates[1]?.resolve('ok');
    await trials[1];
    expect(breaker.state).toBe('closed');
    gates[0]?.reject(new Error('straggler'));
    gates[2]?.reject(new Error('straggler'));
    await Promise.all(trials);
    expect(breaker.stats()).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    expect(seen).toEqual(['closed->open:failure-threshold', 'open->half-open:recovery-timeout', 'half-open->closed:trial-success']);
  });
});

describe('CircuitBreaker: halfOpenMaxWait', () => {
  it('re-opens exactly halfOpenMaxWait after the first trial when a trial never returns, and ignores its late outcome', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxWait: 5_000, clock });
    const seen = recordReasons(breaker);
    await fail(breaker);
    advance(1_000);
    advance(300); // half-open for a while before the first trial: the wait counts from the trial
    const stuck = deferred<string>();
    const trial = breaker.execute(() => stuck.promise);
    expect((await openError(breaker.execute(() => 'ran'))).state).toBe('half-open');
    advance(4_999);
    expect(breaker.state).toBe('half-open');
    advance(1);
    expect(breaker.state).toBe('open');
    expect(seen.slice(-1)).toEqual(['half-open->open:half-open-timeout']);
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(1_000);
    stuck.resolve('late');
    await expect(trial).resolves.toBe('late');
    expect(breaker.state).toBe('open'); // the straggler's success closes nothing
    advance(1_000);
    await succeed(breaker);
    expect(breaker.state).toBe('closed');
  });

  it('defaults to the break duration that just ended, also from a recoveryTimeout function, when that is 30 s or more', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: (opens) => opens * 40_000, clock });
    await fail(breaker);
    advance(40_000);
    void breaker.execute(hang);
    advance(39_999);
    expect(breaker.state).toBe('half-open');
    advance(1);
    expect(breaker.stats()).toMatchObject({ state: 'open', consecutiveOpens: 2, retryAfter: 80_000 });
    advance(80_000);
    void breaker.execute(hang);
    advance(79_999);
    expect(breaker.state).toBe('half-open');
    advance(1);
    expect(breaker.stats()).toMatchObject({ state: 'open', consecutiveOpens: 3, retryAfter: 120_000 });
  });

  it.each([0, 1, 1_000, 29_999])('gives the trials 30 s after a break of %s ms: a short break asks for frequent probes, not for fast trials', async (recoveryTimeout) => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout, clock });
    await fail(breaker);
    advance(recoveryTimeout);
    const slowButHealthy = deferred<string>();
    const trial = breaker.execute(() => slowButHealthy.promise);
    advance(29_999);
    slowButHealthy.resolve('answered in 29.999 s');
    await expect(trial).resolves.toBe('answered in 29.999 s');
    expect(breaker.state).toBe('closed');
    await fail(breaker);
    advance(recoveryTimeout);
    void breaker.execute(hang);
    advance(29_999);
    expect(breaker.state).toBe('half-open');
    advance(1);
    // The trial that never answers re-opened it (and a break of 0 ms is over at once).
    expect(breaker.stats()).toMatchObject({ state: recoveryTimeout === 0 ? 'half-open' : 'open', consecutiveOpens: 2 });
  });

  it('a half-open circuit nobody calls waits for its first trial without limit', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxWait: 10, clock });
    const seen = recordReasons(breaker);
    await fail(breaker);
    advance(1_000);
    expect(breaker.state).toBe('half-open');
    advance(24 * 3_600_000);
    expect(breaker.state).toBe('half-open');
    expect(seen).toEqual(['closed->open:failure-threshold', 'open->half-open:recovery-timeout']);
  });

  it.each([['Infinity', { recoveryTimeout: 1_000, halfOpenMaxWait: Infinity }]])('has no limit with %s', async (_, options) => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, ...options, clock });
    await fail(breaker);
    advance(1_000);
    const slow = deferred<string>();
    const trial = breaker.execute(() => slow.promise);
    advance(365 * 24 * 3_600_000);
    expect(breaker.state).toBe('half-open');
    slow.resolve('finally');
    await trial;
    expect(breaker.state).toBe('closed');
  });

  it('a reader who comes late sees each change at its own moment, in order', async () => {
    const { clock, advance } = manualClock();
    const start = clock.now();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxWait: 2_000, clock });
    const seen = recordReasons(breaker);
    await fail(breaker);
    advance(1_000);
    void breaker.execute(hang); // the first trial, at 1 000
    advance(10_000); // the timeout at 3 000 re-opened it until 4 000, then it turned half-open again
    expect(breaker.stats()).toMatchObject({ state: 'half-open', openedAt: start + 3_000, consecutiveOpens: 2 });
    expect(seen).toEqual([
      'closed->open:failure-threshold',
      'open->half-open:recovery-timeout',
      'half-open->open:half-open-timeout',
      'open->half-open:recovery-timeout',
    ]);
  });

  it('a trial that settles exactly at the deadline is too late', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxWait: 500, clock });
    await fail(breaker);
    advance(1_000);
    await breaker.execute(taking(advance, 500));
    expect(breaker.state).toBe('open');
    advance(1_000);
    await breaker.execute(taking(advance, 499));
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: recoveryTimeout as a function of consecutive openings', () => {
  it('is asked with 1, 2, 3… while the circuit keeps re-opening, and with 1 again after it closed; retryAfter stays exact', async () => {
    const { clock, advance } = manualClock();
    const recoveryTimeout = vi.fn((opens: number) => 1_000 * 2 ** (opens - 1));
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout, clock });
    await fail(breaker);
    for (const [opens, pause] of [[1, 1_000], [2, 2_000], [3, 4_000]] as const) {
      expect(recoveryTimeout).toHaveBeenLastCalledWith(opens);
      expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(pause);
      advance(pause - 1);
      expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(1);
      advance(1);
      if (opens < 3) await fail(breaker); // the trial fails: open again, longer
    }
    await succeed(breaker);
    expect(breaker.stats().consecutiveOpens).toBe(0);
    await fail(breaker);
    expect(recoveryTimeout).toHaveBeenLastCalledWith(1);
    expect(recoveryTimeout).toHaveBeenCalledTimes(4);
  });

  it('a function that throws loses no call: the failure still reaches its caller, the circuit opens for 30 s, and it is reported once', async () => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    const { clock, advance } = manualClock();
    const broken = new Error('backoff table missing');
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      recoveryTimeout: () => {
        throw broken;
      },
      clock,
    });
    await fail(breaker);
    expect(breaker.state).toBe('open');
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(30_000);
    advance(30_000);
    await fail(breaker);
    expect(breaker.stats()).toMatchObject({ state: 'open', retryAfter: 30_000, consecutiveOpens: 2 });
    expect(reportError).toHaveBeenCalledTimes(1);
    expect(reportError).toHaveBeenCalledWith(broken);
  });

  it.each([2 ** 31, Number.MAX_SAFE_INTEGER, Infinity])('a function returning %s (a backoff grown past the longest break) opens for 2³¹ − 1 ms, the longest break, and reports nothing', async (returned) => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: () => returned, clock });
    await fail(breaker);
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(2 ** 31 - 1);
    expect(reportError).not.toHaveBeenCalled();
  });

  it.each([NaN, -1, -Infinity, '5', undefined])('a function returning %s opens for 30 s and reports a RangeError naming recoveryTimeout', async (returned) => {
    vi.stubGlobal('reportError', undefined);
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: () => returned as number, clock });
    await fail(breaker);
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(30_000);
    expect(consoleError).toHaveBeenCalledTimes(1);
    const reported = consoleError.mock.calls[0]?.[1];
    expect(reported).toBeInstanceOf(RangeError);
    expect((reported as Error).message).toContain('recoveryTimeout');
    expect((reported as Error).message).toContain(String(returned));
  });

  it('a function that reads the state sees the circuit open, and does not recurse', async () => {
    const { clock, advance } = manualClock();
    const seenByFunction: CircuitState[] = [];
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      halfOpenMaxWait: 100,
      recoveryTimeout: () => {
        seenByFunction.push(breaker.state);
        return 1_000;
      },
      clock,
    });
    await fail(breaker);
    advance(1_000);
    void breaker.execute(hang);
    advance(100);
    expect(breaker.state).toBe('open');
    expect(seenByFunction).toEqual(['open', 'open']);
  });

  it('an async function opens for 30 s and reports both its promise, as a RangeError, and its rejection, under messages naming recoveryTimeout', async () => {
    vi.stubGlobal('reportError', undefined);
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { clock } = manualClock();
    const late = new Error('backoff table missing');
    const recoveryTimeout = (async () => {
      throw late;
    }) as unknown as () => number;
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout, clock });
    await fail(breaker);
    await flush();
    expect((await openError(breaker.execute(() => 'ran'))).retryAfter).toBe(30_000);
    expect(consoleError.mock.calls).toEqual([
      ['bulwark: CircuitBreaker recoveryTimeout failed; the circuit stays open 30000 ms instead', expect.any(RangeError)],
      ['bulwark: CircuitBreaker recoveryTimeout failed', late],
    ]);
    expect((consoleError.mock.calls[0]?.[1] as Error).message).toBe('CircuitBreaker recoveryTimeout(1) must return a duration in ms ≥ 0, got an object; the circuit stays open 30000 ms instead');
  });

  it('a function that isolates the breaker has the last word: the opening it was asked for is never announced', async () => {
    const { clock, advance } = manualClock();
    const breaker: CircuitBreaker = new CircuitBreaker({
      failureThreshold: 1,
      recoveryTimeout: (opens) => {
        if (opens === 2) breaker.isolate(); // give up on the dependency after its second opening
        return 1_000;
      },
      clock,
    });
    const seen = recordReasons(breaker);
    await fail(breaker);
    advance(1_000);
    await fail(breaker); // the trial fails
    expect(seen).toEqual(['closed->open:failure-threshold', 'open->half-open:recovery-timeout', 'open->isolated:manual']);
    expect(breaker.stats()).toMatchObject({ state: 'isolated', retryAfter: Infinity });
  });
});

describe('CircuitBreaker: stats()', () => {
  it('reports each state with its counts and times', async () => {
    const { clock, advance } = manualClock();
    const start = clock.now();
    const breaker = new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 1_000, failureRate: { threshold: 1, minimumCalls: 100 }, clock });
    expect(breaker.stats()).toEqual({
      state: 'closed',
      calls: 0,
      failures: 0,
      slowCalls: 0,
      failureRate: 0,
      slowCallRate: 0,
      consecutiveFailures: 0,
      consecutiveOpens: 0,
      openedAt: undefined,
      retryAfter: 0,
      trialsInFlight: 0,
      trialSuccesses: 0,
    });
    await play(breaker, 'SFFF');
    advance(250);
    expect(breaker.stats()).toMatchObject({ state: 'closed', calls: 4, failures: 3, failureRate: 0.75, consecutiveFailures: 3 });
    breaker.isolate();
    expect(breaker.stats()).toMatchObject({ state: 'isolated', retryAfter: Infinity, openedAt: start + 250 });
    breaker.reset();
    expect(breaker.stats()).toMatchObject({ state: 'closed', calls: 0, consecutiveFailures: 0, openedAt: undefined });
  });

  it('open: when it opened, exact retryAfter; half-open: trials in flight and succeeded', async () => {
    const { clock, advance } = manualClock();
    const start = clock.now();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxCalls: 2, halfOpenSuccessThreshold: 3, clock });
    await fail(breaker);
    advance(400);
    expect(breaker.stats()).toMatchObject({ state: 'open', openedAt: start, retryAfter: 600, consecutiveOpens: 1, consecutiveFailures: 1 });
    advance(600);
    const seen = recordStates(breaker);
    expect(breaker.stats()).toMatchObject({ state: 'half-open', retryAfter: 0, trialsInFlight: 0 });
    expect(seen).toEqual(['open->half-open']); // stats() reads the state as it is now
    const gate = deferred<string>();
    const trials = [breaker.execute(() => gate.promise), breaker.execute(() => gate.promise)];
    expect(breaker.stats()).toMatchObject({ trialsInFlight: 2, trialSuccesses: 0 });
    gate.resolve('ok');
    await Promise.all(trials);
    expect(breaker.stats()).toMatchObject({ state: 'half-open', trialsInFlight: 0, trialSuccesses: 2 });
  });
});

describe('CircuitBreaker: the reason of every state change', () => {
  it('names the cause of each change', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 100, halfOpenMaxWait: 50, clock });
    const seen = recordReasons(breaker);
    await play(breaker, 'FF');
    advance(100);
    await fail(breaker);
    advance(100);
    await succeed(breaker);
    breaker.isolate();
    breaker.reset();
    await play(breaker, 'FF');
    advance(100);
    void breaker.execute(hang);
    advance(50);
    expect(breaker.state).toBe('open');
    breaker.restore({ ...breaker.toJSON(), state: 'closed', openedAt: null, retryAt: null, breakDuration: null, consecutiveOpens: 0 });
    expect(seen).toEqual([
      'closed->open:failure-threshold',
      'open->half-open:recovery-timeout',
      'half-open->open:trial-failure',
      'open->half-open:recovery-timeout',
      'half-open->closed:trial-success',
      'closed->isolated:manual',
      'isolated->closed:manual',
      'closed->open:failure-threshold',
      'open->half-open:recovery-timeout',
      'half-open->open:half-open-timeout',
      'open->closed:restored',
    ]);
  });
});

describe('CircuitBreaker: saved state', () => {
  const options = { failureThreshold: 3, recoveryTimeout: 10_000 };

  it('toJSON() is plain JSON with a version, and JSON.stringify uses it', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ ...options, clock });
    await play(breaker, 'FFF');
    const snapshot = breaker.toJSON();
    expect(JSON.parse(JSON.stringify(breaker))).toEqual(snapshot);
    expect(snapshot).toEqual({
      version: 1,
      savedAt: clock.now(),
      state: 'open',
      consecutiveFailures: 3,
      consecutiveOpens: 1,
      openedAt: clock.now(),
      retryAt: clock.now() + 10_000,
      breakDuration: 10_000,
      trialSuccesses: 0,
      slowCallDuration: null,
      window: null,
    });
  });

  it('an open circuit restored before its break ended rejects with the exact retryAfter left', async () => {
    const saved = manualClock();
    const breaker = new CircuitBreaker({ ...options, clock: saved.clock });
    await play(breaker, 'FFF');
    const json = JSON.stringify(breaker);
    const later = manualClock(saved.clock.now() + 4_000); // another process, 4 s later
    const restored = new CircuitBreaker({ ...options, clock: later.clock, initialState: JSON.parse(json) as CircuitBreakerSnapshot });
    expect(restored.state).toBe('open');
    expect((await openError(restored.execute(() => 'ran'))).retryAfter).toBe(6_000);
    later.advance(6_000);
    expect(restored.state).toBe('half-open');
  });

  it('an open circuit whose break ended while it was saved comes back ready for a trial', async () => {
    const saved = manualClock();
    const breaker = new CircuitBreaker({ ...options, clock: saved.clock });
    await play(breaker, 'FFF');
    const later = manualClock(saved.clock.now() + 60_000); // a cold start a minute later
    const restored = new CircuitBreaker({ ...options, clock: later.clock, initialState: breaker.toJSON() });
    const seen = recordReasons(restored);
    const trial = vi.fn(() => 'recovered');
    await expect(restored.execute(trial)).resolves.toBe('recovered');
    expect(trial).toHaveBeenCalledTimes(1);
    expect(restored.state).toBe('closed');
    expect(seen).toEqual(['open->half-open:recovery-timeout', 'half-open->closed:trial-success']);
  });

  it('carries consecutive openings on: the next break is the next step of the backoff', async () => {
    const { clock, advance } = manualClock();
    const recoveryTimeout = (opens: number): number => opens * 1_000;
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout, clock });
    await fail(breaker);
    advance(1_000);
    await fail(breaker);
    const restored = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout, clock, initialState: breaker.toJSON() });
    expect(restored.stats()).toMatchObject({ state: 'open', consecutiveOpens: 2, retryAfter: 2_000 });
    advance(2_000);
    await fail(restored);
    expect(restored.stats()).toMatchObject({ consecutiveOpens: 3, retryAfter: 3_000 });
  });

  it('a half-open circuit comes back with its trial slots free and its successful trials counted', async () => {
    const { clock, advance } = manualClock();
    const halfOpen = { failureThreshold: 1, recoveryTimeout: 1_000, halfOpenSuccessThreshold: 2, clock };
    const breaker = new CircuitBreaker(halfOpen);
    await fail(breaker);
    advance(1_000);
    await succeed(breaker);
    void breaker.execute(hang); // a trial in flight when saved
    const restored = new CircuitBreaker({ ...halfOpen, initialState: breaker.toJSON() });
    expect(restored.stats()).toMatchObject({ state: 'half-open', trialSuccesses: 1, trialsInFlight: 0 });
    await succeed(restored);
    expect(restored.state).toBe('closed');
  });

  it('an isolated circuit stays isolated; a closed one keeps its consecutive failures', async () => {
    const { clock } = manualClock();
    const isolated = new CircuitBreaker({ ...options, clock });
    isolated.isolate();
    expect(new CircuitBreaker({ ...options, clock, initialState: isolated.toJSON() }).state).toBe('isolated');
    const closed = new CircuitBreaker({ ...options, clock });
    await play(closed, 'FF');
    const restored = new CircuitBreaker({ ...options, clock, initialState: closed.toJSON() });
    expect(restored.stats()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
    await fail(restored);
    expect(restored.state).toBe('open');
  });

  it('restores the outcomes of a count window in order', async () => {
    const { clock } = manualClock();
    const rated = { failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 4 } }, clock };
    const breaker = new CircuitBreaker(rated);
    await play(breaker, 'SFSSS'); // the window holds the last four: F S S S
    const snapshot = JSON.parse(JSON.stringify(breaker)) as CircuitBreakerSnapshot;
    expect(snapshot.window).toEqual({ calls: 4, outcomes: [1, 0, 0, 0] });
    const restored = new CircuitBreaker({ ...rated, initialState: snapshot });
    expect(restored.stats()).toMatchObject({ calls: 4, failures: 1 });
    await play(restored, 'F'); // pushes the oldest outcome, the failure, out: 1 of 4
    expect(restored.stats()).toMatchObject({ state: 'closed', failures: 1 });
    await play(restored, 'F'); // then a success: 2 of 4
    expect(restored.state).toBe('open');
  });

  it('restores the buckets of a time window, which keep expiring by the clock', async () => {
    const saved = manualClock();
    const rated = { failureRate: { threshold: 0.5, minimumCalls: 3, window: { duration: 1_000, buckets: 10 } } };
    const breaker = new CircuitBreaker({ ...rated, clock: saved.clock });
    await play(breaker, 'FF');
    saved.advance(500);
    const later = manualClock(saved.clock.now() + 200);
    const restored = new CircuitBreaker({ ...rated, clock: later.clock, initialState: breaker.toJSON() });
    expect(restored.stats()).toMatchObject({ calls: 2, failures: 2 });
    later.advance(300); // 1 000 ms after the failures
    expect(restored.stats()).toMatchObject({ calls: 0, failures: 0 });
  });

  it.each([
    ['a different window size', { failureRate: { threshold: 0.5, window: { calls: 50 } } }, /window of \{ calls: 100 \}.*\{ calls: 50 \}/],
    ['a time window instead', { failureRate: { threshold: 0.5, window: { duration: 30_000 } } }, /duration: 30000/],
    ['no window at all', {}, /no window/],
    ['another slowCall.duration', { failureRate: { threshold: 0.5 }, slowCall: { duration: 100, rateThreshold: 1 } }, /slowCall\.duration/],
  ])('a snapshot holding window outcomes is refused by a breaker with %s', async (_, incompatible, message) => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.5 }, clock });
    await play(breaker, 'SF');
    const initialState = breaker.toJSON();
    expect(() => new CircuitBreaker({ ...incompatible, clock, initialState })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ ...incompatible, clock, initialState })).toThrow(message);
    expect(() => new CircuitBreaker({ ...incompatible, clock, initialState })).toThrow(/initialState/);
  });

  it('a snapshot with an empty window restores into any options', () => {
    const { clock } = manualClock();
    const initialState = new CircuitBreaker({ failureRate: { threshold: 0.5 }, clock }).toJSON();
    expect(initialState.window).toBeNull();
    expect(new CircuitBreaker({ failureRate: { threshold: 0.5, window: { duration: 1_000 } }, clock, initialState }).state).toBe('closed');
  });

  const good: CircuitBreakerSnapshot = {
    version: 1,
    savedAt: 1_700_000_000_000,
    state: 'open',
    consecutiveFailures: 5,
    consecutiveOpens: 1,
    openedAt: 1_700_000_000_000,
    retryAt: 1_700_000_030_000,
    breakDuration: 30_000,
    trialSuccesses: 0,
    slowCallDuration: null,
    window: null,
  };
  it.each<[string, unknown, typeof TypeError | typeof RangeError, RegExp]>([
    ['a string', 'open', TypeError, /initialState must be a snapshot/],
    ['null', null, TypeError, /initialState must be a snapshot/],
    ['another version', { ...good, version: 2 }, RangeError, /initialState\.version must be 1.*got 2/],
    ['no version', { ...good, version: undefined }, TypeError, /initialState\.version/],
    ['an unknown state', { ...good, state: 'broken' }, RangeError, /initialState\.state.*"broken"/],
    ['negative failures', { ...good, consecutiveFailures: -1 }, RangeError, /consecutiveFailures.*-1/],
    ['fractional openings', { ...good, consecutiveOpens: 1.5 }, RangeError, /consecutiveOpens.*1\.5/],
    ['an open state without retryAt', { ...good, retryAt: null }, TypeError, /retryAt/],
    ['retryAt before openedAt', { ...good, retryAt: good.openedAt! - 1 }, RangeError, /retryAt/],
    ['an open state without openedAt', { ...good, openedAt: null }, TypeError, /openedAt/],
    ['a half-open state without breakDuration', { ...good, state: 'half-open', breakDuration: null }, TypeError, /breakDuration/],
    ['a savedAt that is not a number', { ...good, savedAt: 'yesterday' }, TypeError, /savedAt/],
    ['an infinite savedAt', { ...good, savedAt: Infinity }, RangeError, /^CircuitBreaker initialState\.savedAt must be a finite time in epoch ms, got Infinity$/],
    ['an openedAt that is not a number', { ...good, openedAt: 'noon' }, TypeError, /^CircuitBreaker initialState\.openedAt must be a time in epoch ms, got "noon"$/],
    ['negative trial successes', { ...good, trialSuccesses: -1 }, RangeError, /^CircuitBreaker initialState\.trialSuccesses must be a whole number ≥ 0, got -1$/],
    ['a retryAt past the longest break', { ...good, retryAt: good.openedAt! + 2 ** 31 }, RangeError, /^CircuitBreaker initialState\.retryAt must be from openedAt to openedAt \+ 2147483647 ms, got 1702147483648 \(openedAt 1700000000000\)$/],
    ['a negative slowCallDuration', { ...good, slowCallDuration: -5 }, RangeError, /^CircuitBreaker initialState\.slowCallDuration must be a duration in ms .*got -5$/],
    ['a window that is a number', { ...good, window: 7 }, TypeError, /^CircuitBreaker initialState\.window must be an object, got 7$/],
    ['a window that is an array', { ...good, window: [] }, TypeError, /^CircuitBreaker initialState\.window must be an object, got /],
    ['a count window of 0 calls', { ...good, window: { calls: 0, outcomes: [] } }, RangeError, /^CircuitBreaker initialState\.window\.calls must be a whole number ≥ 1, got 0$/],
    ['a bucket that is not an array', { ...good, window: { duration: 1_000, buckets: 10, counts: [5] } }, TypeError, /^CircuitBreaker initialState\.window\.counts\[0\] must be \[start, calls, failures, slowCalls\], got 5$/],
    ['a bucket of three numbers', { ...good, window: { duration: 1_000, buckets: 10, counts: [[0, 1, 0]] } }, TypeError, /^CircuitBreaker initialState\.window\.counts\[0\] must be \[start, calls, failures, slowCalls\]/],
    ['a bucket start that is not a number', { ...good, window: { duration: 1_000, buckets: 10, counts: [['x', 1, 0, 0]] } }, TypeError, /^CircuitBreaker initialState\.window\.counts\[0\]\[0\] must be a time in epoch ms, got "x"$/],
    ['a negative bucket call count', { ...good, window: { duration: 1_000, buckets: 10, counts: [[0, -1, 0, 0]] } }, RangeError, /^CircuitBreaker initialState\.window\.counts\[0\]\[1\] \(calls\) must be a whole number ≥ 0, got -1$/],
    ['fractional bucket failures', { ...good, window: { duration: 1_000, buckets: 10, counts: [[0, 1, 0.5, 0]] } }, RangeError, /^CircuitBreaker initialState\.window\.counts\[0\]\[2\] \(failures\) must be a whole number ≥ 0, got 0\.5$/],
    ['negative bucket slow calls', { ...good, window: { duration: 1_000, buckets: 10, counts: [[0, 1, 0, -1]] } }, RangeError, /^CircuitBreaker initialState\.window\.counts\[0\]\[3\] \(slow calls\) must be a whole number ≥ 0, got -1$/],
    ['a bucket with more slow calls than calls', { ...good, window: { duration: 1_000, buckets: 10, counts: [[0, 1, 0, 2]] } }, RangeError, /^CircuitBreaker initialState\.window\.counts\[0\] counts more failures or slow calls than calls$/],
    ['an outcome code out of range', { ...good, window: { calls: 3, outcomes: [0, 7] } }, RangeError, /outcomes\[1\].*7/],
    ['more outcomes than the window holds', { ...good, window: { calls: 1, outcomes: [0, 1] } }, RangeError, /more than the window/],
    ['a bucket with more failures than calls', { ...good, window: { duration: 1_000, buckets: 10, counts: [[0, 1, 2, 0]] } }, RangeError, /counts\[0\]/],
    ['a window that is neither', { ...good, window: { size: 3 } }, TypeError, /outcomes.*counts/],
  ])('a snapshot with %s is refused with an error naming the field', (_, initialState, errorClass, message) => {
    const { clock } = manualClock();
    const build = (): CircuitBreaker => new CircuitBreaker({ clock, failureRate: { threshold: 0.5, window: { calls: 3 } }, initialState: initialState as CircuitBreakerSnapshot });
    expect(build).toThrow(errorClass);
    expect(build).toThrow(message);
  });

  it('takes an open snapshot with a break of 0 ms (ready for a trial) or of 2³¹ − 1 ms, the longest', () => {
    const { clock } = manualClock(good.openedAt!);
    expect(new CircuitBreaker({ clock, initialState: { ...good, retryAt: good.openedAt, breakDuration: 0 } }).state).toBe('half-open');
    const longest = new CircuitBreaker({ clock, initialState: { ...good, retryAt: good.openedAt! + 2 ** 31 - 1, breakDuration: 2 ** 31 - 1 } });
    expect(longest.stats()).toMatchObject({ state: 'open', retryAfter: 2 ** 31 - 1 });
  });

  it('says what to do with a snapshot whose window or slowCall.duration does not fit the breaker', async () => {
    const { clock } = manualClock();
    const saved = new CircuitBreaker({ failureRate: { threshold: 0.5 }, slowCall: { duration: 100, rateThreshold: 1 }, clock });
    await play(saved, 'SF');
    const initialState = saved.toJSON();
    const advice = 'restore it into a breaker with the options it was saved with, or build this one without initialState';
    expect(() => new CircuitBreaker({ failureRate: { threshold: 0.5 }, clock, initialState })).toThrow(
      new RangeError(`CircuitBreaker initialState holds slow calls measured against slowCall.duration 100, but this breaker's is null: ${advice}`),
    );
    expect(() => new CircuitBreaker({ clock, initialState })).toThrow(
      new RangeError(`CircuitBreaker initialState holds the outcomes of a window of { calls: 100 }, but this breaker has no window (neither failureRate nor slowCall): ${advice}`),
    );
  });

  it('restore() replaces the state, emits reason restored, and ignores calls admitted before', async () => {
    const { clock } = manualClock();
    const source = new CircuitBreaker({ ...options, clock });
    await play(source, 'FFF');
    const breaker = new CircuitBreaker({ ...options, clock });
    const seen = recordReasons(breaker);
    const inFlight = deferred<string>();
    const call = breaker.execute(() => inFlight.promise);
    breaker.restore(source.toJSON());
    expect(breaker.state).toBe('open');
    inFlight.resolve('late');
    await expect(call).resolves.toBe('late');
    expect(breaker.stats()).toMatchObject({ state: 'open', consecutiveFailures: 3 });
    expect(seen).toEqual(['closed->open:restored']);
  });

  it('restore() of a bad snapshot throws and changes nothing', async () => {
    const { clock } = manualClock();
    const breaker = new CircuitBreaker({ ...options, clock });
    await play(breaker, 'FF');
    expect(() => breaker.restore({ ...breaker.toJSON(), state: 'ajar' as CircuitState })).toThrow(/restore\(snapshot\)\.state/);
    expect(breaker.stats()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
  });

  it('toJSON() of a closed or isolated circuit holds no break: retryAt and breakDuration are null, and trials that closed it are not carried', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ ...options, halfOpenMaxCalls: 2, halfOpenSuccessThreshold: 2, clock });
    await play(breaker, 'FFF');
    advance(10_000);
    await play(breaker, 'SS'); // two successful trials close it
    expect(breaker.state).toBe('closed');
    expect(breaker.toJSON()).toMatchObject({ state: 'closed', openedAt: null, retryAt: null, breakDuration: null, trialSuccesses: 0, consecutiveOpens: 0 });
    advance(5);
    breaker.isolate();
    expect(breaker.toJSON()).toMatchObject({ state: 'isolated', openedAt: clock.now(), retryAt: null, breakDuration: null, trialSuccesses: 0 });
  });

  it('restore() of a snapshot in the state the breaker is in emits no stateChange, and takes its counts', async () => {
    const { clock } = manualClock();
    const source = new CircuitBreaker({ ...options, clock });
    await play(source, 'FF');
    const breaker = new CircuitBreaker({ ...options, clock });
    const seen = recordReasons(breaker);
    breaker.restore(source.toJSON());
    expect(breaker.stats()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
    expect(seen).toEqual([]);
  });

  it('a closed snapshot written with an openedAt restores as a circuit that is not open: stats().openedAt is undefined', () => {
    const { clock } = manualClock();
    const written = { ...new CircuitBreaker({ ...options, clock }).toJSON(), openedAt: clock.now() - 5_000 };
    const breaker = new CircuitBreaker({ ...options, clock, initialState: written });
    expect(breaker.stats().openedAt).toBeUndefined();
    expect(breaker.toJSON().openedAt).toBeNull();
  });

  it('restore() of a snapshot saved before any outcome empties the window of a breaker that counted some', async () => {
    const { clock } = manualClock();
    const rate = { failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 4 } }, clock };
    const fresh = new CircuitBreaker(rate).toJSON();
    expect(fresh.window).toBeNull();
    const breaker = new CircuitBreaker(rate);
    await play(breaker, 'FFS');
    breaker.restore(fresh);
    expect(breaker.stats()).toMatchObject({ calls: 0, failures: 0 });
    await play(breaker, 'FS'); // with the three outcomes before, these would make 3 failures of 4
    expect(breaker.stats()).toMatchObject({ state: 'closed', calls: 2, failures: 1 });
  });
});

describe('CircuitBreaker: options of the rates and of half-open', () => {
  it.each<[string, Record<string, unknown>, typeof RangeError | typeof TypeError, string[]]>([
    ['failureRate not an object', { failureRate: 0.5 }, TypeError, ['failureRate', '0.5']],
    ['failureRate.threshold 0', { failureRate: { threshold: 0 } }, RangeError, ['failureRate.threshold', '0']],
    ['failureRate.threshold above 1', { failureRate: { threshold: 1.5 } }, RangeError, ['failureRate.threshold', '1.5']],
    ['failureRate.threshold as a percentage', { failureRate: { threshold: 50 } }, RangeError, ['failureRate.threshold', '50']],
    ['failureRate.threshold NaN', { failureRate: { threshold: NaN } }, RangeError, ['failureRate.threshold', 'NaN']],
    ['failureRate.threshold missing', { failureRate: {} }, TypeError, ['failureRate.threshold', 'undefined']],
    ['failureRate.minimumCalls 0', { failureRate: { threshold: 0.5, minimumCalls: 0 } }, RangeError, ['failureRate.minimumCalls', '0']],
    ['failureRate.minimumCalls beyond the window', { failureRate: { threshold: 0.5, minimumCalls: 20, window: { calls: 10 } } }, RangeError, ['minimumCalls', '20', '10']],
    ['a window of 0 calls', { failureRate: { threshold: 0.5, window: { calls: 0 } } }, RangeError, ['failureRate.window.calls', '0']],
    ['a window of 0 ms', { failureRate: { threshold: 0.5, window: { duration: 0 } } }, RangeError, ['failureRate.window.duration', '0']],
    ['a window of 0 buckets', { failureRate: { threshold: 0.5, window: { duration: 1_000, buckets: 0 } } }, RangeError, ['failureRate.window.buckets', '0']],
    ['buckets shorter than 1 ms', { failureRate: { threshold: 0.5, window: { duration: 5, buckets: 10 } } }, RangeError, ['failureRate.window.buckets', '10']],
    ['a window with calls and duration', { failureRate: { threshold: 0.5, window: { calls: 10, duration: 1_000 } } }, TypeError, ['failureRate.window', 'both']],
    ['an empty window', { failureRate: { threshold: 0.5, window: {} } }, TypeError, ['failureRate.window', 'neither']],
    ['buckets with calls', { failureRate: { threshold: 0.5, window: { calls: 10, buckets: 2 } } }, TypeError, ['failureRate.window.buckets']],
    ['slowCall not an object', { slowCall: 100 }, TypeError, ['slowCall', '100']],
    ['slowCall.duration negative', { slowCall: { duration: -1, rateThreshold: 1 } }, RangeError, ['slowCall.duration', '-1']],
    ['slowCall.rateThreshold missing', { slowCall: { duration: 100 } }, TypeError, ['slowCall.rateThreshold', 'undefined']],
    ['slowCall.rateThreshold 0', { slowCall: { duration: 100, rateThreshold: 0 } }, RangeError, ['slowCall.rateThreshold', '0']],
    ['halfOpenSuccessThreshold 0', { halfOpenSuccessThreshold: 0 }, RangeError, ['halfOpenSuccessThreshold', '0']],
    ['halfOpenSuccessThreshold fractional', { halfOpenSuccessThreshold: 1.5 }, RangeError, ['halfOpenSuccessThreshold', '1.5']],
    ['halfOpenMaxWait 0', { halfOpenMaxWait: 0 }, RangeError, ['halfOpenMaxWait', '0']],
    ['halfOpenMaxWait negative', { halfOpenMaxWait: -5 }, RangeError, ['halfOpenMaxWait', '-5']],
    ['recoveryTimeout a string', { recoveryTimeout: '30s' }, TypeError, ['recoveryTimeout', '"30s"']],
  ])('%s is refused with an error naming the option and the value', (_, options, errorClass, mentions) => {
    let thrown: unknown;
    try {
      new CircuitBreaker(options as CircuitBreakerOptions);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(errorClass);
    for (const mention of mentions) expect((thrown as Error).message).toContain(mention);
  });

  it('takes a window at its limits: 100 000 calls, 1 ms, 10 000 buckets; refuses more buckets than ms', async () => {
    expect(() => new CircuitBreaker({ failureRate: { threshold: 0.5, window: { calls: 100_000 } } })).not.toThrow();
    expect(() => new CircuitBreaker({ failureRate: { threshold: 0.5, window: { duration: 10_000, buckets: 10_000 } } })).not.toThrow();
    const { clock } = manualClock();
    const oneMs = new CircuitBreaker({ failureRate: { threshold: 0.5, minimumCalls: 1, window: { duration: 1 } }, clock });
    await play(oneMs, 'F');
    expect(oneMs.state).toBe('open');
    expect(() => new CircuitBreaker({ failureRate: { threshold: 0.5, window: { duration: 5, buckets: 6 } } })).toThrow(
      new RangeError('CircuitBreaker failureRate.window.buckets must be from 1 to duration (5), so each bucket spans at least 1 ms, got 6'),
    );
  });

  it('exposes the half-open settings and defaults halfOpenSuccessThreshold to halfOpenMaxCalls', () => {
    expect(new CircuitBreaker({ halfOpenMaxCalls: 4 }).halfOpenSuccessThreshold).toBe(4);
    expect(new CircuitBreaker({ halfOpenMaxCalls: 4, halfOpenSuccessThreshold: 9 }).halfOpenSuccessThreshold).toBe(9);
    const backoff = (opens: number): number => opens * 1_000;
    expect(new CircuitBreaker({ recoveryTimeout: backoff }).recoveryTimeout).toBe(backoff);
  });
});

describe('stats() of an open breaker', () => {
  it('shows the count window that opened it for as long as it stays open', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 4 } }, recoveryTimeout: 30_000, clock });
    for (let i = 0; i < 4; i++) await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    advance(29_000);
    expect(breaker.stats()).toMatchObject({ state: 'open', calls: 4, failures: 4, failureRate: 1 });
  });

  it('shows a time window forgetting outcomes older than its duration, as documented', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureRate: { threshold: 0.5, minimumCalls: 4, window: { duration: 10_000 } }, recoveryTimeout: 30_000, clock });
    for (let i = 0; i < 4; i++) await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    expect(breaker.stats()).toMatchObject({ state: 'open', calls: 4, failures: 4, failureRate: 1 });
    advance(15_000);
    expect(breaker.stats()).toMatchObject({ state: 'open', calls: 0, failures: 0, failureRate: 0 });
    expect(breaker.stats().openedAt).toBe(clock.now() - 15_000);
  });
});
