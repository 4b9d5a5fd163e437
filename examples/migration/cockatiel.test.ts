/**
 * examples/migration/cockatiel.ts: the same stack written with cockatiel and with bulwark, run
 * against the same scripted service on fake timers. The first block shows where they behave
 * the same, the second where docs/migrating-from-cockatiel.md says they differ.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CircuitState,
  ConsecutiveBreaker,
  ConstantBackoff,
  TaskCancelledError,
  bulkhead,
  circuitBreaker,
  handleAll,
  isBrokenCircuitError,
  isTaskCancelledError,
  retry,
  timeout,
  TimeoutStrategy,
  wrap,
} from 'cockatiel';
import { Bulkhead, CircuitBreaker, compose, isBulkheadRejectedError, isCircuitOpenError, isTimeoutError, retryWithBackoff, withTimeout } from 'bulwark';
import { ScriptedStock, bulwarkStack, cockatielStack, fromCockatiel } from './cockatiel.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const both = [
  ['cockatiel', cockatielStack],
  ['bulwark', bulwarkStack],
] as const;

/** The outcome of `promise`, as a value: never rejects. */
function outcomeOf<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/** Settles `promise` by running every timer it waits for; never rejects (the outcome is returned). */
async function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  const outcome = outcomeOf(promise);
  await vi.runAllTimersAsync();
  return outcome;
}

describe('cockatiel and bulwark behave the same', () => {
  it.each(both)('%s: a blip is retried after 100 ms and the second answer returned', async (_name, build) => {
    const service = new ScriptedStock(['error', 'ok']);
    const stack = build(service.get);
    const started = Date.now();
    expect(await settle(stack.get('sku-1'))).toEqual({ value: { status: 200, sku: 'sku-1', count: 7 } });
    expect(service.calls).toBe(2);
    expect(Date.now() - started).toBe(10 + 100 + 10);
  });

  it('both wait 100 then 200 ms (maxAttempts: 2 is maxRetries: 2: three calls)', async () => {
    const delays: Record<string, number[]> = { cockatiel: [], bulwark: [] };
    const a = cockatielStack(new ScriptedStock(['error']).get);
    a.retry.onRetry(({ delay }) => delays.cockatiel?.push(delay));
    const b = bulwarkStack(new ScriptedStock(['error']).get);
    b.retry.on('retry', ({ delay }) => delays.bulwark?.push(delay));
    await settle(a.get('sku-1'));
    await settle(b.get('sku-1'));
    expect(delays).toEqual({ cockatiel: [100, 200], bulwark: [100, 200] });
  });

  it.each(both)('%s: a 503 is retried, and after the last retry the 503 itself is returned', async (_name, build) => {
    const service = new ScriptedStock([503]);
    expect(await settle(build(service.get).get('sku-1'))).toEqual({ value: { status: 503, sku: 'sku-1' } });
    expect(service.calls).toBe(3);
  });

  it.each(both)('%s: three failed calls open the breaker; the fourth is refused without a call', async (name, build) => {
    const service = new ScriptedStock(['error']);
    const stack = build(service.get);
    for (let i = 0; i < 3; i++) expect((await settle(stack.get('sku-1'))).error).toBeInstanceOf(Error);
    expect(service.calls).toBe(9);
    const { error } = await settle(stack.get('sku-1'));
    expect(service.calls).toBe(9);
    if (name === 'cockatiel') expect(isBrokenCircuitError(error)).toBe(true);
    else expect(isCircuitOpenError(error)).toBe(true);
  });

  it.each(both)('%s: an attempt that hangs is cut after 1 s, its signal aborted, and retried', async (_name, build) => {
    const service = new ScriptedStock(['hang', 'ok']);
    const started = Date.now();
    expect(await settle(build(service.get).get('sku-1'))).toEqual({ value: { status: 200, sku: 'sku-1', count: 7 } });
    expect(Date.now() - started).toBe(1_000 + 100 + 10);
  });
});

