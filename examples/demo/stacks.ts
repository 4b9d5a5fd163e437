/**
 * One stack per dependency, each shaped for what the dependency is worth to the shop:
 *
 * - payments: a charge is worth waiting for. Two retries with backoff, a generous timeout,
 *   a bulkhead with a queue; when all else fails the order is queued for a later charge.
 * - inventory: fast or useless. One quick retry, a short timeout, a small bulkhead whose
 *   queue gives up after 100 ms; "stock unknown" otherwise (the shop still sells).
 * - recommendations: nice to have. No retry at all (a retry would only add load), the
 *   shortest timeout, a breaker that trips after 3 failures; bestsellers otherwise.
 * - geocoding: a vendor that allows 20 requests a second and answers 429 beyond. A rate
 *   limiter keeps the shop under it (18 a second plus a burst of 2: never more than 20 in a
 *   second, with room for the network's jitter); a call waits up to 250 ms for its permit,
 *   and is refused at once when its permit is further away. The postcode's town otherwise.
 * - pricing: quick, except one answer in 20, which takes 20 times as long. Hedged: when no
 *   answer came within 60 ms (about the 95th percentile), a second request goes out and the
 *   first answer wins; a budget keeps hedges under 10 % of the calls (plus 2 a second), a
 *   timeout bounds the whole call, the breaker inside sees each request. The list price otherwise.
 *
 * Every policy has a name (`payments.breaker`, …), which is how the metrics registry and the
 * dashboard tell them apart.
 */
import {
  Bulkhead,
  CircuitBreaker,
  RateLimiter,
  RetryBudget,
  compose,
  hedge,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type ExecutionContext,
  type FallbackPolicy,
  type HedgePolicy,
  type Policy,
  type RetryPolicy,
  type TimeoutPolicy,
} from 'bulwark';
import { HttpError, isTransient } from '../fetch.js';

/** The dependencies of the demo's shop. */
export type DependencyName = 'payments' | 'inventory' | 'recommendations' | 'geocoding' | 'pricing';

/** The dependencies, in the order the dashboard shows them. */
export const dependencyNames: readonly DependencyName[] = ['payments', 'inventory', 'recommendations', 'geocoding', 'pricing'];

/** The policies of one stack, by role; a stack has a fallback, a breaker and a timeout, and some of the others. */
export interface StackPolicies {
  readonly fallback: FallbackPolicy<unknown>;
  readonly breaker: CircuitBreaker;
  readonly retry?: RetryPolicy | undefined;
  readonly timeout: TimeoutPolicy;
  readonly bulkhead?: Bulkhead | undefined;
  readonly limiter?: RateLimiter | undefined;
  readonly hedge?: HedgePolicy | undefined;
}

/** One dependency: its stack, the policies in it, and how hard the shop calls it. */
export interface Dependency extends StackPolicies {
  readonly name: DependencyName;
  /** Calls per second the shop makes, unless a phase of the scenario says otherwise. */
  readonly rate: number;
  /** The whole stack, outermost first. */
  readonly stack: Policy<unknown>;
  /** One call through the stack to `GET <upstream>/<name>/<id>`. */
  call(id: number, signal: AbortSignal): Promise<unknown>;
}

