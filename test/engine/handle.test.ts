/**
 * The `LayerCall` handle as a policy author uses it: which method belongs to which hook (and
 * the error a misplaced call throws), `setAttempt`, `trackWork` and `released`, `afterStart`,
 * the tokens each hook gets back, and the order hooks run in. Everything goes through the
 * public API and small policies written against `LayerPolicy`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, MetricsRegistry, compose, isRefusal, retryWithBackoff, withTimeout, type ExecutionContext, type LayerCall, type Policy } from '../../src/index.js';
import { probe, recorder } from '../fixtures/layer-probe.js';
import { deferred, flush, flushMicrotasks, rejectionOf } from '../fixtures/promises.js';

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

const VALID_ONLY_IN_HOOK = 'A LayerCall is valid only while the hook that received it runs: keep inner() for later';

/** Calls the enter-only method `method` of `call` with arguments that would be valid in enter. */
function callEnterMethod(call: LayerCall, method: string): unknown {
  switch (method) {
    case 'setAttempt':
      return call.setAttempt(2);
    case 'openAbortScope':
      return call.openAbortScope();
    case 'trackWork':
      return call.trackWork();
    case 'afterStart':
      return call.afterStart(() => {});
    default:
      return call.wait();
  }
}

const ENTER_ONLY = ['setAttempt', 'openAbortScope', 'trackWork', 'afterStart', 'wait'];

describe('a handle method called in the wrong hook throws an Error that says where it belongs', () => {
  it.each(ENTER_ONLY)('%s() in onValue, in onError and in run: "can only be called in enter"', async (method) => {
    const message = `LayerCall.${method}() can only be called in enter`;
    const inOnValue = probe({ onValue: (_token, _value, call) => callEnterMethod(call, method) }, { abortsWork: true });
    expect(await rejectionOf(inOnValue.execute(() => 1))).toEqual(new Error(message));
    const inOnError = probe({ onError: (_token, _error, call) => callEnterMethod(call, method) }, { abortsWork: true });
    expect(await rejectionOf(inOnError.execute(() => Promise.reject(new Error('boom'))))).toEqual(new Error(message));
    const inRun = probe({ run: async (call) => callEnterMethod(call, method) }, { abortsWork: true });
    expect(await rejectionOf(inRun.execute(() => 1))).toEqual(new Error(message));
  });

  it('inner() in enter: "can only be called in onValue, onError or run", and the call is refused with it', async () => {
    const fn = vi.fn(() => 1);
    const policy = probe({ enter: (call) => call.inner() });
    const error = await rejectionOf(policy.execute(fn));
    expect(error).toEqual(new Error('LayerCall.inner() can only be called in onValue, onError or run'));
    expect(isRefusal(error)).toBe(true);
    expect(fn).not.toHaveBeenCalled();
  });

  it('invoke() in enter answers with a rejection and never runs the code', async () => {
    const code = vi.fn(() => 'fallback');
    let invoked: Promise<unknown> | undefined;
    const policy = probe({
      enter: (call) => {
        invoked = call.invoke(code);
        invoked.catch(() => {});
      },
    });
    expect(await policy.execute(() => 'value')).toBe('value');
    expect(await rejectionOf(invoked as Promise<unknown>)).toEqual(new Error('LayerCall.invoke() can only be called in onValue, onError or run'));
    expect(code).not.toHaveBeenCalled();
  });

  it('every method is allowed in its own hook', async () => {
    const seen: string[] = [];
    const outer = probe(
      {
        enter: (call) => {
          call.setAttempt(3);
          call.trackWork();
          call.afterStart(() => seen.push('check'));
          call.openAbortScope();
          seen.push(`enter attempt ${call.attempt}`);
          return 'token';
        },
        onValue: (_token, value, call) => {
          call.inner();
          seen.push(`onValue attempt ${call.attempt}`);
          return call.invoke(() => `${String(value)}+`);
        },
      },
      { abortsWork: true },
    );
    expect(await outer.execute(async ({ attempt }) => (await flush(), `attempt ${attempt}`))).toBe('attempt 3+');
    expect(seen).toEqual(['enter attempt 3', 'check', 'onValue attempt 1']);
  });
});