describe('one policy at a time: a cockatiel policy inside a bulwark stack', () => {
  it('a cockatiel retry and timeout under a bulwark breaker: a blip is retried, a hang cut, and the breaker counts one outcome per call', async () => {
    const retries = retry(handleAll, { maxAttempts: 2 });
    const perAttempt = timeout(1_000, TimeoutStrategy.Aggressive);
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const stack = compose(breaker, fromCockatiel(retries), fromCockatiel(perAttempt));
    const service = new ScriptedStock(['hang', 'error', 'ok']);
    const { value } = await settle(stack.execute(({ signal }) => service.get('sku-1', signal)));
    expect(value).toMatchObject({ status: 200 });
    expect(service.calls).toBe(3);
    expect(breaker.state).toBe('closed');
  });

  it("the caller's abort reaches the function through the cockatiel layer, and the call answers at once with its reason", async () => {
    const stack = compose(new CircuitBreaker(), fromCockatiel(timeout(1_000, TimeoutStrategy.Aggressive)));
    const service = new ScriptedStock(['hang']);
    const controller = new AbortController();
    const startedAt = Date.now();
    const call = outcomeOf(stack.execute(({ signal }) => service.get('sku-1', signal), { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    const reason = new Error('user navigated away');
    controller.abort(reason);
    expect((await call).error).toBe(reason);
    expect(Date.now()).toBe(startedAt + 50);
  });
});

describe('where cockatiel and bulwark differ', () => {
  it('the attempt number starts at 0 in cockatiel, at 1 in bulwark', async () => {
    const seen: Record<string, number[]> = { cockatiel: [], bulwark: [] };
    const service = new ScriptedStock(['error']);
    await settle(cockatielStack(service.get).stack.execute(({ attempt, signal }) => (seen.cockatiel?.push(attempt), service.get('a', signal))));
    await settle(bulwarkStack(service.get).stack.execute(({ attempt, signal }) => (seen.bulwark?.push(attempt), service.get('a', signal))));
    expect(seen).toEqual({ cockatiel: [0, 1, 2], bulwark: [1, 2, 3] });
  });

  it("a caller's abort: bulwark answers at once with its reason and counts nothing; cockatiel counts a failure", async () => {
    const a = cockatielStack(new ScriptedStock(['hang']).get);
    const b = bulwarkStack(new ScriptedStock(['hang']).get);
    for (let i = 0; i < 3; i++) {
      for (const stack of [a, b]) {
        const controller = new AbortController();
        const call = outcomeOf(stack.get('sku-1', controller.signal)).then((outcome) => ({ ...outcome, at: Date.now() }));
        await vi.advanceTimersByTimeAsync(50);
        const abortedAt = Date.now();
        const reason = new Error('user navigated away');
        controller.abort(reason);
        await vi.runAllTimersAsync();
        const { error, at } = await call;
        // cockatiel's timeout aborts its own controller without the caller's reason.
        if (stack === b) expect({ error, at }).toEqual({ error: reason, at: abortedAt });
        else expect(error).not.toBe(reason);
      }
    }
    expect(a.breaker.state).toBe(CircuitState.Open);
    expect(b.breaker.state).toBe('closed');
    expect(b.breaker.stats().consecutiveFailures).toBe(0);
  });

  it('half-open: cockatiel holds other callers until the trial settles and then runs them; bulwark refuses them at once', async () => {
    const fail9 = (): ScriptedStock => new ScriptedStock([...Array<'error'>(9).fill('error'), 'ok']);
    const serviceA = fail9();
    const serviceB = fail9();
    const a = cockatielStack(serviceA.get);
    const b = bulwarkStack(serviceB.get);
    for (let i = 0; i < 3; i++) {
      await settle(a.get('sku-1'));
      await settle(b.get('sku-1'));
    }
    vi.advanceTimersByTime(10_000);
    // bulwark works its state out from the clock; cockatiel moves on at the next call.
    expect(b.breaker.state).toBe('half-open');
    expect(a.breaker.state).toBe(CircuitState.Open);

    const cockatielCalls = settle(Promise.all([a.get('sku-1'), a.get('sku-2')]));
    const bulwarkCalls = [settle(b.get('sku-1')), settle(b.get('sku-2'))];
    expect((await cockatielCalls).value).toHaveLength(2);
    expect(serviceA.calls).toBe(11);
    const [trial, other] = await Promise.all(bulwarkCalls);
    expect(trial?.value).toMatchObject({ status: 200 });
    expect(isCircuitOpenError(other?.error)).toBe(true);
    expect(other?.error).toMatchObject({ state: 'half-open' });
    expect(serviceB.calls).toBe(10);
  });

  it("retry around the breaker (cockatiel's README order): cockatiel retries the open circuit's refusals, bulwark does not", async () => {
    const retriesA: number[] = [];
    const breakerA = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(1) });
    const retryA = retry(handleAll, { maxAttempts: 3 });
    retryA.onRetry(({ attempt }) => retriesA.push(attempt));
    let callsA = 0;
    const a = await settle(wrap(retryA, breakerA).execute(() => Promise.reject(new Error(`down ${++callsA}`))));

    const retryB = retryWithBackoff({ maxRetries: 3, baseDelay: 0 });
    const retriesB: number[] = [];
    const reasons: string[] = [];
    retryB.on('retry', ({ attempt }) => retriesB.push(attempt));
    retryB.on('giveUp', ({ reason }) => reasons.push(reason));
    let callsB = 0;
    const b = await settle(compose(retryB, new CircuitBreaker({ failureThreshold: 1 })).execute(() => Promise.reject(new Error(`down ${++callsB}`))));

    expect([callsA, callsB]).toEqual([1, 1]);
    expect(retriesA).toEqual([1, 2, 3]); // every retry hit the open circuit
    expect(isBrokenCircuitError(a.error)).toBe(true);
    expect(retriesB).toEqual([1]); // the failure is retried, the refusal that follows is not
    expect(reasons).toEqual(['not-retryable']);
    expect(isCircuitOpenError(b.error)).toBe(true);
  });

  it('a listener that throws: the cockatiel call rejects with its error; the bulwark call goes on and the error is reported', async () => {
    const report = vi.spyOn(console, 'error').mockImplementation(() => {});
    const serviceA = new ScriptedStock(['error', 'ok']);
    const a = cockatielStack(serviceA.get);
    a.retry.onRetry(() => {
      throw new Error('metrics client down');
    });
    const serviceB = new ScriptedStock(['error', 'ok']);
    const b = bulwarkStack(serviceB.get);
    b.retry.on('retry', () => {
      throw new Error('metrics client down');
    });
    expect((await settle(a.get('sku-1'))).error).toMatchObject({ message: 'metrics client down' });
    expect(serviceA.calls).toBe(1);
    expect((await settle(b.get('sku-1'))).value).toMatchObject({ status: 200 });
    expect(serviceB.calls).toBe(2);
    expect(report).toHaveBeenCalledWith(expect.any(String), expect.objectContaining({ message: 'metrics client down' }));
  });

  it("cockatiel aborts an attempt's signal once it returned; bulwark leaves it alone (a body read later is not cut)", async () => {
    const signals: Record<string, AbortSignal[]> = { cockatiel: [], bulwark: [] };
    await settle(cockatielStack(new ScriptedStock(['ok']).get).stack.execute(({ signal }) => (signals.cockatiel?.push(signal), 'ok')));
    await settle(bulwarkStack(new ScriptedStock(['ok']).get).stack.execute(({ signal }) => (signals.bulwark?.push(signal), 'ok')));
    expect(signals.cockatiel?.map((signal) => signal.aborted)).toEqual([true]);
    expect(signals.bulwark?.map((signal) => signal.aborted)).toEqual([false]);
  });

  it("execute(fn, signal), cockatiel's form, is refused by bulwark: pass execute(fn, { signal })", async () => {
    const { stack } = bulwarkStack(new ScriptedStock(['ok']).get);
    const signal = new AbortController().signal;
    await expect(stack.execute(() => 'ok', signal as never)).rejects.toThrow(/got an AbortSignal; pass it as execute\(fn, \{ signal \}\)/);
  });

  it('a queued caller that aborts: cockatiel keeps its place until its turn; bulwark frees it at once', async () => {
    const never = (): Promise<never> => new Promise(() => {});
    const a = bulkhead(1, 1);
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    void a.execute(never);
    void b.execute(never);
    const controllerA = new AbortController();
    const controllerB = new AbortController();
    const queuedA = a.execute(never, controllerA.signal).catch((error: unknown) => error);
    const queuedB = b.execute(never, { signal: controllerB.signal }).catch((error: unknown) => error);
    controllerA.abort();
    controllerB.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.queueSlots).toBe(0); // still queued: a third caller is rejected
    expect(await a.execute(never).catch((error: unknown) => error)).toMatchObject({ isBulkheadRejectedError: true });
    expect(b.queued).toBe(0);
    expect(await queuedB).toBe(controllerB.signal.reason);
    void b.execute(never);
    expect(b.queued).toBe(1); // the freed place is taken by the next caller
    expect(isBulkheadRejectedError(await b.execute(never).catch((error: unknown) => error))).toBe(true);
    void queuedA;
  });

  it("an abort during the backoff: cockatiel sleeps it out and calls the function again; bulwark stops at once", async () => {
    let callsA = 0;
    const controllerA = new AbortController();
    const a = outcomeOf(retry(handleAll, { maxAttempts: 3, backoff: new ConstantBackoff(1_000) }).execute(() => {
      callsA++;
      return Promise.reject(new Error('down'));
    }, controllerA.signal));
    let callsB = 0;
    const controllerB = new AbortController();
    const b = outcomeOf(retryWithBackoff({ maxRetries: 3, baseDelay: 1_000, jitter: 'none' }).execute(() => {
      callsB++;
      return Promise.reject(new Error('down'));
    }, { signal: controllerB.signal }));
    await vi.advanceTimersByTimeAsync(100);
    controllerA.abort();
    controllerB.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(callsB).toBe(1);
    expect((await b).error).toBe(controllerB.signal.reason);
    await vi.advanceTimersByTimeAsync(900);
    expect(callsA).toBe(2); // called again after the sleep, with its signal aborted
    expect((await a).error).toMatchObject({ message: 'down' });
  });

  it('a timeout rejects with TaskCancelledError in cockatiel (which isTaskCancelledError does not recognise in 3.2.1), with TimeoutError in bulwark', async () => {
    const a = await settle(timeout(1_000, TimeoutStrategy.Aggressive).execute(() => new Promise(() => {})));
    const b = await settle(withTimeout(1_000).execute(() => new Promise(() => {})));
    expect(a.error).toBeInstanceOf(TaskCancelledError);
    expect(isTaskCancelledError(a.error)).toBe(false);
    expect(isTimeoutError(b.error)).toBe(true);
    expect(isTimeoutError(a.error)).toBe(false);
  });

  it("cockatiel's option names are refused by bulwark, naming bulwark's", () => {
    expect(() => retryWithBackoff({ maxAttempts: 3 } as never)).toThrow(/no option "maxAttempts" \(another library's name: bulwark's is "maxRetries"\)/);
    expect(() => new CircuitBreaker({ halfOpenAfter: 10_000 } as never)).toThrow(/no option "halfOpenAfter" \(another library's name: bulwark's is "recoveryTimeout"\)/);
    expect(() => new CircuitBreaker({ handleWhenResult: () => true } as never)).toThrow(/bulwark's is "isFailureResult"/);
  });
});
