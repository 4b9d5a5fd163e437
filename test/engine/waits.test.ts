/**
 * `call.wait()`: a call waiting at a policy of your own (a queue, a rate), and what its
 * `Admission` does: `grant(token)`, `refuse(error)`, and an abort while it waits. Seen through
 * the public API, by the policies around it, a breaker and a `MetricsRegistry`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, MetricsRegistry, TimeoutError, compose, isRefusal, withTimeout, type Admission, type InnerRun, type LayerCall } from '../../src/index.js';
import { probe } from '../fixtures/layer-probe.js';
import { deferred, flush, rejectionOf, track } from '../fixtures/promises.js';

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

/** A policy that makes every call wait in `queue` until the test grants or refuses it. */
function queueing(
  options: {
    track?: boolean;
    onAbort?: (reason: unknown) => void;
    name?: string;
    log?: string[];
    withoutOnAbort?: boolean;
  } = {},
) {
  const queue: Admission[] = [];
  const log = options.log ?? [];
  const policy = probe(
    {
      enter: (call: LayerCall) => {
        if (options.track === true) call.trackWork();
        const admission = options.withoutOnAbort === true
          ? call.wait()
          : call.wait((reason) => {
              log.push(`onAbort ${String((reason as Error).message)}`);
              queue.splice(queue.indexOf(admission), 1);
              options.onAbort?.(reason);
            });
        queue.push(admission);
        return admission;
      },
      onValue: (token, value) => (log.push(`onValue ${String(token)}`), value),
      onError: (token, error) => {
        log.push(`onError ${String(token)}`);
        throw error;
      },
      released: (token) => void log.push(`released ${String(token)}`),
    },
    { name: options.name ?? 'queue' },
  );
  return { policy, queue, log };
}

/** A policy outside the waiting one that records what it sees. */
function outside(log: string[], track = false) {
  return probe(
    {
      enter: (call) => {
        if (track) call.trackWork();
        return 'outer';
      },
      onValue: (_t, value) => (log.push(`outer onValue ${String(value)}`), value),
      onError: (_t, error) => {
        log.push(`outer onError ${isRefusal(error) ? 'refusal' : 'failure'} ${String((error as Error).message)}`);
        throw error;
      },
      released: () => void log.push('outer released'),
    },
    { name: 'outer' },
  );
}

