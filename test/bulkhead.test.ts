import { AsyncLocalStorage } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Bulkhead,
  BulkheadRejectedError,
  CircuitBreaker,
  TimeoutError,
  compose,
  isBulkheadRejectedError,
  logPolicyEvents,
  retryWithBackoff,
  withTimeout,
  type BulkheadOptions,
} from '../src/index.js';
import { CountingClock } from './fixtures/clock.js';
import { deferred, flush, track, type Deferred } from './fixtures/promises.js';

/** Fakes only setTimeout and Date: setImmediate, and with it `flush`, stays real. */
function useFakeTimers(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
}

/** A function whose calls the test finishes by hand, one gate per call, in call order. */
function gatedFunction<T = string>() {
  const gates: Deferred<T>[] = [];
  const fn = vi.fn(() => {
    const gate = deferred<T>();
    gates.push(gate);
    return gate.promise;
  });
  return { fn, gates };
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('Bulkhead: concurrency limit', () => {
  it.each([
    [1, false],
    [7, false],
    [50, false],
    [7, true],
  ])('1 000 racing callers never run more than maxConcurrent = %i at once (caller signal: %s), and all settle', async (maxConcurrent, withSignal) => {
    useFakeTimers();
    const bulkhead = new Bulkhead({ maxConcurrent, maxQueue: Infinity });
    let running = 0;
    let maxRunning = 0;
    let maxActive = 0;
    const calls = Array.from({ length: 1_000 }, (_, i) =>
      bulkhead.execute(
        async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          maxActive = Math.max(maxActive, bulkhead.active);
          await new Promise((resolve) => setTimeout(resolve, (i * 7) % 13));
          running--;
          if (i % 10 === 3) throw new Error(`failure ${i}`);
          return i;
        },
        withSignal ? { signal: new AbortController().signal } : undefined,
      ),
    );
    expect(bulkhead.active).toBe(maxConcurrent);
    expect(bulkhead.queued).toBe(1_000 - maxConcurrent);
    const settled = Promise.allSettled(calls);
    await vi.runAllTimersAsync();
    await flush();
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]); // checked before awaiting, so a leaked slot fails fast
    const results = await settled;
    expect(maxRunning).toBe(maxConcurrent);
    expect(maxActive).toBe(maxConcurrent);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(900);
    expect(results.map((result) => (result.status === 'fulfilled' ? result.value : -1))).toEqual(
      Array.from({ length: 1_000 }, (_, i) => (i % 10 === 3 ? -1 : i)),
    );
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a synchronous fn returns through the bulkhead and frees its slot', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    await expect(bulkhead.execute(() => 'sync')).resolves.toBe('sync');
    expect(bulkhead.active).toBe(0);
    await expect(bulkhead.execute(() => 'again')).resolves.toBe('again');
  });
});

