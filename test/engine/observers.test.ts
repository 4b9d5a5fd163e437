/**
 * What the engine tells the watchers of a policy (a `MetricsRegistry` is one): each call that
 * enters, and how it left — a value, an error, or a refusal — also for waits and for answers
 * that come later; and a watcher that throws never breaks a call.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MetricsRegistry, compose, type Admission } from '../../src/index.js';
import type { CallObserver, Outcome } from '../../src/engine/observe.js';
import { stepsOf } from '../../src/engine/policy.js';
import { probe } from '../fixtures/layer-probe.js';
import { deferred, flush, rejectionOf } from '../fixtures/promises.js';

afterEach(() => {
  vi.unstubAllGlobals();
});

/** Puts `observer` on the one step of `policy` (as a registry does when it tracks it). */
function observe(policy: object, observer: CallObserver): void {
  (stepsOf(policy as never)[0] as { observer: CallObserver | undefined }).observer = observer;
}

/** An observer that records what it hears as `[token, outcome]`. */
function recording(token: number): CallObserver & { finishedWith: [number, Outcome][] } {
  return {
    now: () => 0,
    finishedWith: [],
    started: () => token,
    finished(got: number, outcome: Outcome) {
      this.finishedWith.push([got, outcome]);
    },
  };
}

describe('a watcher that throws', () => {
  it('from started is reported; the call goes on and the watcher hears its end with no token', async () => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    const broken = new Error('started is broken');
    const finished = vi.fn();
    const policy = probe({ enter: () => 'token' });
    observe(policy, {
      now: () => 0,
      started: () => {
        throw broken;
      },
      finished,
    });
    expect(await policy.execute(() => 'v')).toBe('v');
    expect(reportError).toHaveBeenCalledWith(broken);
    expect(finished).toHaveBeenCalledTimes(1);
    expect(finished.mock.calls[0]?.[0]).toBeNaN();
  });

  it('from finished is reported, after a value, an error, a refusal or a run, and the call keeps its outcome', async () => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    const broken = new Error('finished is broken');
    const observer: CallObserver = {
      now: () => 0,
      started: () => 1,
      finished: () => {
        throw broken;
      },
    };
    const plain = probe({ enter: () => 'token' });
    observe(plain, observer);
    expect(await plain.execute(() => 'v')).toBe('v');
    const failure = new Error('fn failed');
    expect(await rejectionOf(plain.execute(() => Promise.reject(failure)))).toBe(failure);
    const refusing = probe({
      enter: () => {
        throw new Error('refused');
      },
    });
    observe(refusing, observer);
    expect(await rejectionOf(refusing.execute(() => 'never'))).toEqual(new Error('refused'));
    const running = probe({ run: (call) => call.inner().run() });
    observe(running, observer);
    expect(await running.execute(() => 'v')).toBe('v');
    expect(reportError).toHaveBeenCalledTimes(4);
    expect(reportError).toHaveBeenCalledWith(broken);
  });

  it('goes to console.error where there is no reportError', async () => {
    vi.stubGlobal('reportError', undefined);
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const broken = new Error('broken');
      const policy = probe({});
      observe(policy, {
        now: () => 0,
        started: () => {
          throw broken;
        },
        finished: () => {
          throw broken;
        },
      });
      expect(await policy.execute(() => 'v')).toBe('v');
      expect(spy.mock.calls).toEqual([
        ['bulwark: a call observer failed', broken],
        ['bulwark: a call observer failed', broken],
      ]);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('what a watcher hears', () => {
  it('a refusal, a failure, a success, a wait refused, granted, or aborted, each once with the token of its start', async () => {
    const observer = recording(5);
    const admissions: Admission[] = [];
    const waiting = probe({
      enter: (call) => {
        const admission = call.wait(() => {});
        admissions.push(admission);
        return admission;
      },
    });
    observe(waiting, observer);
    const refused = waiting.execute(() => 'never');
    await flush();
    (admissions[0] as Admission).refuse(new Error('full'));
    await rejectionOf(refused);
    const granted = waiting.execute(() => 'v');
    await flush();
    (admissions[1] as Admission).grant();
    await granted;
    const failing = waiting.execute(() => Promise.reject(new Error('x')));
    await flush();
    (admissions[2] as Admission).grant();
    await rejectionOf(failing);
    const controller = new AbortController();
    const aborted = waiting.execute(() => 'never', { signal: controller.signal });
    await flush();
    controller.abort(new Error('gone'));
    await rejectionOf(aborted);
    await flush();
    expect(observer.finishedWith).toEqual([
      [5, 2],
      [5, 0],
      [5, 1],
      [5, 1],
    ]);
  });

  it('a MetricsRegistry times a wait from enter to the answer and counts what each policy of a stack did', async () => {
    let now = 100;
    const registry = new MetricsRegistry({ now: () => now, buckets: [5, 50] });
    const admissions: Admission[] = [];
    const waiting = probe(
      {
        enter: (call) => {
          const admission = call.wait();
          admissions.push(admission);
          return admission;
        },
      },
      { name: 'waiting' },
    );
    const later = deferred<string>();
    const answeringLater = probe({ onValue: () => later.promise }, { name: 'later' });
    const stack = compose(probe({}, { name: 'outer' }), waiting, answeringLater);
    registry.track(stack);
    const call = stack.execute(() => 'v');
    now = 120;
    (admissions[0] as Admission).grant();
    await flush();
    now = 150;
    later.resolve('answered later');
    expect(await call).toBe('answered later');
    const rows = registry.snapshot().policies.map((p) => [p.name, p.calls, p.successes, p.failures, p.rejections, p.latency.sum]);
    expect(rows).toEqual([
      ['outer', 1, 1, 0, 0, 50],
      ['waiting', 1, 1, 0, 0, 50],
      ['later', 1, 1, 0, 0, 30],
    ]);
  });
});
