/**
 * The README's first example, as it runs: a read of an inventory service protected against
 * what HTTP really does when it fails. `fetch` resolves on a 503, so every policy that judges
 * outcomes is told that such a response is a failure. `examples/first-screen.test.ts` runs it
 * against a server that answers 503 to everything, and checks the README shows this code.
 */
import { Bulkhead, CircuitBreaker, compose, retryWithBackoff, withFallback, withTimeout } from 'bulwark';

/** Builds the stack of the README around `stockUrl`; `check()` is one read through it. */
export function inventoryStack(stockUrl: string) {
  // README:start
  // fetch resolves on a 503: tell each policy which responses are failures.
  const unavailable = (res: unknown) => res instanceof Response && (res.status >= 500 || res.status === 429);
  const breaker = new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 30_000, isFailureResult: unavailable });

  const inventory = compose(
    withFallback({ stock: 'unknown' }, { handlesResult: unavailable }),                  // outermost: degrade gracefully
    breaker,                                                                              // stop hammering a dead service
    retryWithBackoff({ maxRetries: 3, baseDelay: 200, retryOnResult: unavailable }),     // ride out blips (a GET: safe to repeat)
    withTimeout(2_000),                                                                   // per attempt
    new Bulkhead({ maxConcurrent: 10 }),                                                  // innermost: cap work in flight
  );

  const check = () => inventory.execute(({ signal }) => fetch(stockUrl, { signal }));
  // README:end
  return { breaker, inventory, check };
}