describe('Bulkhead: queue', () => {
  it('starts queued calls in FIFO order, whichever running call frees a slot', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 2, maxQueue: Infinity });
    const started: number[] = [];
    const gates = new Map<number, Deferred<void>>();
    const calls = Array.from({ length: 8 }, (_, i) =>
      bulkhead.execute(() => {
        started.push(i);
        const gate = deferred();
        gates.set(i, gate);
        return gate.promise;
      }),
    );
    await flush();
    expect(started).toEqual([0, 1]);
    // finish running calls out of order: the queue still starts in arrival order
    for (const finishing of [1, 0, 3, 2, 5, 4, 7, 6]) {
      gates.get(finishing)?.resolve();
      await flush();
    }
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await Promise.all(calls);
  });

  it('beyond maxQueue rejects at once with BulkheadRejectedError (full) without calling fn, and emits rejected', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 2, maxQueue: 3 });
    const rejected = vi.fn();
    bulkhead.on('rejected', rejected);
    const { fn, gates } = gatedFunction();
    const admitted = Array.from({ length: 5 }, () => track(bulkhead.execute(fn)));
    expect([bulkhead.active, bulkhead.queued]).toEqual([2, 3]);
    const extra = vi.fn(() => 'ran');
    const refused = track(bulkhead.execute(extra));
    await flush();
    expect(refused.state).toBe('rejected');
    const error = refused.error as BulkheadRejectedError;
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(isBulkheadRejectedError(error)).toBe(true);
    expect(error.name).toBe('BulkheadRejectedError');
    expect([error.reason, error.maxConcurrent, error.maxQueue]).toEqual(['full', 2, 3]);
    expect(extra).not.toHaveBeenCalled();
    expect(rejected).toHaveBeenCalledTimes(1);
    expect(rejected.mock.calls[0]?.[0]).toEqual({ error, reason: 'full' });
    expect((rejected.mock.calls[0]?.[0] as { error: unknown }).error).toBe(error);
    expect([bulkhead.active, bulkhead.queued]).toEqual([2, 3]);
    expect(admitted.map((outcome) => outcome.state)).toEqual(new Array(5).fill('pending'));
    for (let i = 0; i < 5; i++) {
      gates[i]?.resolve(`done ${i}`);
      await flush();
    }
    expect(admitted.map((outcome) => outcome.value)).toEqual(['done 0', 'done 1', 'done 2', 'done 3', 'done 4']);
  });

  it('defaults to no queue: a call beyond maxConcurrent is rejected at once', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const gate = deferred();
    const first = bulkhead.execute(() => gate.promise);
    const fn = vi.fn(() => 'ran');
    const refused = track(bulkhead.execute(fn));
    await flush();
    expect(refused.error).toBeInstanceOf(BulkheadRejectedError);
    expect((refused.error as BulkheadRejectedError).reason).toBe('full');
    expect(fn).not.toHaveBeenCalled();
    gate.resolve();
    await first;
    await expect(bulkhead.execute(fn)).resolves.toBe('ran');
  });

  it('active and queued are exact after every step of a scripted scenario', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 2, maxQueue: 2 });
    const counts = (): [number, number] => [bulkhead.active, bulkhead.queued];
    const { fn, gates } = gatedFunction();
    expect(counts()).toEqual([0, 0]);
    const a = track(bulkhead.execute(fn));
    expect(counts()).toEqual([1, 0]);
    const b = track(bulkhead.execute(fn));
    expect(counts()).toEqual([2, 0]);
    const c = track(bulkhead.execute(fn));
    expect(counts()).toEqual([2, 1]);
    const controller = new AbortController();
    const d = track(bulkhead.execute(fn, { signal: controller.signal }));
    expect(counts()).toEqual([2, 2]);
    const e = track(bulkhead.execute(fn));
    await flush();
    expect(e.state).toBe('rejected');
    expect(counts()).toEqual([2, 2]);
    controller.abort('d gave up');
    expect(counts()).toEqual([2, 1]);
    await flush();
    expect(d).toMatchObject({ state: 'rejected', error: 'd gave up' });
    gates[0]?.resolve('a');
    await flush();
    expect(a.state).toBe('fulfilled');
    expect(counts()).toEqual([2, 0]); // c took a's slot
    expect(fn).toHaveBeenCalledTimes(3);
    gates[1]?.reject(new Error('b failed'));
    await flush();
    expect(b.state).toBe('rejected');
    expect(counts()).toEqual([1, 0]);
    gates[2]?.resolve('c');
    await flush();
    expect(c).toMatchObject({ state: 'fulfilled', value: 'c' });
    expect(counts()).toEqual([0, 0]);
    expect(fn).toHaveBeenCalledTimes(3);
  });
});

