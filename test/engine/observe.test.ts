import { expect, it } from 'vitest';
import { Bulkhead, CircuitBreaker, MetricsRegistry, compose, retryWithBackoff, withFallback, withTimeout } from '../../src/index.js';
import type { CallObserver } from '../../src/engine/observe.js';
import { stepsOf } from '../../src/engine/policy.js';
import { deferred, flush } from '../fixtures/promises.js';

// The engine must hand `finished` to the observer whose `started` made the token: a policy's
// observer may change while a call is in flight (a registry tracks or untracks it).
it('finishes a call with the observer that started it, even if the slot changed meanwhile', async () => {
  const timeout = withTimeout(1_000, { name: 't' });
  const now = (): number => 0;
  const first: CallObserver & { finishedWith: number[] } = { now, finishedWith: [], started: () => 111, finished(token: number) { this.finishedWith.push(token); } };
  const second: CallObserver & { finishedWith: number[] } = { now, finishedWith: [], started: () => 222, finished(token: number) { this.finishedWith.push(token); } };
  (stepsOf(timeout)[0] as { observer: CallObserver | undefined }).observer = first;
  const holder = deferred();
  const call = timeout.execute(() => holder.promise);
  (stepsOf(timeout)[0] as { observer: CallObserver | undefined }).observer = second;
  holder.resolve();
  await call;
  expect(first.finishedWith).toEqual([111]);
  expect(second.finishedWith).toEqual([]);
});

it('a registry keeps exact latencies when a second registry leaves while a call is in flight', async () => {
  let time = 1_000;
  const first = new MetricsRegistry({ now: () => time });
  const second = new MetricsRegistry({ now: () => time });
  const timeout = withTimeout(1_000, { name: 't' });
  first.track(timeout);
  const untrackSecond = second.track(timeout);
  const holder = deferred();
  const call = timeout.execute(() => holder.promise);
  untrackSecond();
  time += 8;
  holder.resolve();
  await call;
  expect(first.snapshot().policies[0]?.latency.sum).toBe(8);
});

it('reads a registry’s clock twice per call through a tracked five-policy stack, not twice per policy', async () => {
  let reads = 0;
  let time = 0;
  const registry = new MetricsRegistry({
    now: () => {
      reads++;
      return time;
    },
  });
  const stack = compose(
    withFallback(0, { name: 'f' }),
    new CircuitBreaker({ name: 'b' }),
    retryWithBackoff({ name: 'r' }),
    withTimeout(1_000, { name: 't' }),
    new Bulkhead({ name: 'h', maxConcurrent: 10 }),
  );
  registry.track(stack);
  const holder = deferred();
  const call = stack.execute(() => holder.promise);
  time = 5;
  holder.resolve();
  await call;
  expect(reads).toBe(2);
  const snapshot = registry.snapshot();
  expect(snapshot.policies.map((policy) => [policy.name, policy.calls, policy.successes, policy.latency.sum])).toEqual([
    ['f', 1, 1, 5],
    ['b', 1, 1, 5],
    ['r', 1, 1, 5],
    ['t', 1, 1, 5],
    ['h', 1, 1, 5],
  ]);
});

// A layer that answers in a later turn (a fallback function, a retry after its backoff) is
// timed with a fresh clock reading, not with the last one any call happened to take.

it('times a fallback by its whole call, its async fallback function included', async () => {
  let t = 0;
  const registry = new MetricsRegistry({ now: () => t });
  let release: (v: string) => void = () => {};
  const stack = compose(
    withFallback(() => new Promise<string>((resolve) => { release = resolve; }), { name: 'dep' }),
    new CircuitBreaker({ name: 'dep' }),
  );
  registry.track(stack);
  const samples: unknown[] = [];
  registry.onCall((s) => samples.push(s));
  t = 100;
  const result = stack.execute(async () => { throw new Error('boom'); });
  await flush(); // the inner failure is handled; the fallback function is running
  t = 600;      // ... and takes 500 ms
  release('cached');
  expect(await result).toBe('cached');
  expect(samples).toContainEqual({ policy: 'dep', kind: 'fallback', durationMs: 500, outcome: 'success' });
});

it('times a fallback function alone, whatever other calls ran meanwhile', async () => {
  let t = 0;
  const registry = new MetricsRegistry({ now: () => t });
  let release: (v: string) => void = () => {};
  const fallback = withFallback(() => new Promise<string>((resolve) => { release = resolve; }), { name: 'a' });
  const other = withTimeout(1_000, { name: 'b' });
  registry.track(fallback);
  registry.track(other);
  t = 100;
  const result = fallback.execute(async () => { throw new Error('boom'); });
  await flush();
  t = 300;
  await other.execute(async () => 'unrelated'); // another dependency's call, at 300 ms
  t = 600;
  release('cached');
  expect(await result).toBe('cached');
  const a = registry.snapshot().policies.find((p) => p.name === 'a');
  expect(a?.latency.sum).toBe(500);
});

it('times a retry over its backoff, whatever other calls ran meanwhile', async () => {
  let t = 0;
  const registry = new MetricsRegistry({ now: () => t });
    let wake: () => void = () => {};
  const retry = retryWithBackoff({
    maxRetries: 1, baseDelay: 200, jitter: 'none', name: 'a',
    clock: { now: () => t, setTimeout: (cb: () => void) => { wake = cb; return 1; }, clearTimeout: () => {} },
  });
  const other = withTimeout(1_000, { name: 'b' });
  registry.track(retry);
  registry.track(other);
  let attempt = 0;
  t = 100;
  const result = retry.execute(async () => { if (++attempt === 1) throw new Error('flaky'); return 'ok'; });
  await flush();
  t = 200;
  await other.execute(async () => 'unrelated');
  t = 400;
  wake(); // the backoff ends; the second attempt succeeds at 400
  expect(await result).toBe('ok');
  const a = registry.snapshot().policies.find((p) => p.name === 'a');
  expect(a?.latency.sum).toBe(300);
});
