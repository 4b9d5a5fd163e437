/**
 * Migrating from cockatiel: one stack written with both libraries, around the same stock
 * service. A 5xx response is a failure for both (cockatiel's `handleWhenResult`, bulwark's
 * `isFailureResult` / `retryOnResult`); the breaker is outermost, the retry inside it, and a
 * timeout of 1 s per attempt innermost. examples/migration/cockatiel.test.ts runs both against
 * the same failing service and shows where they agree and where they differ
 * (docs/migrating-from-cockatiel.md).
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/migration/cockatiel.ts
 */
import { ConsecutiveBreaker, ExponentialBackoff, TimeoutStrategy, circuitBreaker, handleAll, noJitterGenerator, retry, timeout, wrap } from 'cockatiel';
import type { IDefaultPolicyContext, IPolicy } from 'cockatiel';
import { CircuitBreaker, compose, retryWithBackoff, withTimeout } from 'bulwark';
import type { ExecuteOptions, ExecutionContext, Policy } from 'bulwark';
import { runMain } from '../is-main.js';

/** What the stock service answers. */
export interface StockResponse {
  readonly status: number;
  readonly sku: string;
  readonly count?: number;
}

/** The call both stacks protect: it takes the signal of its attempt. */
export type GetStock = (sku: string, signal: AbortSignal) => Promise<StockResponse>;

/** fetch-like clients resolve on a 5xx: both libraries must be told it is a failure. */
const unavailable = (value: unknown): boolean => (value as StockResponse).status >= 500;

/** Before: cockatiel. */
export function cockatielStack(getStock: GetStock) {
  const failures = handleAll.orWhenResult(unavailable);
  const breaker = circuitBreaker(failures, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(3) });
  const retries = retry(failures, {
    maxAttempts: 2, // retries after the first call: up to 3 calls
    backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1_000, generator: noJitterGenerator }),
  });
  const perAttempt = timeout(1_000, TimeoutStrategy.Aggressive);
  const stack = wrap(breaker, retries, perAttempt); // the first is the outermost

  const get = (sku: string, signal?: AbortSignal): Promise<StockResponse> => stack.execute(({ signal }) => getStock(sku, signal), signal);
  return { get, stack, breaker, retry: retries, timeout: perAttempt };
}

/** After: bulwark. */
export function bulwarkStack(getStock: GetStock) {
  const breaker = new CircuitBreaker({ failureThreshold: 3, recoveryTimeout: 10_000, isFailureResult: unavailable });
  const retries = retryWithBackoff({ maxRetries: 2, baseDelay: 100, maxDelay: 1_000, jitter: 'none', retryOnResult: unavailable });
  const perAttempt = withTimeout(1_000);
  const stack = compose(breaker, retries, perAttempt); // the first is the outermost, as with wrap

  const get = (sku: string, signal?: AbortSignal): Promise<StockResponse> => stack.execute(({ signal }) => getStock(sku, signal), { signal });
  return { get, stack, breaker, retry: retries, timeout: perAttempt };
}

/**
 * A cockatiel policy as one layer of a bulwark stack, to migrate one policy at a time:
 * bulwark hands a layer `{ signal }`, cockatiel takes the signal itself. The layer's own
 * aborts (its timeout) reach the policies inside it.
 */
export function fromCockatiel(policy: IPolicy<IDefaultPolicyContext>): Policy {
  const execute = <T>(fn: (ctx: ExecutionContext) => T | PromiseLike<T>, options?: ExecuteOptions): Promise<T> =>
    policy.execute((context) => fn(context as unknown as ExecutionContext), options?.signal);
  return { execute, wrap: (fn) => (...args) => execute(() => fn(...args)) };
}

/** A stand-in for the stock service: each call answers with the next step of a script. */
export class ScriptedStock {
  calls = 0;
  constructor(private readonly script: readonly ('ok' | 'error' | 503 | 'hang')[]) {}

  readonly get: GetStock = (sku, signal) => {
    const step = this.script[Math.min(this.calls, this.script.length - 1)];
    this.calls++;
    return new Promise((resolve, reject) => {
      const answer = (): void => {
        if (step === 'error') reject(new Error(`stock service failed for ${sku}`));
        else if (step === 503) resolve({ status: 503, sku });
        else resolve({ status: 200, sku, count: 7 });
      };
      const timer = step === 'hang' ? undefined : setTimeout(answer, 10);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason);
      }, { once: true });
    });
  };
}

async function main(): Promise<void> {
  for (const [name, build] of [['cockatiel', cockatielStack], ['bulwark', bulwarkStack]] as const) {
    const service = new ScriptedStock(['error', 503, 'ok']);
    const stack = build(service.get);
    console.log(`${name}: ${JSON.stringify(await stack.get('sku-1'))} after ${service.calls} calls`);
  }
}

runMain(import.meta.url, main);