describe('a handle kept past its hook', () => {
  /** Runs one call through `policy` (whose hooks store their handle in `kept`) and returns the handle. */
  async function keptFrom(make: (keep: (call: LayerCall) => void) => Policy<unknown>, options?: { signal: AbortSignal }): Promise<LayerCall> {
    let kept: LayerCall | undefined;
    const policy = make((call) => void (kept = call));
    await policy.execute(() => 'value', options).catch(() => {});
    expect(kept).toBeDefined();
    return kept as LayerCall;
  }

  function expectDead(kept: LayerCall): void {
    expect(() => kept.attempt).toThrow(new Error(VALID_ONLY_IN_HOOK));
    expect(() => kept.context).toThrow(new Error(VALID_ONLY_IN_HOOK));
    expect(() => kept.trackWork()).toThrow(new Error('LayerCall.trackWork() can only be called in enter'));
    expect(() => kept.inner()).toThrow(new Error('LayerCall.inner() can only be called in onValue, onError or run'));
  }

  it('from an enter that let the call in, or refused it', async () => {
    expectDead(await keptFrom((keep) => probe({ enter: keep })));
    expectDead(
      await keptFrom((keep) =>
        probe({
          enter: (call) => {
            keep(call);
            throw new Error('refused');
          },
        }),
      ),
    );
  });

  it('from an enter that made the call wait', async () => {
    expectDead(
      await keptFrom((keep) =>
        probe({
          enter: (call) => {
            keep(call);
            const admission = call.wait();
            queueMicrotask(() => admission.grant());
            return admission;
          },
        }),
      ),
    );
  });

  it('from onValue and onError, whether they answer or throw', async () => {
    expectDead(await keptFrom((keep) => probe({ onValue: (_t, value, call) => (keep(call), value) })));
    expectDead(
      await keptFrom((keep) =>
        probe({
          onValue: (_t, _value, call) => {
            keep(call);
            throw new Error('no');
          },
        }),
      ),
    );
    const failing = (keep: (call: LayerCall) => void, answer: boolean) =>
      compose(
        probe({
          onError: (_t, error, call) => {
            keep(call);
            if (answer) return 'instead';
            throw error;
          },
        }),
        probe({
          onValue: () => {
            throw new Error('inner failure');
          },
        }),
      );
    expectDead(await keptFrom((keep) => failing(keep, true)));
    expectDead(await keptFrom((keep) => failing(keep, false)));
  });

  it('from run, whether it answers or throws synchronously', async () => {
    expectDead(await keptFrom((keep) => probe({ run: (call) => (keep(call), call.inner().run()) })));
    expectDead(
      await keptFrom((keep) =>
        probe({
          run: (call) => {
            keep(call);
            throw new Error('sync');
          },
        }),
      ),
    );
  });

  it('aborted cannot be read on a call that can be aborted', async () => {
    const kept = await keptFrom((keep) => probe({ enter: keep }), { signal: new AbortController().signal });
    expect(() => kept.aborted).toThrow(new Error(VALID_ONLY_IN_HOOK));
    expect(kept.callerAborted).toBe(false);
  });

  it('invoke() answers with a rejection and runs nothing', async () => {
    const kept = await keptFrom((keep) => probe({ onValue: (_t, value, call) => (keep(call), value) }));
    const code = vi.fn();
    expect(await rejectionOf(kept.invoke(code))).toEqual(new Error('LayerCall.invoke() can only be called in onValue, onError or run'));
    expect(code).not.toHaveBeenCalled();
  });
});

describe('a synchronous throw of run', () => {
  it('is the policy’s rejection: the policies outside see it in onError', async () => {
    const boom = new Error('run threw');
    const seen: unknown[] = [];
    const outer = probe({
      onError: (_t, error) => {
        seen.push(error);
        throw error;
      },
    });
    const stack = compose(
      outer,
      probe({
        run: () => {
          throw boom;
        },
      }),
    );
    expect(await rejectionOf(stack.execute(() => 'never'))).toBe(boom);
    expect(seen).toEqual([boom]);
  });
});

