import { afterEach, describe, expect, it, vi } from 'vitest';
import { Bulkhead, BulkheadRejectedError, CircuitBreaker, CircuitOpenError, compose, isCircuitOpenError, type CircuitState } from '../src/index.js';
import { manualClock } from './fixtures/clock.js';
import { deferred, flush, hang, rejectionOf } from './fixtures/promises.js';

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
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxCalls: 2, clock });
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
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, halfOpenMaxCalls: 3, clock });
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

  it('an aborted trial frees its slot: another trial can start and close the circuit', async () => {
    const { clock, advance } = manualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 1_000, clock });
    await fail(breaker);
    advance(1_000);
    const controller = new AbortController();
    const trial = breaker.execute(hang, { signal: controller.signal });
    const refused = await openError(breaker.execute(() => 'ran'));
    expect(refused.state).toBe('half-open');
    controller.abort('gave up');
    await expect(trial).rejects.toBe('gave up');
    expect(breaker.state).toBe('half-open');
    const next = vi.fn(() => 'recovered');
    await expect(breaker.execute(next)).resolves.toBe('recovered');
    expect(next).toHaveBeenCalledTimes(1);
    expect(breaker.state).toBe('closed');
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
    expect(after).toHaveBeenCalledWith({ from: 'closed', to: 'open' });
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
});
