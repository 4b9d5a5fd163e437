import { expectTypeOf, test } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  compose,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type ExecutionContext,
  type Policy,
} from '../../src/index.js';

const breaker = new CircuitBreaker();
const retry = retryWithBackoff();
const timeout = withTimeout(1_000);
const bulkhead = new Bulkhead({ maxConcurrent: 1 });
declare function check(a: string, b: number): Promise<boolean>;

test('wrap keeps the parameter and result types', () => {
  const wrapped = compose(breaker, retry, timeout, bulkhead).wrap(check);
  expectTypeOf(wrapped).toEqualTypeOf<(a: string, b: number) => Promise<boolean>>();
  expectTypeOf(wrapped).parameters.toEqualTypeOf<[a: string, b: number]>();
  expectTypeOf(wrapped).returns.toEqualTypeOf<Promise<boolean>>();
});

test('wrap of a synchronous function returns a Promise of its result', () => {
  const wrapped = breaker.wrap((id: string) => id.length);
  expectTypeOf(wrapped).toEqualTypeOf<(id: string) => Promise<number>>();
});

test('wrap under a fallback adds the fallback value to the result', () => {
  const guest = { name: 'guest' };
  const withGuest = compose(withFallback((): typeof guest => guest), breaker).wrap(check);
  expectTypeOf(withGuest).toEqualTypeOf<(a: string, b: number) => Promise<boolean | { name: string }>>();
  const withNull = compose(withFallback(null), retry).wrap(check);
  expectTypeOf(withNull).toEqualTypeOf<(a: string, b: number) => Promise<boolean | null>>();
});

test('execute returns the result or the fallback value', () => {
  const stack = compose(withFallback(() => 'x' as const), breaker);
  expectTypeOf(stack).toEqualTypeOf<Policy<'x'>>();
  expectTypeOf(stack.execute(() => 42)).toEqualTypeOf<Promise<number | 'x'>>();
  expectTypeOf(stack.execute(async () => ({ id: 1 }))).toEqualTypeOf<Promise<{ id: number } | 'x'>>();
});

test('a stack without fallback returns exactly the result type', () => {
  const stack = compose(breaker, retry, timeout, bulkhead);
  expectTypeOf(stack).toEqualTypeOf<Policy<never>>();
  expectTypeOf(stack.execute(() => Promise.resolve('s'))).toEqualTypeOf<Promise<string>>();
  expectTypeOf(breaker.execute(() => 1n)).toEqualTypeOf<Promise<bigint>>();
});

test('compose() is a pass-through Policy<never>', () => {
  expectTypeOf(compose()).toEqualTypeOf<Policy<never>>();
  expectTypeOf(compose().execute(() => true)).toEqualTypeOf<Promise<boolean>>();
});

test('nested composes and foreign policies join their fallback types', () => {
  const foreign = {} as Policy<404>;
  const stack = compose(withFallback(() => 1 as const), compose(withFallback(() => 'a' as const), breaker), foreign);
  expectTypeOf(stack).toEqualTypeOf<Policy<1 | 'a' | 404>>();
  expectTypeOf(stack.execute(() => true)).toEqualTypeOf<Promise<boolean | 1 | 'a' | 404>>();
});

test('the function receives an ExecutionContext', () => {
  void compose(breaker, retry).execute((ctx) => {
    expectTypeOf(ctx).toEqualTypeOf<ExecutionContext>();
    expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
    expectTypeOf(ctx.attempt).toEqualTypeOf<number>();
    return ctx.attempt;
  });
  expectTypeOf<ExecutionContext>().toHaveProperty('signal').toEqualTypeOf<AbortSignal>();
  expectTypeOf<ExecutionContext>().toHaveProperty('attempt').toEqualTypeOf<number>();
});

test('misuse does not type-check', () => {
  const wrapped = compose(breaker, retry).wrap(check);
  // @ts-expect-error the arguments are swapped
  void wrapped(1, 'a');
  // @ts-expect-error an argument is missing
  void wrapped('a');
  // @ts-expect-error an extra argument
  void wrapped('a', 1, true);
  // @ts-expect-error the result is a boolean, not a string
  const text: Promise<string> = wrapped('a', 1);
  void text;
  // @ts-expect-error not a policy
  compose(breaker, 42);
  // @ts-expect-error execute takes a function
  void breaker.execute('not a function');
  // @ts-expect-error ctx has no such field
  void breaker.execute((ctx) => ctx.retries);
});