describe.each([
  ['without a caller signal', () => undefined],
  ['with a caller signal', () => ({ signal: new AbortController().signal })],
])('wait() %s', (_label, options) => {
  it('grant(token) lets the call in; the token comes back to onValue and released', async () => {
    const { policy, queue, log } = queueing({ track: true });
    const fn = vi.fn(() => 'value');
    const call = policy.execute(fn, options());
    await flush();
    expect(fn).not.toHaveBeenCalled();
    expect(queue).toHaveLength(1);
    (queue[0] as Admission).grant('granted token');
    expect(await call).toBe('value');
    await flush();
    expect(fn).toHaveBeenCalledTimes(1);
    expect(log).toEqual(['onValue granted token', 'released granted token']);
  });

  it('grant(token) gives the token to onError too', async () => {
    const { policy, queue, log } = queueing({ track: true });
    const failure = new Error('fn failed');
    const call = policy.execute(() => Promise.reject(failure), options());
    await flush();
    (queue[0] as Admission).grant('granted token');
    expect(await rejectionOf(call)).toBe(failure);
    await flush();
    expect(log).toEqual(['onError granted token', 'released granted token']);
  });

  it('grant() without a token gives undefined back, not what enter returned', async () => {
    const { policy, queue, log } = queueing({ track: true });
    const call = policy.execute(() => 'value', options());
    await flush();
    (queue[0] as Admission).grant();
    expect(await call).toBe('value');
    await flush();
    expect(log).toEqual(['onValue undefined', 'released undefined']);
  });

  it('only the first grant or refuse counts', async () => {
    const { policy, queue } = queueing();
    const fn = vi.fn(() => 'value');
    const call = policy.execute(fn, options());
    await flush();
    const admission = queue[0] as Admission;
    admission.grant('first');
    admission.grant('second');
    const tooLate = new Error('too late');
    admission.refuse(tooLate);
    // A refuse that came too late does nothing, not even brand its error.
    expect(isRefusal(tooLate)).toBe(false);
    expect(await call).toBe('value');
    expect(fn).toHaveBeenCalledTimes(1);
    const refused = policy.execute(fn, options());
    await flush();
    const second = queue[1] as Admission;
    second.refuse(new Error('full'));
    second.grant('late');
    second.refuse(new Error('again'));
    expect(await rejectionOf(refused)).toEqual(new Error('full'));
    await flush();
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('refuse(error) turns the call away with that error, branded a refusal: no hook of the policy runs, the policies outside see it and are left', async () => {
    const log: string[] = [];
    const { policy, queue } = queueing({ track: true, log });
    const stack = compose(outside(log, true), policy);
    const fn = vi.fn();
    const call = stack.execute(fn, options());
    await flush();
    const error = new Error('queue full');
    (queue[0] as Admission).refuse(error);
    expect(await rejectionOf(call)).toBe(error);
    expect(isRefusal(error)).toBe(true);
    await flush();
    expect(fn).not.toHaveBeenCalled();
    expect(log).toEqual(['outer onError refusal queue full', 'outer released']);
  });

  it('a refused wait is a rejection for a registry and no failure for a breaker around', async () => {
    const registry = new MetricsRegistry({ now: () => 0 });
    const breaker = new CircuitBreaker({ failureThreshold: 1, name: 'b' });
    const log: string[] = [];
    const { policy, queue } = queueing({ name: 'queue' });
    const stack = compose(breaker, outside(log), policy);
    registry.track(stack);
    const call = stack.execute(() => 'never', options());
    await flush();
    (queue[0] as Admission).refuse(new Error('full'));
    await rejectionOf(call);
    const counts = Object.fromEntries(registry.snapshot().policies.map((p) => [p.name, [p.calls, p.successes, p.failures, p.rejections]]));
    expect(counts).toEqual({ b: [1, 0, 1, 0], outer: [1, 0, 1, 0], queue: [1, 0, 0, 1] });
    expect(breaker.state).toBe('closed');
    // A granted wait is a success, timed from enter to the answer.
    const granted = stack.execute(() => 'ok', options());
    await flush();
    (queue[1] as Admission).grant();
    expect(await granted).toBe('ok');
    const after = Object.fromEntries(registry.snapshot().policies.map((p) => [p.name, [p.calls, p.successes, p.failures, p.rejections]]));
    expect(after).toEqual({ b: [2, 1, 1, 0], outer: [2, 1, 1, 0], queue: [2, 1, 0, 1] });
  });

  it('a wait granted at once, while enter still runs, lets the call in', async () => {
    const log: string[] = [];
    const policy = probe({
      enter: (call) => {
        const admission = call.wait();
        admission.grant('now');
        return admission;
      },
      onValue: (token, value) => (log.push(`onValue ${String(token)}`), value),
    });
    expect(await policy.execute(() => 'value', options())).toBe('value');
    expect(log).toEqual(['onValue now']);
  });
});

describe('an abort while the call waits', () => {
  it('runs onAbort with the reason, answers the caller with it, and runs no hook of the waiting policy', async () => {
    const log: string[] = [];
    const { policy, queue } = queueing({ track: true, log });
    const stack = compose(outside(log, true), policy);
    const controller = new AbortController();
    const fn = vi.fn();
    const call = stack.execute(fn, { signal: controller.signal });
    await flush();
    const reason = new Error('caller gave up');
    controller.abort(reason);
    expect(await rejectionOf(call)).toBe(reason);
    await flush();
    expect(queue).toEqual([]);
    expect(fn).not.toHaveBeenCalled();
    expect(log).toEqual(['onAbort caller gave up', 'outer onError failure caller gave up', 'outer released']);
  });

  it('hands onAbort the context given to wait, so one function serves every waiting call', async () => {
    const aborted: [unknown, string][] = [];
    const onAbort = (reason: unknown, context: string): void => void aborted.push([reason, context]);
    let next = 0;
    const policy = probe({ enter: (call) => call.wait(onAbort, `place ${++next}`) });
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const calls = controllers.map((controller) => policy.execute(() => 'never', { signal: controller.signal }));
    await flush();
    const reason = new Error('second gave up');
    controllers[1]?.abort(reason);
    expect(await rejectionOf(calls[1] as Promise<unknown>)).toBe(reason);
    expect(aborted).toEqual([[reason, 'place 2']]);
    controllers[0]?.abort('first');
    controllers[2]?.abort('third');
    await Promise.allSettled(calls);
    expect(aborted.map(([, context]) => context)).toEqual(['place 2', 'place 1', 'place 3']);
  });

  it('a grant or refuse after the abort is ignored', async () => {
    const admissions: Admission[] = [];
    const policy = probe({ enter: (call) => (admissions.push(call.wait()), admissions.at(-1)) });
    const controller = new AbortController();
    const fn = vi.fn();
    const call = policy.execute(fn, { signal: controller.signal });
    await flush();
    controller.abort(new Error('gone'));
    expect(await rejectionOf(call)).toEqual(new Error('gone'));
    (admissions[0] as Admission).grant();
    (admissions[0] as Admission).refuse(new Error('no'));
    await flush();
    expect(fn).not.toHaveBeenCalled();
  });

  it('a refuse right after the abort, before the call is left, changes nothing: a failure, not a rejection', async () => {
    const registry = new MetricsRegistry({ now: () => 0 });
    const { policy, queue } = queueing({ name: 'queue' });
    registry.track(policy);
    const controller = new AbortController();
    const call = policy.execute(() => 'never', { signal: controller.signal });
    await flush();
    const admission = queue[0] as Admission;
    controller.abort(new Error('gone'));
    const late = new Error('late refusal');
    admission.refuse(late);
    expect(await rejectionOf(call)).toEqual(new Error('gone'));
    await flush();
    expect(isRefusal(late)).toBe(false);
    const [entry] = registry.snapshot().policies;
    expect([entry?.calls, entry?.successes, entry?.failures, entry?.rejections]).toEqual([1, 0, 1, 0]);
  });

  it('is a failure of the waiting policy for a registry, not a rejection', async () => {
    const registry = new MetricsRegistry({ now: () => 0 });
    const { policy } = queueing({ name: 'queue' });
    registry.track(policy);
    const controller = new AbortController();
    const call = policy.execute(() => 'never', { signal: controller.signal });
    await flush();
    controller.abort(new Error('gone'));
    await rejectionOf(call);
    await flush();
    const [entry] = registry.snapshot().policies;
    expect([entry?.calls, entry?.successes, entry?.failures, entry?.rejections]).toEqual([1, 0, 1, 0]);
  });

  it('by a timeout around the waiting policy ends the wait with the TimeoutError', async () => {
    vi.useFakeTimers();
    const log: string[] = [];
    const { policy, queue } = queueing({ log });
    const call = compose(withTimeout(50), policy).execute(() => 'never');
    const rejected = rejectionOf(call);
    await vi.advanceTimersByTimeAsync(50);
    const error = await rejected;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(queue).toEqual([]);
    expect(log).toEqual([`onAbort ${(error as Error).message}`]);
  });

  it('an onAbort that throws is reported; the call still answers with the reason', async () => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    const broken = new Error('onAbort is broken');
    const { policy } = queueing({
      onAbort: () => {
        throw broken;
      },
    });
    const controller = new AbortController();
    const call = policy.execute(() => 'never', { signal: controller.signal });
    await flush();
    controller.abort(new Error('gone'));
    expect(await rejectionOf(call)).toEqual(new Error('gone'));
    await flush();
    expect(reportError).toHaveBeenCalledWith(broken);
  });

  it('an onAbort that throws goes to console.error where there is no reportError', async () => {
    vi.stubGlobal('reportError', undefined);
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const broken = new Error('onAbort is broken');
      const { policy } = queueing({
        onAbort: () => {
          throw broken;
        },
      });
      const controller = new AbortController();
      const call = policy.execute(() => 'never', { signal: controller.signal });
      await flush();
      controller.abort(new Error('gone'));
      await rejectionOf(call);
      expect(spy).toHaveBeenCalledWith("bulwark: a policy's wait onAbort failed", broken);
    } finally {
      spy.mockRestore();
    }
  });

  it('a wait with no onAbort is ended all the same', async () => {
    const { policy } = queueing({ withoutOnAbort: true });
    const controller = new AbortController();
    const call = policy.execute(() => 'never', { signal: controller.signal });
    await flush();
    controller.abort(new Error('gone'));
    expect(await rejectionOf(call)).toEqual(new Error('gone'));
  });
});

