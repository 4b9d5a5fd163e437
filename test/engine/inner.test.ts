/**
 * What a policy gets from `call.inner()` and `call.invoke()`: running the policies inside
 * again (`run`), racing runs it can abort (`start`), sleeping (`sleep`), `aborted`, and user
 * code run under the call (a fallback function). Policies written against `LayerPolicy` only.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MetricsRegistry, compose, retryWithBackoff, withFallback, withTimeout, type ExecutionContext, type InnerLayers, type InnerRun, type LayerCall } from '../../src/index.js';
import { manualClock, probe } from '../fixtures/layer-probe.js';
import { deferred, flush, hangUntilAborted, rejectionOf } from '../fixtures/promises.js';

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('inner().run()', () => {
  it('runs the policies inside and the function again, as the attempt given', async () => {
    const attempts: number[] = [];
    const entered: number[] = [];
    const again = probe({ onError: (_t, _error, call) => call.inner().run(7) });
    const stack = compose(again, probe({ enter: (call) => void entered.push(call.attempt) }));
    const value = await stack.execute(({ attempt }) => {
      attempts.push(attempt);
      if (attempt === 1) throw new Error('first');
      return `attempt ${attempt}`;
    });
    expect(value).toBe('attempt 7');
    expect(attempts).toEqual([1, 7]);
    expect(entered).toEqual([1, 7]);
  });

  it('without an attempt, or with the current one, runs them as the current attempt, in the same context', async () => {
    const contexts: ExecutionContext[] = [];
    for (const attempt of [undefined, 1]) {
      contexts.length = 0;
      const again = probe({ onError: (_t, _error, call) => call.inner().run(attempt) });
      const value = await again.execute((ctx) => {
        contexts.push(ctx);
        if (contexts.length === 1) throw new Error('first');
        return ctx.attempt;
      });
      expect(value).toBe(1);
      expect(contexts[1]).toBe(contexts[0]);
    }
  });

  it('kept past the hook, runs later; a run of an aborted call rejects with the reason without calling the function', async () => {
    let inner: InnerLayers | undefined;
    const later = deferred<unknown>();
    const keeper = probe({
      onError: (_t, _error, call) => {
        inner = call.inner();
        return later.promise;
      },
    });
    const controller = new AbortController();
    const fn = vi.fn(() => Promise.reject(new Error('fails')));
    const call = keeper.execute(fn, { signal: controller.signal });
    await flush();
    expect(inner?.aborted).toBe(false);
    const reason = new Error('gone');
    controller.abort(reason);
    expect(await rejectionOf(call)).toBe(reason);
    expect(inner?.aborted).toBe(true);
    expect(await rejectionOf((inner as InnerLayers).run())).toBe(reason);
    expect(fn).toHaveBeenCalledTimes(1);
    later.resolve('ignored');
  });
});

describe('inner().aborted', () => {
  it('is false in a call that nothing can abort, and in one not aborted', async () => {
    const seen: boolean[] = [];
    const looking = probe({ onValue: (_t, value, call) => (seen.push(call.inner().aborted, call.aborted), value) });
    await looking.execute(() => 1);
    await looking.execute(() => 1, { signal: new AbortController().signal });
    expect(seen).toEqual([false, false, false, false]);
  });

  it('is true in onError once a timeout around the policy expired: the policy starts nothing more', async () => {
    vi.useFakeTimers();
    const seen: boolean[] = [];
    const looking = probe({
      onError: (_t, error, call) => {
        seen.push(call.inner().aborted, call.aborted, call.callerAborted);
        throw error;
      },
    });
    const call = rejectionOf(compose(withTimeout(10), looking).execute(hangUntilAborted));
    await vi.advanceTimersByTimeAsync(10);
    await call;
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual([true, true, false]);
  });
});

describe('inner().start()', () => {
  /** A hedging policy: starts two runs (attempts 1 and 2), answers with the first to succeed and aborts the other. */
  function hedging(runs: InnerRun[]) {
    return probe(
      {
        run: async (call: LayerCall) => {
          const inner = call.inner();
          const first = inner.start(1);
          const second = inner.start(2);
          runs.push(first, second);
          const winner = await Promise.any([first.outcome.then((value) => ({ value, loser: second })), second.outcome.then((value) => ({ value, loser: first }))]);
          winner.loser.abort(new Error('lost the race'));
          return winner.value;
        },
      },
      { abortsWork: true },
    );
  }

  it('races runs: abort() ends the loser, whose ctx.signal aborts with the reason, while the winner answers', async () => {
    const runs: InnerRun[] = [];
    const signals = new Map<number, AbortSignal>();
    const slow = deferred<string>();
    const value = await hedging(runs).execute((ctx) => {
      signals.set(ctx.attempt, ctx.signal);
      return ctx.attempt === 1 ? slow.promise : Promise.resolve('second wins');
    });
    expect(value).toBe('second wins');
    expect(signals.get(1)?.aborted).toBe(true);
    expect(signals.get(1)?.reason).toEqual(new Error('lost the race'));
    expect(signals.get(2)?.aborted).toBe(false);
    expect(await rejectionOf((runs[0] as InnerRun).outcome)).toEqual(new Error('lost the race'));
    slow.resolve('too late');
  });

  it('the loser’s policies see the abort as their failure, the winner’s see its value', async () => {
    const runs: InnerRun[] = [];
    const log: string[] = [];
    const inside = probe({
      enter: (call) => call.attempt,
      onValue: (token, value) => (log.push(`onValue ${String(token)}`), value),
      onError: (token, error) => {
        log.push(`onError ${String(token)} ${(error as Error).message}`);
        throw error;
      },
    });
    const value = await compose(hedging(runs), inside).execute((ctx) => (ctx.attempt === 1 ? hangUntilAborted(ctx) : 'second'));
    await flush();
    expect(value).toBe('second');
    expect(log).toEqual(['onValue 2', 'onError 1 lost the race']);
  });

  it('a run that settled is not aborted by an abort of the call that comes later', async () => {
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    const hold = deferred<void>();
    const policy = probe(
      {
        run: async (call) => {
          const run = call.inner().start();
          const value = await run.outcome;
          await hold.promise;
          return value;
        },
      },
      { abortsWork: true },
    );
    const call = policy.execute((ctx) => (signals.push(ctx.signal), 'done'), { signal: controller.signal });
    await flush();
    controller.abort(new Error('gone'));
    expect(await rejectionOf(call)).toEqual(new Error('gone'));
    expect(signals[0]?.aborted).toBe(false);
    hold.resolve();
  });

  it('is refused to a policy that does not abort work, in every call: one nothing can abort, one with a caller signal, one under a timeout', async () => {
    const refusal = new Error('InnerLayers.start(): only a policy whose abortsWork is true may start runs it can abort');
    const policy = probe({ run: async (call) => call.inner().start().outcome });
    expect(await rejectionOf(policy.execute(() => 1))).toEqual(refusal);
    // A missing abortsWork must not hide until a production call comes without a signal.
    expect(await rejectionOf(policy.execute(() => 1, { signal: new AbortController().signal }))).toEqual(refusal);
    expect(await rejectionOf(compose(withTimeout(1_000), policy).execute(() => 1))).toEqual(refusal);
  });

  it('without an attempt, or with the current one, starts the run as the current attempt', async () => {
    for (const attempt of [undefined, 1]) {
      const policy = probe({ run: async (call) => call.inner().start(attempt).outcome }, { abortsWork: true });
      expect(await policy.execute(({ attempt: seen }) => seen)).toBe(1);
    }
    const third = probe({ run: async (call) => call.inner().start(3).outcome }, { abortsWork: true });
    expect(await third.execute(({ attempt }) => attempt)).toBe(3);
  });

  it('a caller’s abort ends every run at once, each with its signal', async () => {
    const runs: InnerRun[] = [];
    const controller = new AbortController();
    const signals: AbortSignal[] = [];
    const call = hedging(runs).execute((ctx) => (signals.push(ctx.signal), hangUntilAborted(ctx)), { signal: controller.signal });
    await flush();
    const reason = new Error('gone');
    controller.abort(reason);
    expect(await rejectionOf(call)).toBe(reason);
    expect(signals.map((signal) => signal.reason)).toEqual([reason, reason]);
    expect(await rejectionOf((runs[0] as InnerRun).outcome)).toBe(reason);
    expect(await rejectionOf((runs[1] as InnerRun).outcome)).toBe(reason);
  });
});

