/**
 * One HTTP client per dependency, each a `resilientFetch` (bulwark/fetch) shaped for what the
 * dependency is worth to the shop, with a fallback around it. resilientFetch runs every call
 * through its own policies, outermost first: total timeout → bulkhead → retry → hedge → rate
 * limit → circuit breaker → attempt timeout (those configured). It keeps one set per origin,
 * so each dependency has an origin of its own (the upstream listens on one port per dependency).
 *
 * - payments: a charge is worth waiting for. Two retries with backoff, a bulkhead with a
 *   queue; the charge is a POST, retried only because it carries an `Idempotency-Key` (one per
 *   order: the payments API charges a key once, however many times it is sent). A `503` asking
 *   to come back in a second is returned at once (the call's total timeout would pass first),
 *   never retried sooner. When all else fails the order is queued for a later charge.
 * - inventory: fast or useless. One quick retry, short timeouts, a small bulkhead whose queue
 *   gives up after 100 ms; "stock unknown" otherwise (the shop still sells).
 * - recommendations: nice to have. No retry at all (a retry would only add load), the
 *   shortest timeout, a breaker that trips after 3 failures; bestsellers otherwise.
 * - geocoding: a vendor that allows 20 requests a second and answers 429 beyond. A rate
 *   limit keeps the shop under it (18 a second plus a burst of 2: never more than 20 in a
 *   second, with room for the network's jitter); a call waits up to 250 ms for its permit,
 *   and is refused at once when its permit is further away. The postcode's town otherwise.
 * - pricing: quick, except one answer in 20, which takes 20 times as long. Hedged: when no
 *   answer came within 60 ms (about the 95th percentile), a second request goes out and the
 *   first answer wins; a budget keeps hedges under 10 % of the calls (plus 2 a second), the
 *   total timeout bounds the whole call, the breaker inside sees each request. The list price otherwise.
 *
 * Each breaker sits inside the retry, so it judges every attempt (a transient status, a
 * dropped connection and an attempt timeout are failures). Where attempts are retried
 * (payments, inventory), it opens when 75 % of the attempts of its window failed (10 at
 * least): a burst of errors the retries absorb does not open it, an outage does. Elsewhere it
 * opens after a few failures in a row. A transient status after the retries comes back as a
 * `Response`, not an error: the fallback answers it (`handlesResult`) as it answers errors.
 * Each client's policies are named `<dependency>:<origin>` in the metrics registry (its
 * timeouts `…:total` and `…:attempt`), which is how the dashboard reads them.
 */
import { RetryBudget, withFallback, type CircuitBreaker, type FallbackPolicy, type MetricsRegistry } from 'bulwark';
import { resilientFetch, type ResilientFetch, type ResilientFetchOptions } from 'bulwark/fetch';

/** The dependencies of the demo's shop. */
export type DependencyName = 'payments' | 'inventory' | 'recommendations' | 'geocoding' | 'pricing';

/** The dependencies, in the order the dashboard shows them. */
export const dependencyNames: readonly DependencyName[] = ['payments', 'inventory', 'recommendations', 'geocoding', 'pricing'];

/** The settings of a dependency's bulkhead, rate limit and hedging, as given to its resilientFetch (the dashboard shows them). */
export interface DependencySettings {
  readonly bulkhead?: { readonly maxConcurrent: number; readonly maxQueue: number } | undefined;
  readonly rateLimit?: { readonly rate: number; readonly interval: number; readonly burst: number | undefined; readonly maxWait: number } | undefined;
  readonly hedge?: { readonly delay: number } | undefined;
}

/** One dependency: its client, the fallback around it, and how hard the shop calls it. */
export interface Dependency extends DependencySettings {
  readonly name: DependencyName;
  /** Calls per second the shop makes, unless a phase of the scenario says otherwise. */
  readonly rate: number;
  /** The upstream's origin for this dependency (`http://127.0.0.1:<port>`). */
  readonly origin: string;
  /** The name of the client's policies in the metrics registry: `<dependency>:<origin>`. */
  readonly policyName: string;
  /** The dependency's HTTP client. */
  readonly client: ResilientFetch;
  /** The fallback around each call (tracked in the registry as `<dependency>.fallback`). */
  readonly fallback: FallbackPolicy<unknown>;
  /** The client's breaker for the origin. */
  readonly breaker: CircuitBreaker;
  /** One call: the fallback around the client's request to the dependency (`GET`, or `POST` for payments). */
  call(id: number, signal: AbortSignal): Promise<unknown>;
}

/** What the shop does with a response: reads the body of a 2xx; returns any other response, its body cancelled, for the fallback to answer. */
async function bodyOf(response: Response): Promise<unknown> {
  if (!response.ok) {
    await response.body?.cancel();
    return response;
  }
  return response.json();
}

/** A response that is not 2xx: what the fallback answers besides errors. */
const notOk = (value: unknown): boolean => value instanceof Response && !value.ok;

/**
 * Builds the clients against the upstream's `origins` (one per dependency), their policies
 * tracked in `registry`. `timeScale` shrinks the breakers' recovery for short runs.
 */
