// A policy with its own `run` (hedging, chaos) answers a few promise hops after the function.
// A timeout around it checks whether the call is still pending only after those hops, so a
// call that answered at once arms no timer: a timer per call would cost more than the call.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LayerPolicy, TimeoutError, compose, hedge, withTimeout, type LayerCall, type PolicyDescription } from '../../src/index.js';
import { chaosFault } from '../../src/chaos/index.js';
import { track } from '../fixtures/promises.js';

class PassByRun extends LayerPolicy<void> {
  protected override run(call: LayerCall): Promise<unknown> {
    return call.inner().run();
  }
  protected describe(): PolicyDescription {
    return { kind: 'pass-by-run', name: undefined };
  }
}

/** Timers armed on the global functions while `work` runs. */
async function timersArmedBy(work: () => Promise<void>): Promise<number> {
  const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
  try {
    await work();
    return setTimeoutSpy.mock.calls.length;
  } finally {
    setTimeoutSpy.mockRestore();
  }
}

afterEach(() => vi.useRealTimers());

describe('a timeout around a policy with its own run', () => {
  const stacks = {
    'a run hook that passes the call on': () => compose(withTimeout(1_000), new PassByRun()),
    'hedge()': () => compose(withTimeout(1_000), hedge({ delay: 2_000 })),
    'chaosFault with enabled as a function': () => compose(withTimeout(1_000), chaosFault({ rate: 0.5, fault: new Error('injected'), enabled: () => false })),
    'two run hooks in a row': () => compose(withTimeout(1_000), new PassByRun(), new PassByRun()),
  };

  it.each(Object.entries(stacks))('arms no timer for calls answered at once: %s', async (_name, make) => {
    const stack = make();
    const armed = await timersArmedBy(async () => {
      for (let i = 0; i < 200; i++) expect(await stack.execute(async () => i)).toBe(i);
    });
    expect(armed).toBe(0);
  });

  it('still times out a call that hangs behind a run hook', async () => {
    vi.useFakeTimers();
    const stack = compose(withTimeout(50), new PassByRun());
    const outcome = stack.execute(() => new Promise(() => {})).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(49);
    let settled = false;
    void outcome.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toMatchObject({ name: 'TimeoutError', timeout: 50 });
  });
});

describe('a timeout around the function itself', () => {
  it('stamps its deadline one microtask after the function returned: synchronous work later in that turn does not push it back', async () => {
    vi.useFakeTimers();
    const outcome = track(withTimeout(50).execute(() => new Promise(() => {})));
    // Two microtasks after the call started, the same turn runs 30 ms of synchronous work.
    void Promise.resolve()
      .then(() => {})
      .then(() => vi.advanceTimersByTime(30));
    await vi.advanceTimersByTimeAsync(19);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome.error).toBeInstanceOf(TimeoutError);
    expect(outcome.error).toMatchObject({ timeout: 50, message: 'Operation timed out after 50 ms' });
    expect(vi.getTimerCount()).toBe(0);
  });
});