describe('a wait started on a call already aborted at that place', () => {
  /** A policy that aborts the work inside it as soon as it is entered. */
  function abortingAtOnce(reason: unknown) {
    return probe({ enter: (call) => void call.openAbortScope().abort(reason) }, { abortsWork: true });
  }

  it('is ended in a microtask, after enter queued it: onAbort finds it, and the call answers with the reason', async () => {
    const log: string[] = [];
    const { policy, queue } = queueing({ log });
    let abortedInEnter: boolean | undefined;
    const looking = probe({ enter: (call) => void (abortedInEnter = call.aborted) });
    const reason = new Error('aborted before the wait');
    const fn = vi.fn();
    const call = track(compose(abortingAtOnce(reason), looking, policy).execute(fn));
    expect(log).toEqual([]);
    await flush();
    expect(call.error).toBe(reason);
    expect(abortedInEnter).toBe(true);
    expect(queue).toEqual([]);
    expect(log).toEqual(['onAbort aborted before the wait']);
    expect(fn).not.toHaveBeenCalled();
  });

  it('granted at once, lets the call in (its function is not run: the call is aborted) and runs no onAbort', async () => {
    const reason = new Error('aborted before the wait');
    const onAbort = vi.fn();
    const log: string[] = [];
    const granting = probe({
      enter: (call) => {
        const admission = call.wait(onAbort);
        admission.grant('granted');
        return admission;
      },
      onError: (token, error) => {
        log.push(`onError ${String(token)}`);
        throw error;
      },
    });
    const fn = vi.fn();
    const call = track(compose(abortingAtOnce(reason), granting).execute(fn));
    await flush();
    expect(call.error).toBe(reason);
    expect(log).toEqual(['onError granted']);
    expect(onAbort).not.toHaveBeenCalled();
    expect(fn).not.toHaveBeenCalled();
  });

  it('refused at once, answers with the refusal and runs no onAbort', async () => {
    const reason = new Error('aborted before the wait');
    const onAbort = vi.fn();
    const refusal = new Error('full');
    const refusing = probe({
      enter: (call) => {
        const admission = call.wait(onAbort);
        admission.refuse(refusal);
        return admission;
      },
    });
    const call = track(compose(abortingAtOnce(reason), refusing).execute(() => 'never'));
    await flush();
    expect(call.error).toBe(refusal);
    expect(isRefusal(refusal)).toBe(true);
    expect(onAbort).not.toHaveBeenCalled();
  });

  it('the function of a call aborted before it runs is never called', async () => {
    const reason = new Error('aborted before the function');
    const fn = vi.fn();
    expect(await rejectionOf(abortingAtOnce(reason).execute(fn))).toBe(reason);
    expect(fn).not.toHaveBeenCalled();
  });

  it('aborting an abort scope twice keeps the first reason', async () => {
    const first = new Error('first');
    const policy = probe(
      {
        enter: (call) => {
          const scope = call.openAbortScope();
          scope.abort(first);
          scope.abort(new Error('second'));
        },
      },
      { abortsWork: true },
    );
    expect(await rejectionOf(policy.execute(() => 'never'))).toBe(first);
  });
});