/** Builds the stacks against `upstreamUrl`. `timeScale` shrinks the breakers' recovery for short runs. */
export function buildDependencies(upstreamUrl: string, timeScale: number): readonly Dependency[] {
  // A breaker's recovery is part of the story (open, trial, open again, closed), so it
  // follows the length of the run; timeouts, backoff, rate limits and hedge delays are about
  // real HTTP and real time, and stay fixed.
  const recovery = (ms: number): number => Math.max(100, Math.round(ms * timeScale));

  const request = async (name: DependencyName, id: number, { signal }: ExecutionContext): Promise<unknown> => {
    const response = await fetch(`${upstreamUrl}/${name}/${id}`, { signal });
    if (!response.ok) {
      await response.body?.cancel();
      throw new HttpError(response.status, response.statusText, response.url);
    }
    return response.json();
  };

  /** A dependency whose stack is `layers`, outermost first; `policies` names the members by role. */
  const dependency = (name: DependencyName, rate: number, policies: StackPolicies, layers: readonly Policy<unknown>[]): Dependency => {
    const stack = compose(...layers);
    return { name, rate, stack, ...policies, call: (id, signal) => stack.execute((ctx) => request(name, id, ctx), { signal }) };
  };

  const payments = {
    fallback: withFallback<unknown>({ status: 'queued for a later charge' }, { name: 'payments.fallback' }),
    breaker: new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: recovery(2_000), isFailure: isTransient, name: 'payments.breaker' }),
    retry: retryWithBackoff({ maxRetries: 2, baseDelay: 40, maxDelay: 300, jitter: 'full', retryOn: isTransient, name: 'payments.retry' }),
    timeout: withTimeout(300, { name: 'payments.timeout' }),
    bulkhead: new Bulkhead({ maxConcurrent: 10, maxQueue: 10, name: 'payments.bulkhead' }),
  };
  const inventory = {
    fallback: withFallback<unknown>({ status: 'stock unknown' }, { name: 'inventory.fallback' }),
    breaker: new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: recovery(1_500), isFailure: isTransient, name: 'inventory.breaker' }),
    retry: retryWithBackoff({ maxRetries: 1, baseDelay: 25, maxDelay: 100, retryOn: isTransient, name: 'inventory.retry' }),
    timeout: withTimeout(200, { name: 'inventory.timeout' }),
    bulkhead: new Bulkhead({ maxConcurrent: 6, maxQueue: 6, queueTimeout: 100, name: 'inventory.bulkhead' }),
  };
  const recommendations = {
    fallback: withFallback<unknown>({ items: ['bestsellers'] }, { name: 'recommendations.fallback' }),
    breaker: new CircuitBreaker({ failureThreshold: 3, recoveryTimeout: recovery(1_000), isFailure: isTransient, name: 'recommendations.breaker' }),
    timeout: withTimeout(150, { name: 'recommendations.timeout' }),
    bulkhead: new Bulkhead({ maxConcurrent: 5, name: 'recommendations.bulkhead' }),
  };
  const geocoding = {
    fallback: withFallback<unknown>({ location: 'the postcode’s town' }, { name: 'geocoding.fallback' }),
    breaker: new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: recovery(1_500), isFailure: isTransient, name: 'geocoding.breaker' }),
    // Inside the breaker (an open circuit spends no permit), outside the timeout (a wait for a
    // permit is not a wait for the vendor). A refusal is answered by the fallback.
    limiter: new RateLimiter({ rate: 18, burst: 2, maxWait: 250, name: 'geocoding.limiter' }),
    timeout: withTimeout(300, { name: 'geocoding.timeout' }),
  };
  const pricing = {
    fallback: withFallback<unknown>({ price: 'list price' }, { name: 'pricing.fallback' }),
    // One deadline for the whole call, hedges included.
    timeout: withTimeout(250, { name: 'pricing.timeout' }),
    hedge: hedge({ delay: 60, maxHedgedAttempts: 1, budget: new RetryBudget({ ratio: 0.1, minPerSecond: 2 }), name: 'pricing.hedge' }),
    // Inside the hedging, the breaker judges each request; a request aborted because the
    // other one answered first is not a failure.
    breaker: new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: recovery(1_500), isFailure: isTransient, name: 'pricing.breaker' }),
  };

  return [
    dependency('payments', 30, payments, [payments.fallback, payments.breaker, payments.retry, payments.timeout, payments.bulkhead]),
    dependency('inventory', 60, inventory, [inventory.fallback, inventory.breaker, inventory.retry, inventory.timeout, inventory.bulkhead]),
    dependency('recommendations', 40, recommendations, [recommendations.fallback, recommendations.breaker, recommendations.timeout, recommendations.bulkhead]),
    dependency('geocoding', 12, geocoding, [geocoding.fallback, geocoding.breaker, geocoding.limiter, geocoding.timeout]),
    dependency('pricing', 50, pricing, [pricing.fallback, pricing.timeout, pricing.hedge, pricing.breaker]),
  ];
}