describe('Bulkhead: queueTimeout', () => {
  it('rejects a waiter after exactly queueTimeout, removes it from the queue, and gives a later free slot to the next waiter', async () => {
    useFakeTimers();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 2, queueTimeout: 100 });
    const rejected = vi.fn();
    bulkhead.on('rejected', rejected);
    const blocker = deferred<string>();
    const running = track(bulkhead.execute(() => blocker.promise));
    const first = vi.fn(() => 'first');
    const firstCall = track(bulkhead.execute(first));
    await vi.advanceTimersByTimeAsync(30);
    const second = vi.fn(() => 'second');
    const secondCall = track(bulkhead.execute(second));
    expect([bulkhead.active, bulkhead.queued]).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(69);
    expect(firstCall.state).toBe('pending');
    expect(bulkhead.queued).toBe(2);
    await vi.advanceTimersByTimeAsync(1); // 100 ms after the first waiter queued
    expect(firstCall.state).toBe('rejected');
    const error = firstCall.error as BulkheadRejectedError;
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(error.reason).toBe('queue-timeout');
    expect(rejected).toHaveBeenCalledWith({ error, reason: 'queue-timeout' });
    expect([bulkhead.active, bulkhead.queued]).toEqual([1, 1]);
    expect(secondCall.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(20);
    blocker.resolve('blocker');
    await flush();
    expect(running.state).toBe('fulfilled');
    expect(secondCall).toMatchObject({ state: 'fulfilled', value: 'second' });
    expect(first).not.toHaveBeenCalled();
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
    expect(vi.getTimerCount()).toBe(0); // the second waiter's queue timer was cleared
    await vi.advanceTimersByTimeAsync(1_000);
    expect(rejected).toHaveBeenCalledTimes(1);
  });

  it('a waiter that gets a slot in time is never rejected later', async () => {
    useFakeTimers();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 50 });
    const blocker = deferred();
    const running = bulkhead.execute(() => blocker.promise);
    const waiter = deferred<string>();
    const waiting = track(bulkhead.execute(() => waiter.promise));
    await vi.advanceTimersByTimeAsync(49);
    blocker.resolve();
    await running;
    await vi.advanceTimersByTimeAsync(500); // running past its queueTimeout is fine
    expect(waiting.state).toBe('pending');
    expect(bulkhead.active).toBe(1);
    waiter.resolve('done');
    await flush();
    expect(waiting).toMatchObject({ state: 'fulfilled', value: 'done' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a queueTimeout of 0 rejects a waiter on the next timer tick', async () => {
    useFakeTimers();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 0 });
    const blocker = deferred();
    void bulkhead.execute(() => blocker.promise);
    const waiting = track(bulkhead.execute(() => 'ran'));
    expect(bulkhead.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(0);
    expect((waiting.error as BulkheadRejectedError).reason).toBe('queue-timeout');
    expect(bulkhead.queued).toBe(0);
    blocker.resolve();
  });
});

describe('Bulkhead: the clock it is given', () => {
  it('with no queueTimeout a queued call arms and clears nothing on the clock', async () => {
    const clock = new CountingClock();
    const setTimeout = vi.spyOn(clock, 'setTimeout');
    const clearTimeout = vi.spyOn(clock, 'clearTimeout');
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, clock });
    const blocker = deferred();
    const running = bulkhead.execute(() => blocker.promise);
    const waiting = bulkhead.execute(() => 'waited');
    blocker.resolve();
    await running;
    expect(await waiting).toBe('waited');
    expect(setTimeout).not.toHaveBeenCalled();
    expect(clearTimeout).not.toHaveBeenCalled();
  });

  it.each(['granted', 'aborted'] as const)('a queued call %s before its queueTimeout clears exactly the timer it armed, once', async (how) => {
    const clock = new CountingClock();
    const setTimeout = vi.spyOn(clock, 'setTimeout');
    const clearTimeout = vi.spyOn(clock, 'clearTimeout');
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 100, clock });
    const blocker = deferred();
    const running = bulkhead.execute(() => blocker.promise);
    const controller = new AbortController();
    const waiting = bulkhead.execute(() => 'waited', { signal: controller.signal }).catch((error: unknown) => error);
    expect(setTimeout).toHaveBeenCalledTimes(1);
    expect(setTimeout.mock.calls[0]?.[1]).toBe(100);
    if (how === 'aborted') controller.abort(new Error('caller left'));
    blocker.resolve();
    await running;
    expect(await waiting).toEqual(how === 'granted' ? 'waited' : new Error('caller left'));
    expect(clearTimeout.mock.calls).toEqual([[setTimeout.mock.results[0]?.value]]);
    expect(clock.armed).toBe(0);
  });
});