describe('a wait in the middle of a stack', () => {
  it('the policies inside run once it is granted, each with its own token, and the ones outside are left after them', async () => {
    const log: string[] = [];
    const labelled = (label: string) =>
      probe({
        enter: () => (log.push(`${label} enter`), label),
        onValue: (token, value) => (log.push(`${label} onValue ${String(token)}`), value),
      });
    const admissions: Admission[] = [];
    const waiting = probe({
      enter: (call) => {
        log.push('wait enter');
        const admission = call.wait();
        admissions.push(admission);
        return admission;
      },
      onValue: (token, value) => (log.push(`wait onValue ${String(token)}`), value),
    });
    const stack = compose(labelled('a'), labelled('b'), waiting, labelled('c'), labelled('d'));
    const call = stack.execute(() => (log.push('fn'), 'v'));
    await flush();
    expect(log).toEqual(['a enter', 'b enter', 'wait enter']);
    (admissions[0] as Admission).grant('w');
    expect(await call).toBe('v');
    expect(log).toEqual(['a enter', 'b enter', 'wait enter', 'c enter', 'd enter', 'fn', 'd onValue d', 'c onValue c', 'wait onValue w', 'b onValue b', 'a onValue a']);
  });

  it('a wait at the innermost policy runs the function once granted', async () => {
    const { policy, queue } = queueing();
    const stack = compose(probe({ enter: () => 'x' }), policy);
    const call = stack.execute(() => 'v');
    await flush();
    (queue[0] as Admission).grant();
    expect(await call).toBe('v');
  });

  it('an abort of a timeout inside the wait never reaches it: only waits inside an aborted scope end', async () => {
    vi.useFakeTimers();
    const log: string[] = [];
    const { policy, queue } = queueing({ log });
    const work = deferred<string>();
    const stack = compose(policy, withTimeout(10));
    const call = stack.execute(() => work.promise);
    const outcome = rejectionOf(call);
    await vi.advanceTimersByTimeAsync(0);
    (queue[0] as Admission).grant('in');
    await vi.advanceTimersByTimeAsync(10);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    expect(log).toEqual(['onError in']);
  });
});

