/**
 * One stack per dependency, each shaped for what the dependency is worth to the shop:
 *
 * - payments: a charge is worth waiting for. Two retries with backoff, a generous timeout,
 *   a bulkhead with a queue; when all else fails the order is queued for a later charge.
 * - inventory: fast or useless. One quick retry, a short timeout, a small bulkhead whose
 *   queue gives up after 100 ms; "stock unknown" otherwise (the shop still sells).
 * - recommendations: nice to have. No retry at all (a retry would only add load), the
 *   shortest timeout, a breaker that trips after 3 failures; bestsellers otherwise.
 *
 * Every policy has a name (`payments.breaker`, …), which is how the metrics registry and the
 * dashboard tell them apart.
 */
import {
  Bulkhead,
  CircuitBreaker,
  compose,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type ExecutionContext,
  type FallbackPolicy,
  type Policy,
  type RetryPolicy,
  type TimeoutPolicy,
} from 'bulwark';
import { HttpError, isTransient } from '../fetch.js';

/** The dependencies of the demo's shop. */
export type DependencyName = 'payments' | 'inventory' | 'recommendations';

/** The dependencies, in the order the dashboard shows them. */
export const dependencyNames: readonly DependencyName[] = ['payments', 'inventory', 'recommendations'];

/** One dependency: its stack, the policies in it, and how hard the shop calls it. */
export interface Dependency {
  readonly name: DependencyName;
  /** Calls per second the shop makes. */
  readonly rate: number;
  /** The whole stack, outermost first. */
  readonly stack: Policy<unknown>;
  readonly fallback: FallbackPolicy<unknown>;
  readonly breaker: CircuitBreaker;
  readonly retry: RetryPolicy | undefined;
  readonly timeout: TimeoutPolicy;
  readonly bulkhead: Bulkhead;
  /** One call through the stack to `GET <upstream>/<name>/<id>`. */
  call(id: number, signal: AbortSignal): Promise<unknown>;
}

/** Builds the three stacks against `upstreamUrl`. `timeScale` shrinks the breakers' recovery for short runs. */
export function buildDependencies(upstreamUrl: string, timeScale: number): readonly Dependency[] {
  // A breaker's recovery is part of the story (open, trial, open again, closed), so it
  // follows the length of the run; timeouts and backoff are about real HTTP and stay fixed.
  const recovery = (ms: number): number => Math.max(100, Math.round(ms * timeScale));

  const request = async (name: DependencyName, id: number, { signal }: ExecutionContext): Promise<unknown> => {
    const response = await fetch(`${upstreamUrl}/${name}/${id}`, { signal });
    if (!response.ok) {
      await response.body?.cancel();
      throw new HttpError(response.status, response.statusText, response.url);
    }
    return response.json();
  };

  const dependency = (
    name: DependencyName,
    rate: number,
    policies: {
      readonly fallback: FallbackPolicy<unknown>;
      readonly breaker: CircuitBreaker;
      readonly retry?: RetryPolicy;
      readonly timeout: TimeoutPolicy;
      readonly bulkhead: Bulkhead;
    },
  ): Dependency => {
    const { fallback, breaker, retry, timeout, bulkhead } = policies;
    const stack = retry === undefined ? compose(fallback, breaker, timeout, bulkhead) : compose(fallback, breaker, retry, timeout, bulkhead);
    return {
      name,
      rate,
      stack,
      fallback,
      breaker,
      retry,
      timeout,
      bulkhead,
      call: (id, signal) => stack.execute((ctx) => request(name, id, ctx), { signal }),
    };
  };

  return [
    dependency('payments', 30, {
      fallback: withFallback<unknown>({ status: 'queued for a later charge' }, { name: 'payments.fallback' }),
      breaker: new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: recovery(2_000), isFailure: isTransient, name: 'payments.breaker' }),
      retry: retryWithBackoff({ maxRetries: 2, baseDelay: 40, maxDelay: 300, jitter: 'full', retryOn: isTransient, name: 'payments.retry' }),
      timeout: withTimeout(300, { name: 'payments.timeout' }),
      bulkhead: new Bulkhead({ maxConcurrent: 10, maxQueue: 10, name: 'payments.bulkhead' }),
    }),
    dependency('inventory', 60, {
      fallback: withFallback<unknown>({ status: 'stock unknown' }, { name: 'inventory.fallback' }),
      breaker: new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: recovery(1_500), isFailure: isTransient, name: 'inventory.breaker' }),
      retry: retryWithBackoff({ maxRetries: 1, baseDelay: 25, maxDelay: 100, retryOn: isTransient, name: 'inventory.retry' }),
      timeout: withTimeout(200, { name: 'inventory.timeout' }),
      bulkhead: new Bulkhead({ maxConcurrent: 6, maxQueue: 6, queueTimeout: 100, name: 'inventory.bulkhead' }),
    }),
    dependency('recommendations', 40, {
      fallback: withFallback<unknown>({ items: ['bestsellers'] }, { name: 'recommendations.fallback' }),
      breaker: new CircuitBreaker({ failureThreshold: 3, recoveryTimeout: recovery(1_000), isFailure: isTransient, name: 'recommendations.breaker' }),
      timeout: withTimeout(150, { name: 'recommendations.timeout' }),
      bulkhead: new Bulkhead({ maxConcurrent: 5, name: 'recommendations.bulkhead' }),
    }),
  ];
}