describe('setAttempt', () => {
  it('makes the policies inside and the function see that attempt, while the policy itself is left at its own', async () => {
    const seen: string[] = [];
    const stack = compose(
      probe({
        enter: (call) => {
          seen.push(`outer enter ${call.attempt}`);
          call.setAttempt(4);
        },
        onValue: (_t, value, call) => (seen.push(`outer onValue ${call.attempt}`), value),
      }),
      probe({
        enter: (call) => void seen.push(`inner enter ${call.attempt} ${call.context.attempt}`),
        onValue: (_t, value, call) => (seen.push(`inner onValue ${call.attempt}`), value),
      }),
    );
    expect(await stack.execute(({ attempt }) => attempt)).toBe(4);
    expect(seen).toEqual(['outer enter 1', 'inner enter 4 4', 'inner onValue 4', 'outer onValue 1']);
  });

  it('to the attempt already current changes nothing: the function gets the very context the policy saw', async () => {
    let before: ExecutionContext | undefined;
    const policy = probe({
      enter: (call) => {
        before = call.context;
        call.setAttempt(1);
      },
    });
    let got: ExecutionContext | undefined;
    await policy.execute((ctx) => void (got = ctx));
    expect(got).toBe(before);
  });

  it('a retry restarts the attempts inside it at 1 when it is itself inside another retry', async () => {
    const attempts: number[] = [];
    let calls = 0;
    const stack = compose(
      retryWithBackoff({ maxRetries: 1, baseDelay: 0, jitter: 'none' }),
      probe({ onError: (_t, error) => Promise.reject(error) }),
      retryWithBackoff({ maxRetries: 1, baseDelay: 0, jitter: 'none' }),
    );
    await stack
      .execute(({ attempt }) => {
        attempts.push(attempt);
        calls++;
        throw new Error(`failure ${calls}`);
      })
      .catch(() => {});
    expect(attempts).toEqual([1, 2, 1, 2]);
  });
});