export function buildDependencies(origins: ReadonlyMap<string, string>, registry: MetricsRegistry, timeScale: number): readonly Dependency[] {
  // A breaker's recovery and window are part of the story (open, trial, open again, closed),
  // so they follow the length of the run (2 s of a 20 s run); timeouts, backoff, rate limits and hedge delays are about
  // real HTTP and real time, and stay fixed.
  const recovery = (ms: number): number => Math.max(100, Math.round(ms * timeScale));
  /** A breaker that opens after `failures` failures in a row (resilientFetch's default, a failure rate over 100 calls, is too slow for a demo). */
  const breaker = (failures: number, recoveryMs: number): ResilientFetchOptions['breaker'] => ({ failureRate: undefined, failureThreshold: failures, recoveryTimeout: recovery(recoveryMs) });
  /** A breaker that opens when 75 % of the attempts of its window (the last 2 s of a 20 s run) failed, 10 at least: for a stack that retries. */
  const rateBreaker = (recoveryMs: number): ResilientFetchOptions['breaker'] => ({
    failureRate: { threshold: 0.75, minimumCalls: 10, window: { duration: recovery(2_000) } },
    recoveryTimeout: recovery(recoveryMs),
  });

  const dependency = (
    name: DependencyName,
    rate: number,
    fallbackValue: unknown,
    options: ResilientFetchOptions,
    settings: DependencySettings,
    request: (id: number) => RequestInit = () => ({}),
  ): Dependency => {
    const origin = origins.get(name);
    if (origin === undefined) throw new RangeError(`no upstream origin for ${name}`);
    const client = resilientFetch({ ...options, name, metrics: registry });
    // Composes (and tracks) the origin's policies now, so the dashboard has them from the first frame.
    client.policyOf(origin);
    const breakers = client.breakers;
    if (breakers === undefined) throw new TypeError(`${name} has no breaker`);
    const fallback = withFallback<unknown>(fallbackValue, { name: `${name}.fallback`, handlesResult: notOk });
    registry.track(fallback);
    return {
      name,
      rate,
      origin,
      policyName: `${name}:${origin}`,
      client,
      fallback,
      breaker: breakers.get(origin),
      ...settings,
      call: (id, signal) =>
        fallback.execute(async (ctx) => bodyOf(await client(`${origin}/${name}/${id}`, { ...request(id), signal: ctx.signal })), { signal }),
    };
  };

  const paymentsBulkhead = { maxConcurrent: 10, maxQueue: 10 };
  const inventoryBulkhead = { maxConcurrent: 6, maxQueue: 6 };
  const recommendationsBulkhead = { maxConcurrent: 5, maxQueue: 0 };
  const geocodingLimit = { rate: 18, interval: 1_000, burst: 2, maxWait: 250 };
  const pricingHedge = { delay: 60 };

  return [
    dependency(
      'payments',
      30,
      { status: 'queued for a later charge' },
      {
        totalTimeout: 1_000,
        attemptTimeout: 300,
        retry: { maxRetries: 2, baseDelay: 40, maxDelay: 300, jitter: 'full' },
        breaker: rateBreaker(2_000),
        bulkhead: paymentsBulkhead,
      },
      { bulkhead: paymentsBulkhead },
      // A charge is a POST: resilientFetch retries it only because it carries an Idempotency-Key,
      // one per order, the same on every attempt, so the payments API charges the order once.
      (id) => ({
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `order-${id}` },
        body: JSON.stringify({ order: id, cents: 4_200 }),
      }),
    ),
    dependency(
      'inventory',
      60,
      { status: 'stock unknown' },
      {
        totalTimeout: 500,
        attemptTimeout: 200,
        retry: { maxRetries: 1, baseDelay: 25, maxDelay: 100 },
        breaker: rateBreaker(1_500),
        bulkhead: { ...inventoryBulkhead, queueTimeout: 100 },
      },
      { bulkhead: inventoryBulkhead },
    ),
    dependency(
      'recommendations',
      40,
      { items: ['bestsellers'] },
      { totalTimeout: 300, attemptTimeout: 150, retry: false, breaker: breaker(3, 1_000), bulkhead: recommendationsBulkhead },
      { bulkhead: recommendationsBulkhead },
    ),
    dependency(
      'geocoding',
      12,
      { location: 'the postcode’s town' },
      // Each request sent takes a permit: outside the breaker (resilientFetch's order: a request
      // the open circuit refuses has spent one) and outside the attempt timeout (a wait for a
      // permit is not a wait for the vendor). A refusal is answered by the fallback, and so is
      // a 429 the vendor still sends (with its Retry-After: no retry here).
      { totalTimeout: 600, attemptTimeout: 300, retry: false, breaker: breaker(5, 1_500), rateLimit: geocodingLimit },
      { rateLimit: geocodingLimit },
    ),
    dependency(
      'pricing',
      50,
      { price: 'list price' },
      {
        // One deadline for the whole call, hedges included; no attempt timeout of its own.
        totalTimeout: 250,
        attemptTimeout: Infinity,
        retry: false,
        hedge: { ...pricingHedge, maxHedgedAttempts: 1, budget: new RetryBudget({ ratio: 0.1, minPerSecond: 2 }) },
        // Inside the hedging, the breaker judges each request; a request aborted because the
        // other one answered first is not a failure.
        breaker: breaker(5, 1_500),
      },
      { hedge: pricingHedge },
    ),
  ];
}