describe('Bulkhead: logs', () => {
  it('writes the first rejection as a warning and sums up the repeats as "N more rejections"', async () => {
    const clock = new CountingClock();
    const lines: unknown[][] = [];
    const logger = {
      info: (...args: unknown[]) => void lines.push(['info', ...args]),
      warn: (...args: unknown[]) => void lines.push(['warn', ...args]),
      error: (...args: unknown[]) => void lines.push(['error', ...args]),
    };
    const bulkhead = new Bulkhead({ maxConcurrent: 1, name: 'inventory' });
    const stop = logPolicyEvents(bulkhead, logger, { clock, summaryInterval: 1_000 });
    const blocker = deferred();
    const running = bulkhead.execute(() => blocker.promise);
    for (let i = 0; i < 3; i++) await bulkhead.execute(() => 'refused').catch(() => undefined);
    await clock.advance(1_000);
    expect(lines).toEqual([
      [
        'warn',
        { policy: 'inventory', kind: 'bulkhead', event: 'rejected', reason: 'full', error: { name: 'BulkheadRejectedError', message: 'Bulkhead is full: 1 running and 0 queued' } },
        'bulkhead "inventory" rejected a call: Bulkhead is full: 1 running and 0 queued',
      ],
      ['warn', { policy: 'inventory', kind: 'bulkhead', event: 'rejected', repeated: 2, intervalMs: 1_000 }, 'bulkhead "inventory": 2 more rejections in the last 1000 ms'],
    ]);
    stop();
    blocker.resolve();
    await running;
  });
});

describe('Bulkhead: caller aborts', () => {
  it('a queued caller that aborts rejects at once with signal.reason, leaves the queue and frees its place', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const blocker = deferred();
    const running = bulkhead.execute(() => blocker.promise);
    const controller = new AbortController();
    const aborted = vi.fn(() => 'should not run');
    const waiting = bulkhead.execute(aborted, { signal: controller.signal });
    expect(bulkhead.queued).toBe(1);
    const reason = new Error('request cancelled');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect([bulkhead.active, bulkhead.queued]).toEqual([1, 0]);
    // the freed place takes a new waiter (with maxQueue 1 it would be refused otherwise)
    const next = vi.fn(() => 'next');
    const nextCall = bulkhead.execute(next);
    expect(bulkhead.queued).toBe(1);
    blocker.resolve();
    await running;
    await expect(nextCall).resolves.toBe('next');
    expect(aborted).not.toHaveBeenCalled();
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
  });

  it('an aborted waiter in the middle of the queue is skipped; the others keep their order', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: Infinity });
    const started: string[] = [];
    const blocker = deferred();
    const running = bulkhead.execute(() => blocker.promise);
    const controller = new AbortController();
    const calls = ['a', 'b', 'c', 'd'].map((label) =>
      track(
        bulkhead.execute(
          () => {
            started.push(label);
          },
          label === 'b' || label === 'c' ? { signal: controller.signal } : undefined,
        ),
      ),
    );
    controller.abort();
    expect(bulkhead.queued).toBe(2);
    blocker.resolve();
    await running;
    await flush();
    expect(started).toEqual(['a', 'd']);
    expect(calls.map((call) => call.state)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(calls[1]?.error).toBe(controller.signal.reason);
  });

  it('an aborted waiter does not wait for its queueTimeout and leaves no timer', async () => {
    useFakeTimers();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeout: 10_000 });
    const rejected = vi.fn();
    bulkhead.on('rejected', rejected);
    const blocker = deferred();
    const running = bulkhead.execute(() => blocker.promise);
    const controller = new AbortController();
    const waiting = track(bulkhead.execute(() => 'ran', { signal: controller.signal }));
    expect(vi.getTimerCount()).toBe(1);
    controller.abort('stop');
    await flush();
    expect(waiting).toMatchObject({ state: 'rejected', error: 'stop' });
    expect(vi.getTimerCount()).toBe(0);
    expect(rejected).not.toHaveBeenCalled(); // a caller abort is not a bulkhead rejection
    blocker.resolve();
    await running;
  });

  it('a waiter aborted just as a slot is handed to it gives the slot back', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const gate = deferred();
    const running = bulkhead.execute(() => gate.promise);
    const controller = new AbortController();
    const waiting = track(bulkhead.execute(() => 'ran', { signal: controller.signal }));
    // runs right after the bulkhead's own callback on the same promise, which hands the slot over
    void gate.promise.then(() => controller.abort('changed my mind'));
    gate.resolve();
    await running;
    await flush();
    expect(waiting).toMatchObject({ state: 'rejected', error: 'changed my mind' });
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
    await expect(bulkhead.execute(() => 'free')).resolves.toBe('free');
  });

  it('a signal already aborted is rejected with its reason and takes neither slot nor place', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const fn = vi.fn(() => 'ran');
    const reason = new Error('too late');
    await expect(bulkhead.execute(fn, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
  });
});