describe('trackWork and released', () => {
  it('released runs once, with the token enter returned, right after the policy is left', async () => {
    const log: string[] = [];
    const tracked = probe({
      enter: (call) => {
        call.trackWork();
        log.push('enter');
        return 'the token';
      },
      onValue: (_t, value) => (log.push('onValue'), value),
      released: (token) => void log.push(`released ${String(token)}`),
    });
    const stack = compose(recorder(log, 'outer'), tracked);
    expect(await stack.execute(() => (log.push('fn'), 'v'))).toBe('v');
    expect(log).toEqual(['outer.enter', 'enter', 'fn', 'onValue', 'released the token', 'outer.onValue']);
  });

  it('in a call with a caller signal, released waits for the work to settle after the caller aborted, and runs once', async () => {
    const released = vi.fn();
    const policy = probe({ enter: (call) => (call.trackWork(), 'token'), released });
    const work = deferred<string>();
    const controller = new AbortController();
    const call = policy.execute(() => work.promise, { signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    expect(await rejectionOf(call)).toEqual(new Error('caller gave up'));
    await flush();
    expect(released).not.toHaveBeenCalled();
    work.resolve('late');
    await flush();
    expect(released).toHaveBeenCalledTimes(1);
    expect(released).toHaveBeenCalledWith('token');
  });

  it('in a call with a caller signal that is never aborted, released runs once the policy is left', async () => {
    const log: string[] = [];
    const policy = probe({
      enter: (call) => (call.trackWork(), 'token'),
      onValue: (_t, value) => (log.push('onValue'), value),
      released: (token) => void log.push(`released ${String(token)}`),
    });
    expect(await policy.execute(() => 'v', { signal: new AbortController().signal })).toBe('v');
    await flush();
    expect(log).toEqual(['onValue', 'released token']);
  });

  it('several policies of one stack each get their own token, once', async () => {
    const released: unknown[] = [];
    const tracking = (token: string) => probe({ enter: (call) => (call.trackWork(), token), released: (t) => void released.push(t) });
    const stack = compose(tracking('a'), tracking('b'), tracking('c'));
    await stack.execute(() => 1);
    expect(released).toEqual(['c', 'b', 'a']);
    released.length = 0;
    await stack.execute(() => 1, { signal: new AbortController().signal });
    expect(released).toEqual(['c', 'b', 'a']);
  });

  /** `depth` policies, the one at `at` tracking its work (and maybe refusing), the others recording their tokens. */
  function deepStack(depth: number, at: number, tracked: { enter?: (call: LayerCall) => unknown; released: (token: unknown) => void }) {
    const policies = Array.from({ length: depth }, (_, index) =>
      index === at
        ? probe({ enter: tracked.enter ?? ((call) => (call.trackWork(), `token ${index}`)), released: tracked.released })
        : probe({ enter: () => `token ${index}`, onValue: (token, value) => [...(value as unknown[]), token] }),
    );
    return compose(...policies);
  }

  it.each([
    ['without a caller signal', false],
    ['with a caller signal', true],
  ])('in a stack deeper than 31 policies, released runs once after the work settled (%s)', async (_label, withSignal) => {
    for (const at of [0, 30, 31, 35, 39]) {
      const released = vi.fn();
      const work = deferred<unknown[]>();
      const stack = deepStack(40, at, { released });
      const call = stack.execute(() => work.promise, withSignal ? { signal: new AbortController().signal } : undefined);
      await flush();
      expect(released).not.toHaveBeenCalled();
      work.resolve([]);
      const value = (await call) as unknown[];
      // Each policy but the tracked one passed its own token on: tokens reach every slot.
      expect(value).toEqual(Array.from({ length: 40 }, (_, index) => `token ${39 - index}`).filter((token) => token !== `token ${at}`));
      await flush();
      expect(released).toHaveBeenCalledTimes(1);
      expect(released).toHaveBeenCalledWith(`token ${at}`);
    }
  });

  it.each([
    ['without a caller signal', false],
    ['with a caller signal', true],
  ])('in a stack deeper than 31 policies, a policy that tracks its work and then refuses gets released(undefined) at once (%s)', async (_label, withSignal) => {
    for (const at of [3, 31, 36]) {
      const released = vi.fn();
      const fn = vi.fn();
      const stack = deepStack(40, at, {
        enter: (call) => {
          call.trackWork();
          throw new Error(`refused at ${at}`);
        },
        released,
      });
      const error = await rejectionOf(stack.execute(fn, withSignal ? { signal: new AbortController().signal } : undefined));
      expect(error).toEqual(new Error(`refused at ${at}`));
      expect(released).toHaveBeenCalledTimes(1);
      expect(released).toHaveBeenCalledWith(undefined);
      expect(fn).not.toHaveBeenCalled();
      await flush();
      expect(released).toHaveBeenCalledTimes(1);
    }
  });

  it.each([
    ['without a caller signal', false],
    ['with a caller signal', true],
  ])('a policy that tracks its work, sets the attempt and then refuses still gets released once (%s)', async (_label, withSignal) => {
    const log: string[] = [];
    const stack = compose(
      probe({
        enter: (call) => void call.trackWork(),
        onError: (_t, error) => {
          log.push('outer onError');
          throw error;
        },
        released: () => void log.push('outer released'),
      }),
      probe({
        enter: (call) => {
          call.trackWork();
          call.setAttempt(2);
          throw new Error('refused');
        },
        released: (token) => void log.push(`inner released ${String(token)}`),
      }),
    );
    await rejectionOf(stack.execute(() => 'never', withSignal ? { signal: new AbortController().signal } : undefined));
    await flush();
    expect(log).toEqual(['inner released undefined', 'outer onError', 'outer released']);
  });

  it('a refusal after a wait, in a policy that tracks its work, releases only that policy at once: the ones outside when they are left', async () => {
    const log: string[] = [];
    const stack = compose(
      probe({
        enter: (call) => (call.trackWork(), 'outer'),
        onError: (_t, error) => {
          log.push('outer onError');
          throw error;
        },
        released: (token) => void log.push(`released ${String(token)}`),
      }),
      probe({
        enter: (call) => {
          const admission = call.wait();
          queueMicrotask(() => admission.grant('granted'));
          return admission;
        },
        onError: (_t, error) => {
          log.push('middle onError');
          throw error;
        },
      }),
      probe({
        enter: (call) => {
          call.trackWork();
          throw new Error('refused');
        },
        released: (token) => void log.push(`released ${String(token)}`),
      }),
    );
    await rejectionOf(stack.execute(() => 'never', { signal: new AbortController().signal }));
    await flush();
    expect(log).toEqual(['released undefined', 'middle onError', 'outer onError', 'released outer']);
  });

  it.each([
    ['without a caller signal', false],
    ['with a caller signal', true],
  ])('only a policy that called trackWork gets released, at any depth of a stack (%s)', async (_label, withSignal) => {
    for (const [tracked, depth] of [
      [0, 40],
      [1, 40],
      [30, 32],
      [31, 40],
      [32, 40],
      [33, 40],
      [39, 40],
    ] as const) {
      const released: unknown[] = [];
      const stack = compose(
        ...Array.from({ length: depth }, (_, index) =>
          probe({
            enter: (call) => {
              if (index === tracked) call.trackWork();
              return index;
            },
            released: (token) => void released.push(token),
          }),
        ),
      );
      expect(await stack.execute(() => 'v', withSignal ? { signal: new AbortController().signal } : undefined)).toBe('v');
      await flush();
      expect(released).toEqual([tracked]);
    }
  });

  // The bit of slot n is `1 << n`, and `1 << 32` is `1 << 0`: only the first 31 slots may have one.
  it('in a stack of 33 policies, the policy at slot 32 is not released when the one at slot 0 tracked its work, nor twice when it tracked its own', async () => {
    const released: unknown[] = [];
    const stack = compose(
      ...Array.from({ length: 33 }, (_, index) =>
        probe({
          enter: (call) => {
            if (index === 0) call.trackWork();
            return index;
          },
          released: (token) => void released.push(token),
        }),
      ),
    );
    await stack.execute(() => 'v');
    expect(released).toEqual([0]);
    const both: unknown[] = [];
    const tracking = compose(
      ...Array.from({ length: 33 }, (_, index) =>
        probe({
          enter: (call) => {
            if (index === 0 || index === 32) call.trackWork();
            return index;
          },
          released: (token) => void both.push(token),
        }),
      ),
    );
    await tracking.execute(() => 'v');
    expect(both).toEqual([32, 0]);
  });

  it.each([
    ['without a caller signal', false],
    ['with a caller signal', true],
  ])('a refusal releases the refusing policy, then only the policies outside it that tracked their work (%s)', async (_label, withSignal) => {
    for (const [tracked, refusing] of [
      [0, 5],
      [0, 32],
      [3, 35],
      [31, 33],
      [33, 38],
    ] as const) {
      const released: string[] = [];
      const stack = compose(
        ...Array.from({ length: 40 }, (_, index) =>
          probe({
            enter: (call) => {
              if (index === tracked || index === refusing) call.trackWork();
              if (index === refusing) throw new Error(`refused at ${index}`);
              return index;
            },
            released: (token) => void released.push(`${index}:${String(token)}`),
          }),
        ),
      );
      const fn = vi.fn();
      expect(await rejectionOf(stack.execute(fn, withSignal ? { signal: new AbortController().signal } : undefined))).toEqual(new Error(`refused at ${refusing}`));
      await flush();
      expect(released).toEqual([`${refusing}:undefined`, `${tracked}:${tracked}`]);
      expect(fn).not.toHaveBeenCalled();
    }
  });

  it('a released hook that throws is reported, and the call keeps its own outcome', async () => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    const broken = new Error('released is broken');
    const policy = probe({
      enter: (call) => void call.trackWork(),
      released: () => {
        throw broken;
      },
    });
    expect(await policy.execute(() => 'fine')).toBe('fine');
    expect(await policy.execute(() => 'fine', { signal: new AbortController().signal })).toBe('fine');
    await flush();
    expect(reportError).toHaveBeenCalledTimes(2);
    expect(reportError).toHaveBeenCalledWith(broken);
    const failure = new Error('the call failed');
    expect(await rejectionOf(policy.execute(() => Promise.reject(failure)))).toBe(failure);
    expect(reportError).toHaveBeenCalledTimes(3);
  });

  it('a released hook that throws goes to console.error where there is no reportError', async () => {
    vi.stubGlobal('reportError', undefined);
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const broken = new Error('released is broken');
      const policy = probe({
        enter: (call) => void call.trackWork(),
        released: () => {
          throw broken;
        },
      });
      expect(await policy.execute(() => 'fine')).toBe('fine');
      expect(spy).toHaveBeenCalledWith("bulwark: a policy's released() hook failed", broken);
    } finally {
      spy.mockRestore();
    }
  });

  it('a policy without a released hook may track its work', async () => {
    const policy = probe({ enter: (call) => void call.trackWork() });
    expect(await policy.execute(() => 'fine')).toBe('fine');
    expect(await policy.execute(() => 'fine', { signal: new AbortController().signal })).toBe('fine');
    await expect(
      probe({
        enter: (call) => {
          call.trackWork();
          throw new Error('no');
        },
      }).execute(() => 1),
    ).rejects.toThrow('no');
  });
});

