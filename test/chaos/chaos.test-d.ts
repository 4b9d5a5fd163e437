import { expectTypeOf, test } from 'vitest';
import { CircuitBreaker, compose, retryWithBackoff, withFallback, withTimeout, type ExecutionContext, type Policy } from '../../src/index.js';
import { chaosFault, chaosLatency, chaosOutcome, type ChaosFaultEvents, type ChaosOutcomePolicy } from '../../src/chaos/index.js';

declare function search(query: string): Promise<{ hits: string[] }>;

test('a fault and a latency add nothing to the result type', () => {
  const stack = compose(new CircuitBreaker(), retryWithBackoff(), withTimeout(100), chaosLatency({ rate: 0.1, latency: 500 }), chaosFault({ rate: 0.3, fault: new Error('injected') }));
  expectTypeOf(stack).toEqualTypeOf<Policy<never>>();
  expectTypeOf(stack.wrap(search)).toEqualTypeOf<(query: string) => Promise<{ hits: string[] }>>();
});

test("an outcome's type is a possible result, as a fallback's is", () => {
  const empty = chaosOutcome({ rate: 0.05, outcome: { hits: [] as string[], stale: true } });
  expectTypeOf(empty).toEqualTypeOf<ChaosOutcomePolicy<{ hits: string[]; stale: boolean }>>();
  expectTypeOf(compose(empty).wrap(search)).returns.toEqualTypeOf<Promise<{ hits: string[] } | { hits: string[]; stale: boolean }>>();
  const withFallbackToo = compose(withFallback(() => 'fallback' as const), chaosOutcome({ rate: 0.05, outcome: 503 as const }));
  expectTypeOf(withFallbackToo).toEqualTypeOf<Policy<'fallback' | 503>>();
});

test("an outcome function's result, awaited, is the type added", () => {
  const fromFunction = chaosOutcome({ rate: 1, outcome: (ctx: ExecutionContext) => `attempt ${ctx.attempt}` });
  expectTypeOf(fromFunction).toEqualTypeOf<ChaosOutcomePolicy<string>>();
  const fromAsync = chaosOutcome({ rate: 1, outcome: async () => 42 });
  expectTypeOf(fromAsync).toEqualTypeOf<ChaosOutcomePolicy<number>>();
  expectTypeOf(compose(fromAsync).execute(() => true)).toEqualTypeOf<Promise<boolean | number>>();
});

test('a fault is an error or a function of the call returning one; enabled a boolean or a predicate of the call', () => {
  chaosFault({ rate: 1, fault: ({ attempt }) => new Error(`attempt ${attempt}`), enabled: ({ attempt }) => attempt === 1 });
  // @ts-expect-error a fault is an error, not a string
  chaosFault({ rate: 1, fault: 'boom' });
  // @ts-expect-error enabled answers with a boolean
  chaosLatency({ rate: 1, latency: 1, enabled: 'yes' });
  // @ts-expect-error the rate is required
  chaosLatency({ latency: 1 });
  const policy = chaosFault({ rate: 1, fault: new Error('x') });
  policy.on('injected', (payload) => expectTypeOf(payload).toEqualTypeOf<ChaosFaultEvents['injected']>());
  // @ts-expect-error injected is the only event
  policy.on('fault', () => undefined);
});