describe('an abort that ends several waits of one call', () => {
  /** Starts attempts 1 and 2 at once and answers with the first to succeed (a hedge). */
  function racing(runs: InnerRun[]) {
    return probe(
      {
        run: (call: LayerCall) => {
          const inner = call.inner();
          const first = inner.start(1);
          const second = inner.start(2);
          runs.push(first, second);
          return Promise.any([first.outcome, second.outcome]);
        },
      },
      { abortsWork: true },
    );
  }

  it('reaches every wait before any policy is left: each onAbort runs before the onError of a policy whose function was running', async () => {
    const log: string[] = [];
    const queue = probe({
      enter: (call) => (call.attempt === 2 ? 'in' : call.wait(() => log.push('onAbort of attempt 1'))),
    });
    const inside = probe({
      onError: (_t, error, call) => {
        log.push(`onError of attempt ${call.attempt}`);
        throw error;
      },
    });
    const runs: InnerRun[] = [];
    const controller = new AbortController();
    // Attempt 1 waits in the queue; attempt 2 was let in and runs its function.
    const call = compose(racing(runs), queue, inside).execute(() => new Promise(() => {}), { signal: controller.signal });
    await flush();
    controller.abort(new Error('gone'));
    expect(await rejectionOf(call)).toEqual(new Error('gone'));
    await flush();
    expect(log).toEqual(['onAbort of attempt 1', 'onError of attempt 2']);
  });

  it('a wait granted at once on a run already aborted does not keep a later abort from the other runs', async () => {
    const runs: InnerRun[] = [];
    const aborting = probe({ enter: (call) => (call.attempt === 2 ? void call.openAbortScope().abort(new Error('run 2 aborted')) : undefined) }, { abortsWork: true });
    const onAbort = vi.fn();
    const grantingAtOnce = probe({
      enter: (call) => {
        // Attempt 1 goes straight in: its function is running when attempt 2 waits here.
        if (call.attempt === 1) return 'in';
        const admission = call.wait(onAbort);
        admission.grant('now');
        return admission;
      },
    });
    const controller = new AbortController();
    const call = track(compose(racing(runs), aborting, grantingAtOnce).execute((ctx) => (ctx.attempt === 1 ? new Promise(() => {}) : 'never'), { signal: controller.signal }));
    const first = track((runs[0] as InnerRun).outcome);
    const second = track((runs[1] as InnerRun).outcome);
    await flush();
    expect(second.error).toEqual(new Error('run 2 aborted'));
    expect(first.settled).toBe(false);
    expect(call.settled).toBe(false);
    controller.abort(new Error('gone'));
    await flush();
    expect(call.error).toEqual(new Error('gone'));
    expect(first.error).toEqual(new Error('gone'));
    // The wait was granted before it could be ended: its onAbort never runs.
    expect(onAbort).not.toHaveBeenCalled();
  });
});