describe('afterStart', () => {
  it('runs the check once, in a microtask after the function started', async () => {
    const check = vi.fn();
    let checkedBeforeFn: boolean | undefined;
    const policy = probe({ enter: (call) => call.afterStart(check) });
    const work = deferred<string>();
    const call = policy.execute(() => {
      checkedBeforeFn = check.mock.calls.length > 0;
      return work.promise;
    });
    expect(checkedBeforeFn).toBe(false);
    expect(check).not.toHaveBeenCalled();
    await flushMicrotasks();
    expect(check).toHaveBeenCalledTimes(1);
    work.resolve('done');
    expect(await call).toBe('done');
    expect(check).toHaveBeenCalledTimes(1);
  });

  it.each([2, 3, 5])('runs each of %i checks of one stack once, in the order they were given', async (count) => {
    const ran: number[] = [];
    const stack = compose(...Array.from({ length: count }, (_, index) => probe({ enter: (call) => call.afterStart(() => ran.push(index)) })));
    await stack.execute(() => 'v');
    await flushMicrotasks();
    expect(ran).toEqual(Array.from({ length: count }, (_, index) => index));
  });

  it('runs a check once per attempt, not again for the attempts after', async () => {
    const check = vi.fn();
    let calls = 0;
    const stack = compose(retryWithBackoff({ maxRetries: 2, baseDelay: 0, jitter: 'none' }), probe({ enter: (call) => call.afterStart(check) }));
    await stack.execute(() => {
      calls++;
      if (calls < 3) throw new Error('again');
      return 'v';
    });
    await flush();
    expect(check).toHaveBeenCalledTimes(3);
  });

  it('checks of a call that waited run once, and so does the one given after the wait', async () => {
    const outer = vi.fn();
    const inner = vi.fn();
    const stack = compose(
      probe({
        enter: (call) => {
          call.afterStart(outer);
          const admission = call.wait();
          setTimeout(() => admission.grant(), 1);
          return admission;
        },
      }),
      probe({ enter: (call) => call.afterStart(inner) }),
    );
    expect(await stack.execute(() => 'v')).toBe('v');
    await flush();
    expect(outer).toHaveBeenCalledTimes(1);
    expect(inner).toHaveBeenCalledTimes(1);
  });
});