describe('Bulkhead: a slot is held until the work really settles', () => {
  it.each([
    ['timeout outside the bulkhead', (bulkhead: Bulkhead) => compose(withTimeout(10), bulkhead)],
    ['timeout inside the bulkhead', (bulkhead: Bulkhead) => compose(bulkhead, withTimeout(10))],
  ])('%s: after the timeout answers the caller, active stays 1 until fn settles', async (_label, stack) => {
    useFakeTimers();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const work = deferred<string>();
    const slow = track(stack(bulkhead).execute(() => work.promise)); // ignores its signal
    await vi.advanceTimersByTimeAsync(10);
    expect(slow.state).toBe('rejected');
    expect(slow.error).toBeInstanceOf(TimeoutError);
    expect([bulkhead.active, bulkhead.queued]).toEqual([1, 0]);
    const next = vi.fn(() => 'next');
    const nextCall = track(bulkhead.execute(next));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(next).not.toHaveBeenCalled();
    expect([bulkhead.active, bulkhead.queued]).toEqual([1, 1]);
    // a late rejection of the abandoned work is absorbed (no unhandled rejection) and frees the slot
    work.reject(new Error('late failure'));
    await flush();
    expect(nextCall).toMatchObject({ state: 'fulfilled', value: 'next' });
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('after a caller aborts a running call, active stays 1 until fn settles', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const work = deferred<string>();
    const controller = new AbortController();
    const call = bulkhead.execute(() => work.promise, { signal: controller.signal });
    controller.abort('caller left');
    await expect(call).rejects.toBe('caller left');
    expect(bulkhead.active).toBe(1);
    const next = vi.fn(() => 'next');
    const nextCall = bulkhead.execute(next);
    await flush();
    expect(next).not.toHaveBeenCalled();
    work.resolve('finished anyway');
    await flush();
    expect(bulkhead.active).toBe(0);
    await expect(nextCall).resolves.toBe('next');
  });

  it('a queued call whose enclosing timeout expires leaves the queue at once with the TimeoutError', async () => {
    useFakeTimers();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const blocker = deferred();
    const running = bulkhead.execute(() => blocker.promise);
    const fn = vi.fn(() => 'ran');
    const waiting = track(compose(withTimeout(25), bulkhead).execute(fn));
    expect(bulkhead.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(25);
    expect(waiting.error).toBeInstanceOf(TimeoutError);
    expect(bulkhead.queued).toBe(0);
    blocker.resolve();
    await running;
    expect(fn).not.toHaveBeenCalled();
    expect(bulkhead.active).toBe(0);
  });
});

describe('Bulkhead: async context', () => {
  it('a queued call runs in its own caller’s AsyncLocalStorage context, not the one that freed the slot', async () => {
    const storage = new AsyncLocalStorage<string>();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 2 });
    const gate = deferred();
    const seen: (string | undefined)[] = [];
    const first = storage.run('request-1', () =>
      bulkhead.execute(async () => {
        seen.push(storage.getStore());
        await gate.promise; // resumes in request-1's context and frees the slot from there
        return storage.getStore();
      }),
    );
    const second = storage.run('request-2', () => bulkhead.execute(() => storage.getStore()));
    const third = storage.run('request-3', () => bulkhead.execute(async () => storage.getStore()));
    storage.run('releaser', () => gate.resolve());
    expect(await Promise.all([first, second, third])).toEqual(['request-1', 'request-2', 'request-3']);
    expect(seen).toEqual(['request-1']);
  });
});

