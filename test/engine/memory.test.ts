import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import { compose, retryWithBackoff, withTimeout, type ExecutionContext } from '../../src/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { deferred, flush } from '../fixtures/promises.js';

/*
 * A call may run for a long time (retryWithBackoff({ maxRetries: Infinity }) against a
 * dependency that is down for hours): what its finished attempts used must not pile up for as
 * long as the call lives. A WeakRef tells whether anything still holds an attempt's ctx or
 * ctx.signal once the garbage collector ran.
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function collectGarbage(): Promise<void> {
  // WeakRef targets are kept until the job that made the WeakRef ends: let a few turns pass.
  for (let i = 0; i < 3; i++) {
    await flush();
    gc();
  }
}

interface Held {
  readonly ctx: WeakRef<ExecutionContext>;
  readonly signal: WeakRef<AbortSignal>;
}

it.each([false, true])('a call retrying for long keeps no finished attempt’s ctx or ctx.signal alive (caller signal: %s)', async (withCallerSignal) => {
  const clock = new CountingClock();
  const stack = compose(retryWithBackoff({ maxRetries: Infinity, baseDelay: 10, jitter: 'none', exponentialBase: 1, clock }), withTimeout(1_000, { clock }));
  const held: Held[] = [];
  const last = deferred<string>();
  const controller = new AbortController();
  const call = stack.execute(
    (ctx) => {
      // A function that hands its signal on (to fetch, a driver) reads it, as it should.
      held.push({ ctx: new WeakRef(ctx), signal: new WeakRef(ctx.signal) });
      if (ctx.attempt < 20) return Promise.reject(new Error(`attempt ${ctx.attempt} failed`));
      return last.promise;
    },
    withCallerSignal ? { signal: controller.signal } : undefined,
  );
  await clock.advance(19 * 10);
  expect(held).toHaveLength(20);
  await collectGarbage();
  // Attempts 2 to 19 are over. (The first one entered the stack together with the retry, and
  // what it kept may live as long as the call: one attempt's worth, not a pile.)
  const alive = held.slice(1, 19).filter(({ ctx, signal }) => ctx.deref() !== undefined || signal.deref() !== undefined);
  expect(alive).toHaveLength(0);
  // The attempt in flight is still whole, and the call still answers.
  expect(held[19]?.signal.deref()?.aborted).toBe(false);
  last.resolve('finally');
  await expect(call).resolves.toBe('finally');
  expect(clock.armed).toBe(0);
});