describe('tokens and the order hooks run in', () => {
  it('enter runs outermost first, onValue innermost first, each policy getting back its own token', async () => {
    const log: string[] = [];
    const tokenOf = (label: string) =>
      probe({
        enter: () => (log.push(`${label}.enter`), { label }),
        onValue: (token, value) => (log.push(`${label}.onValue(${(token as { label: string }).label})`), `${String(value)}${label}`),
      });
    const stack = compose(...['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map(tokenOf));
    expect(await stack.execute(() => (log.push('fn'), '>'))).toBe('>hgfedcba');
    expect(log).toEqual([
      'a.enter',
      'b.enter',
      'c.enter',
      'd.enter',
      'e.enter',
      'f.enter',
      'g.enter',
      'h.enter',
      'fn',
      'h.onValue(h)',
      'g.onValue(g)',
      'f.onValue(f)',
      'e.onValue(e)',
      'd.onValue(d)',
      'c.onValue(c)',
      'b.onValue(b)',
      'a.onValue(a)',
    ]);
  });

  it('a policy that returns no token gets undefined back, wherever it stands in a deep stack', async () => {
    const seen: unknown[] = [];
    const tokens = ['a', undefined, 'c', 'd', 'e', undefined, 'g', undefined, 'i'];
    const stack = compose(
      ...tokens.map((token) =>
        probe({
          enter: () => token,
          onValue: (got, value) => (seen.push(got), value),
          onError: (got, error) => {
            seen.push(got);
            throw error;
          },
        }),
      ),
    );
    await stack.execute(() => 'v');
    expect(seen).toEqual([...tokens].reverse());
    seen.length = 0;
    await rejectionOf(stack.execute(() => Promise.reject(new Error('x')), { signal: new AbortController().signal }));
    expect(seen).toEqual([...tokens].reverse());
  });

  it('onError runs innermost first with each token, also around a policy with run and across nested composes', async () => {
    const log: string[] = [];
    const hooks = (label: string) =>
      probe({
        enter: () => label,
        onError: (token, error) => {
          log.push(`${label}.onError(${String(token)})`);
          throw error;
        },
      });
    const runner = probe({ run: (call) => (log.push('run'), call.inner().run()) });
    const stack = compose(hooks('a'), compose(hooks('b'), runner), hooks('c'), hooks('d'), hooks('e'), hooks('f'), hooks('g'));
    const failure = new Error('fn failed');
    expect(await rejectionOf(stack.execute(() => Promise.reject(failure)))).toBe(failure);
    expect(log).toEqual(['run', 'g.onError(g)', 'f.onError(f)', 'e.onError(e)', 'd.onError(d)', 'c.onError(c)', 'b.onError(b)', 'a.onError(a)']);
  });

  it('a policy with no enter gets undefined as its token, a policy with no onValue or onError passes the outcome through', async () => {
    const tokens: unknown[] = [];
    const stack = compose(
      probe({ onValue: (token, value) => (tokens.push(token), value), onError: (token, error) => (tokens.push(token), `saved from ${String((error as Error).message)}`) }),
      probe({ enter: () => 'unused' }),
      probe({}),
    );
    expect(await stack.execute(() => 'v')).toBe('v');
    expect(await stack.execute(() => Promise.reject(new Error('x')))).toBe('saved from x');
    expect(tokens).toEqual([undefined, undefined]);
  });

  it('the policies inside a wait run in the async context of the caller, not of whoever granted it', async () => {
    const storage = new AsyncLocalStorage<string>();
    const admissions: { grant(token?: unknown): void }[] = [];
    const seen: (string | undefined)[] = [];
    const stack = compose(
      probe({
        enter: (call) => {
          const admission = call.wait();
          admissions.push(admission);
          return admission;
        },
      }),
      probe({ enter: () => void seen.push(storage.getStore()) }),
    );
    const call = storage.run('caller', () => stack.execute(() => storage.getStore()));
    await flush();
    storage.run('granter', () => (admissions[0] as { grant(): void }).grant());
    expect(await call).toBe('caller');
    expect(seen).toEqual(['caller']);
  });
});

describe('onValue and onError answering', () => {
  it('an onValue that returns a promise answers later; the policies outside see what it settles with', async () => {
    const later = deferred<string>();
    const outerSaw: unknown[] = [];
    const stack = compose(
      probe({
        onValue: (_t, value) => (outerSaw.push(value), `outer(${String(value)})`),
        onError: (_t, error) => (outerSaw.push(error), 'recovered'),
      }),
      probe({ onValue: () => later.promise }),
    );
    const call = stack.execute(() => 'first');
    await flush();
    expect(outerSaw).toEqual([]);
    later.resolve('second');
    expect(await call).toBe('outer(second)');
    const failed = deferred<string>();
    const failing = compose(
      probe({ onError: (_t, error) => (outerSaw.push(error), 'recovered') }),
      probe({ onValue: () => failed.promise }),
    );
    const second = failing.execute(() => 'first');
    const error = new Error('later failure');
    failed.reject(error);
    expect(await second).toBe('recovered');
    expect(outerSaw).toEqual(['second', error]);
  });

  it('an onValue that throws fails the call: the policies outside see the error in onError', async () => {
    const thrown = new Error('not acceptable');
    const seen: unknown[] = [];
    const stack = compose(
      probe({
        onValue: (_t, value) => (seen.push(['onValue', value]), value),
        onError: (_t, error) => {
          seen.push(['onError', error]);
          throw error;
        },
      }),
      probe({
        onValue: () => {
          throw thrown;
        },
      }),
    );
    expect(await rejectionOf(stack.execute(() => 'v'))).toBe(thrown);
    expect(await rejectionOf(stack.execute(() => 'v', { signal: new AbortController().signal }))).toBe(thrown);
    expect(seen).toEqual([
      ['onError', thrown],
      ['onError', thrown],
    ]);
  });

  it('an onError that answers with a value or a promise turns the failure into a success for the policies outside', async () => {
    const seen: unknown[] = [];
    const outer = () => probe({ onValue: (_t, value) => (seen.push(value), value), onError: (_t, error) => (seen.push(error), 'outer') });
    const now = compose(outer(), probe({ onError: () => 'at once' }));
    expect(await now.execute(() => Promise.reject(new Error('x')))).toBe('at once');
    const later = compose(outer(), probe({ onError: () => Promise.resolve('later') }));
    expect(await later.execute(() => Promise.reject(new Error('x')))).toBe('later');
    const replaced = new Error('replaced');
    const replacing = compose(
      outer(),
      probe({
        onError: () => {
          throw replaced;
        },
      }),
    );
    expect(await replacing.execute(() => Promise.reject(new Error('x')))).toBe('outer');
    expect(seen).toEqual(['at once', 'later', replaced]);
  });

  it('a function that throws synchronously, or returns a thenable that rejects, fails the call with that error', async () => {
    const error = new Error('sync');
    const policy = probe({ onError: (_t, e) => Promise.reject(e) });
    expect(await rejectionOf(policy.execute(() => {
      throw error;
    }))).toBe(error);
    expect(await rejectionOf(policy.execute(() => {
      throw error;
    }, { signal: new AbortController().signal }))).toBe(error);
    const thenable = { then: (_: unknown, reject: (e: unknown) => void) => reject(error) };
    expect(await rejectionOf(policy.execute(() => thenable as unknown as Promise<never>, { signal: new AbortController().signal }))).toBe(error);
  });
});

describe('a breaker and a registry around policies of your own', () => {
  it('a refused enter is a rejection of that policy and a failure of a policy outside it, and a breaker outside does not count it', async () => {
    const registry = new MetricsRegistry({ now: () => 0 });
    const breaker = new CircuitBreaker({ failureThreshold: 1, name: 'b' });
    const outer = probe({}, { name: 'outer' });
    const refusing = probe(
      {
        enter: () => {
          throw new Error('full');
        },
      },
      { name: 'refusing' },
    );
    const stack = compose(breaker, outer, refusing, withTimeout(1_000, { name: 't' }));
    registry.track(stack);
    await rejectionOf(stack.execute(() => 'never'));
    const byName = Object.fromEntries(registry.snapshot().policies.map((p) => [p.name + ':' + p.kind, [p.calls, p.successes, p.failures, p.rejections]]));
    expect(byName).toEqual({ 'b:circuit-breaker': [1, 0, 1, 0], 'outer:probe': [1, 0, 1, 0], 'refusing:probe': [1, 0, 0, 1], 't:timeout': [0, 0, 0, 0] });
    expect(breaker.state).toBe('closed');
  });
});

describe('the promise hops a call costs (docs/extending.md: a policy that lets the call through at once costs no promise)', () => {
  /** How many microtask turns pass before `promise` settles. */
  async function turnsUntilSettled(promise: Promise<unknown>): Promise<number> {
    let settled = false;
    promise.then(
      () => (settled = true),
      () => (settled = true),
    );
    let turns = 0;
    while (!settled && turns < 100) {
      await Promise.resolve();
      turns++;
    }
    return turns;
  }

  it('policies that let the call through are left in one reaction, however many they are', async () => {
    const passing = () => probe({ enter: () => 'token', onValue: (_t, value) => value });
    const one = await turnsUntilSettled(passing().execute(() => 'v'));
    const five = await turnsUntilSettled(compose(passing(), passing(), passing(), passing(), passing()).execute(() => 'v'));
    expect(five).toBe(one);
  });

  it('an empty stack, a refusal by the outermost policy and a policy whose run answers with inner().run() add no hop to the function’s own promise', async () => {
    const bare = await turnsUntilSettled(Promise.resolve('v'));
    expect(await turnsUntilSettled(compose().execute(() => 'v'))).toBe(bare);
    expect(await turnsUntilSettled(probe({ run: (call) => call.inner().run() }).execute(() => 'v'))).toBe(bare);
    const refusing = probe({
      enter: () => {
        throw new Error('full');
      },
    });
    expect(await turnsUntilSettled(refusing.execute(() => 'v'))).toBe(await turnsUntilSettled(Promise.reject(new Error('full'))));
  });
});