describe('Bulkhead: errors and slots', () => {
  it.each([false, true])('errors from fn reach the caller as the same object (caller signal: %s)', async (withSignal) => {
    const bulkhead = new Bulkhead({ maxConcurrent: 2 });
    const options = withSignal ? { signal: new AbortController().signal } : undefined;
    const boom = new Error('dependency failed');
    await expect(bulkhead.execute(() => Promise.reject(boom), options)).rejects.toBe(boom);
    const notAnError = { status: 503 };
    await expect(bulkhead.execute(() => Promise.reject(notAnError), options)).rejects.toBe(notAnError);
    expect(bulkhead.active).toBe(0);
  });

  it.each([false, true])('a synchronous throw in fn rejects with that error and releases the slot to the next waiter (caller signal: %s)', async (withSignal) => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const options = withSignal ? { signal: new AbortController().signal } : undefined;
    const blocker = deferred();
    const running = bulkhead.execute(() => blocker.promise);
    const boom = new TypeError('bad input');
    const throwing = bulkhead.execute(() => {
      throw boom;
    }, options);
    const after = vi.fn(() => 'after');
    blocker.resolve();
    await running;
    await expect(throwing).rejects.toBe(boom);
    expect([bulkhead.active, bulkhead.queued]).toEqual([0, 0]);
    await expect(bulkhead.execute(after)).resolves.toBe('after');
    expect(after).toHaveBeenCalledTimes(1);
  });

  it('a failed call frees its slot for a queued one', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    const gate = deferred();
    const boom = new Error('down');
    const failing = bulkhead.execute(() => gate.promise.then(() => Promise.reject(boom)));
    const queued = bulkhead.execute(() => 'queued ran');
    gate.resolve();
    await expect(failing).rejects.toBe(boom);
    await expect(queued).resolves.toBe('queued ran');
    expect(bulkhead.active).toBe(0);
  });
});