describe('policies entered after a wait', () => {
  /** A policy that makes the call wait until the next macrotask, after setting the attempt to `attempt` (if given). */
  function waitingAWhile(attempt?: number) {
    return probe({
      enter: (call) => {
        if (attempt !== undefined) call.setAttempt(attempt);
        const admission = call.wait();
        setImmediate(() => admission.grant());
        return admission;
      },
    });
  }

  it('each see in onValue the attempt they were entered at, even when one opened scopes of its own', async () => {
    const seen: string[] = [];
    const stack = compose(
      probe({ enter: (call) => call.setAttempt(5) }),
      waitingAWhile(),
      probe({
        enter: (call) => call.setAttempt(7),
        onValue: (_t, value, call) => (seen.push(`onValue at ${call.attempt}`), value),
      }),
    );
    expect(await stack.execute(({ attempt }) => attempt)).toBe(7);
    expect(seen).toEqual(['onValue at 5']);
  });

  it('see in onError the attempt they were entered at when a wait inside them is refused', async () => {
    const seen: string[] = [];
    const stack = compose(
      probe({ enter: () => 'first' }),
      waitingAWhile(5),
      probe({
        onError: (_t, error, call) => {
          seen.push(`onError at ${call.attempt}`);
          throw error;
        },
      }),
      probe({
        enter: (call) => {
          const admission = call.wait();
          setImmediate(() => admission.refuse(new Error('full')));
          return admission;
        },
      }),
    );
    expect(await rejectionOf(stack.execute(() => 'never'))).toEqual(new Error('full'));
    expect(seen).toEqual(['onError at 5']);
  });
});

// "The token replaces the one enter returned": any value, even the policy's own Admission. A
// policy granted that way was let in, and is left like any other when the call fails.
it('a policy that grants with its own Admission as the token gets onError and released when the call fails', async () => {
  const log: string[] = [];
  const policy = probe({
    enter: (call) => {
      call.trackWork();
      const admission = call.wait();
      setImmediate(() => admission.grant(admission));
      return admission;
    },
    onError: (token, error) => {
      log.push(`onError ${token instanceof Object ? 'admission' : String(token)}`);
      throw error;
    },
    released: () => void log.push('released'),
  });
  await rejectionOf(policy.execute(() => Promise.reject(new Error('x'))));
  await flush();
  expect(log).toEqual(['onError admission', 'released']);
  log.length = 0;
  await rejectionOf(policy.execute(() => Promise.reject(new Error('x')), { signal: new AbortController().signal }));
  await flush();
  expect(log).toEqual(['onError admission', 'released']);
});