describe('inner().sleep()', () => {
  it('waits on the clock given', async () => {
    const clock = manualClock();
    let slept = false;
    const sleeper = probe({ onValue: (_t, value, call) => call.inner().sleep(20, clock).then(() => ((slept = true), value)) });
    for (const options of [undefined, { signal: new AbortController().signal }]) {
      slept = false;
      const call = sleeper.execute(() => 'v', options);
      await flush();
      expect(clock.setTimeout).toHaveBeenLastCalledWith(expect.any(Function), 20);
      clock.advance(19);
      await flush();
      expect(slept).toBe(false);
      clock.advance(1);
      expect(await call).toBe('v');
      expect(slept).toBe(true);
    }
    expect(clock.clearTimeout).not.toHaveBeenCalled();
  });

  it('aborted by the caller, rejects with the reason at once and clears its timer', async () => {
    const clock = manualClock();
    const sleeping: Promise<void>[] = [];
    const sleeper = probe({
      onValue: (_t, _value, call) => {
        const sleep = call.inner().sleep(1_000, clock);
        sleeping.push(sleep);
        return sleep;
      },
    });
    const controller = new AbortController();
    const call = sleeper.execute(() => 'v', { signal: controller.signal });
    await flush();
    expect(clock.pending).toBe(1);
    const reason = new Error('gone');
    controller.abort(reason);
    expect(await rejectionOf(call)).toBe(reason);
    expect(await rejectionOf(sleeping[0] as Promise<void>)).toBe(reason);
    expect(clock.pending).toBe(0);
    expect(clock.clearTimeout).toHaveBeenCalledTimes(1);
  });

  it('in a call already aborted, rejects at once and arms no timer', async () => {
    const clock = manualClock();
    const sleeping: Promise<void>[] = [];
    const later = deferred<unknown>();
    const sleeper = probe({
      onError: (_t, _error, call) => {
        const inner = call.inner();
        void later.promise.then(() => {
          const sleep = inner.sleep(10, clock);
          sleeping.push(sleep);
          sleep.catch(() => {});
        });
        return later.promise;
      },
    });
    const controller = new AbortController();
    const call = sleeper.execute(() => Promise.reject(new Error('x')), { signal: controller.signal });
    await flush();
    const reason = new Error('gone');
    controller.abort(reason);
    await rejectionOf(call);
    later.resolve(undefined);
    await flush();
    expect(await rejectionOf(sleeping[0] as Promise<void>)).toBe(reason);
    expect(clock.setTimeout).not.toHaveBeenCalled();
  });

  it('a sleep that ended is not ended again by an abort that comes later', async () => {
    const clock = manualClock();
    const hold = deferred<string>();
    const sleeper = probe({ onValue: async (_t, _value, call) => (await call.inner().sleep(5, clock), hold.promise) });
    const controller = new AbortController();
    const call = sleeper.execute(() => 'v', { signal: controller.signal });
    await flush();
    clock.advance(5);
    await flush();
    controller.abort(new Error('gone'));
    await rejectionOf(call);
    expect(clock.clearTimeout).not.toHaveBeenCalled();
    hold.resolve('x');
  });

  it('in a retry, the backoff ends at once when the caller aborts', async () => {
    const clock = manualClock();
    const controller = new AbortController();
    const fn = vi.fn(() => Promise.reject(new Error('fails')));
    const call = retryWithBackoff({ maxRetries: 3, baseDelay: 1_000, jitter: 'none', clock }).execute(fn, { signal: controller.signal });
    await flush();
    expect(clock.pending).toBe(1);
    controller.abort(new Error('gone'));
    expect(await rejectionOf(call)).toEqual(new Error('gone'));
    expect(clock.pending).toBe(0);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('invoke()', () => {
  it('runs user code under the call with the context at the policy, and answers with what it returns', async () => {
    const contexts: number[] = [];
    const policy = probe({ onError: (_t, error, call) => call.invoke((ctx) => (contexts.push(ctx.attempt), `instead of ${(error as Error).message}`)) });
    const stack = compose(probe({ enter: (call) => call.setAttempt(4) }), policy);
    expect(await stack.execute(() => Promise.reject(new Error('x')))).toBe('instead of x');
    expect(await stack.execute(() => Promise.reject(new Error('y')), { signal: new AbortController().signal })).toBe('instead of y');
    expect(contexts).toEqual([4, 4]);
  });

  it('what the code throws, synchronously or not, is what invoke rejects with', async () => {
    const thrown = new Error('fallback failed');
    const sync = probe({
      onError: (_t, _e, call) =>
        call.invoke(() => {
          throw thrown;
        }),
    });
    const async = probe({ onError: (_t, _e, call) => call.invoke(() => Promise.reject(thrown)) });
    for (const policy of [sync, async]) {
      expect(await rejectionOf(policy.execute(() => Promise.reject(new Error('x'))))).toBe(thrown);
      expect(await rejectionOf(policy.execute(() => Promise.reject(new Error('x')), { signal: new AbortController().signal }))).toBe(thrown);
    }
  });

  it('a fallback function aborted by the caller settles with the reason at once, and its signal aborts', async () => {
    const controller = new AbortController();
    const invoked: Promise<unknown>[] = [];
    const signals: AbortSignal[] = [];
    const work = deferred<string>();
    const policy = probe({
      onError: (_t, _e, call) => {
        const answer = call.invoke((ctx) => (signals.push(ctx.signal), work.promise));
        invoked.push(answer);
        return answer;
      },
    });
    const call = policy.execute(() => Promise.reject(new Error('x')), { signal: controller.signal });
    await flush();
    const reason = new Error('gone');
    controller.abort(reason);
    expect(await rejectionOf(call)).toBe(reason);
    expect(await rejectionOf(invoked[0] as Promise<unknown>)).toBe(reason);
    expect(signals[0]?.reason).toBe(reason);
    work.resolve('late');
  });

  it('the work of a fallback function counts toward trackWork around the policy: released waits for it', async () => {
    const controller = new AbortController();
    const released = vi.fn();
    const work = deferred<string>();
    const stack = compose(
      probe({ enter: (call) => (call.trackWork(), 'outer'), released }),
      withFallback(() => work.promise),
    );
    const call = stack.execute(() => Promise.reject(new Error('x')), { signal: controller.signal });
    await flush();
    controller.abort(new Error('gone'));
    await rejectionOf(call);
    await flush();
    expect(released).not.toHaveBeenCalled();
    work.resolve('late');
    await flush();
    expect(released).toHaveBeenCalledTimes(1);
    expect(released).toHaveBeenCalledWith('outer');
  });

  it('in a call already aborted, rejects with the reason and never runs the code', async () => {
    vi.useFakeTimers();
    const code = vi.fn();
    const invoked: Promise<unknown>[] = [];
    const policy = probe({
      onError: (_t, error, call) => {
        const answer = call.invoke(code);
        invoked.push(answer);
        answer.catch(() => {});
        throw error;
      },
    });
    const call = rejectionOf(compose(withTimeout(10), policy).execute(hangUntilAborted));
    await vi.advanceTimersByTimeAsync(10);
    await call;
    expect(await rejectionOf(invoked[0] as Promise<unknown>)).toBeInstanceOf(Error);
    expect(code).not.toHaveBeenCalled();
  });
});

describe('a registry around policies that answer later', () => {
  it('counts a policy whose onValue or onError answers with a promise when that promise settles, with its latency', async () => {
    let now = 0;
    const registry = new MetricsRegistry({ now: () => now, buckets: [10, 100] });
    const later = deferred<string>();
    const failing = deferred<string>();
    const asyncValue = probe({ onValue: () => later.promise }, { name: 'value-later' });
    const asyncError = probe({ onError: () => failing.promise }, { name: 'error-later', kind: 'probe2' });
    registry.track(asyncValue);
    registry.track(asyncError);
    const first = asyncValue.execute(() => 'v');
    const second = asyncError.execute(() => Promise.reject(new Error('x')));
    await flush();
    let counts = registry.snapshot().policies.map((p) => [p.name, p.calls, p.successes, p.failures]);
    expect(counts).toEqual([
      ['value-later', 1, 0, 0],
      ['error-later', 1, 0, 0],
    ]);
    now = 50;
    later.resolve('later');
    failing.reject(new Error('still failing'));
    expect(await first).toBe('later');
    await rejectionOf(second);
    const snapshot = registry.snapshot().policies;
    counts = snapshot.map((p) => [p.name, p.calls, p.successes, p.failures]);
    expect(counts).toEqual([
      ['value-later', 1, 1, 0],
      ['error-later', 1, 0, 1],
    ]);
    expect(snapshot.map((p) => p.latency.sum)).toEqual([50, 50]);
  });

  it('counts a policy with run by how its promise settles', async () => {
    let now = 0;
    const registry = new MetricsRegistry({ now: () => now });
    const runner = probe({ run: (call) => call.inner().run() }, { name: 'runner' });
    registry.track(runner);
    const work = deferred<string>();
    const call = runner.execute(() => work.promise);
    now = 7;
    work.resolve('v');
    expect(await call).toBe('v');
    await rejectionOf(runner.execute(() => Promise.reject(new Error('x'))));
    const [entry] = registry.snapshot().policies;
    expect([entry?.calls, entry?.successes, entry?.failures, entry?.latency.sum]).toEqual([2, 1, 1, 7]);
  });
});