describe('Bulkhead: options', () => {
  it('exposes its options and defaults', () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 3 });
    expect([bulkhead.maxConcurrent, bulkhead.maxQueue, bulkhead.queueTimeout]).toEqual([3, 0, Infinity]);
  });

  // The whole message, not a part of it: Node's own "Cannot read properties of undefined
  // (reading 'maxConcurrent')" is a TypeError naming maxConcurrent too.
  it.each([
    ['no options', undefined, TypeError, 'new Bulkhead(options): options with maxConcurrent are required, got undefined'],
    ['null', null, TypeError, 'new Bulkhead(options): options with maxConcurrent are required, got null'],
    ['no maxConcurrent', {}, TypeError, 'new Bulkhead(options): maxConcurrent is required'],
    ['maxConcurrent as a string', { maxConcurrent: '4' }, TypeError, 'Bulkhead maxConcurrent must be a number, got "4"'],
    ['maxConcurrent 0', { maxConcurrent: 0 }, RangeError, 'Bulkhead maxConcurrent must be a whole number ≥ 1 or Infinity, got 0'],
    ['maxConcurrent -1', { maxConcurrent: -1 }, RangeError, 'Bulkhead maxConcurrent must be a whole number ≥ 1 or Infinity, got -1'],
    ['maxConcurrent 2.5', { maxConcurrent: 2.5 }, RangeError, 'Bulkhead maxConcurrent must be a whole number ≥ 1 or Infinity, got 2.5'],
    ['maxConcurrent NaN', { maxConcurrent: NaN }, RangeError, 'Bulkhead maxConcurrent must be a number, got NaN'],
    ['a name that is not a string', { maxConcurrent: 1, name: 5 }, TypeError, 'Bulkhead name must be a string, got 5'],
  ] as const)('%s is refused with its class and the whole rule', (_label, options, type, message) => {
    expect(() => new Bulkhead(options as unknown as BulkheadOptions)).toThrow(type);
    expect(() => new Bulkhead(options as unknown as BulkheadOptions)).toThrow(new type(message));
  });

  it.each([
    ['concurrency', '"maxConcurrent"'],
    ['limit', '"maxConcurrent"'],
    ['maxConcurrentCalls', '"maxConcurrent"'],
    ['permitLimit', '"maxConcurrent"'],
    ['maxParallelization', '"maxConcurrent"'],
    ['queueLimit', '"maxQueue"'],
    ['maxQueuedActions', '"maxQueue"'],
    ['maxQueuingActions', '"maxQueue"'],
    ['maxWaitDuration', '"queueTimeout"'],
  ])("refuses the peer libraries' option %s, naming bulwark's %s", (key, ours) => {
    expect(() => new Bulkhead({ maxConcurrent: 1, [key]: 1 } as BulkheadOptions)).toThrow(
      new TypeError(`Bulkhead has no option "${key}" (another library's name: bulwark's is ${ours}); known options: "maxConcurrent", "maxQueue", "queueTimeout", "clock", "name"`),
    );
  });

  it.each([
    ['maxQueue', -1, RangeError],
    ['maxQueue', 1.5, RangeError],
    ['queueTimeout', -5, RangeError],
    ['queueTimeout', NaN, RangeError],
  ] as const)('%s = %s is refused with an error naming the option and the value', (option, value, type) => {
    expect(() => new Bulkhead({ maxConcurrent: 1, [option]: value })).toThrow(type);
    expect(() => new Bulkhead({ maxConcurrent: 1, [option]: value })).toThrow(new RegExp(`${option}.*${String(value)}`));
  });

  it('rejects an unknown event name', () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    expect(() => bulkhead.on('full' as 'rejected', () => undefined)).toThrow(TypeError);
  });
});

describe('Bulkhead: slot accounting in nested stacks', () => {
  it('releases an outer slot exactly once when a timeout between two bulkheads fires and the call is retried', async () => {
    useFakeTimers();
    const outer = new Bulkhead({ maxConcurrent: 1 });
    const stack = compose(
      retryWithBackoff({ maxRetries: 1, baseDelay: 50, jitter: 'none' }),
      outer,
      withTimeout(10),
      new Bulkhead({ maxConcurrent: 1 }),
      new CircuitBreaker(),
    );
    const call = stack.execute(() => new Promise<void>((resolve) => setTimeout(resolve, 20)));
    const outcome = call.then(
      () => 'resolved',
      (error: unknown) => (error as Error).name,
    );
    await vi.advanceTimersByTimeAsync(200);
    expect(await outcome).toBe('TimeoutError');
    expect(outer.active).toBe(0);
    let running = 0;
    let peak = 0;
    const work = async (): Promise<void> => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
    };
    const settled = Promise.allSettled([outer.execute(work), outer.execute(work), outer.execute(work)]);
    await vi.advanceTimersByTimeAsync(50);
    await settled;
    expect(peak).toBe(1);
    expect(outer.active).toBe(0);
  });

  it('frees the slot when the function returns an object whose then getter throws', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const controller = new AbortController();
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    const stack = compose(withTimeout(50), bulkhead);
    await expect(stack.execute(() => revocable.proxy, { signal: controller.signal })).rejects.toBeInstanceOf(TypeError);
    expect(bulkhead.active).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
