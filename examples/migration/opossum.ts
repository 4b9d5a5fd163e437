/**
 * Migrating from opossum: one breaker written with both libraries, around the same stock
 * service. opossum's single `CircuitBreaker` holds a timeout, a failure-rate window, a cap on
 * concurrent calls and a fallback; in bulwark each is a policy of its own, composed outermost
 * first. examples/migration/opossum.test.ts runs both against the same failing service and
 * shows where they agree and where they differ (docs/migrating-from-opossum.md).
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/migration/opossum.ts
 */
import OpossumBreaker from 'opossum';
import { Bulkhead, CircuitBreaker, compose, withFallback, withTimeout } from 'bulwark';
import { runMain } from '../is-main.js';

/** What the stock service answers. */
export interface StockResponse {
  readonly status: number;
  readonly sku: string;
  readonly count: number;
}

/** What both stacks answer with when the service cannot. */
export const UNKNOWN = { status: 'unknown' } as const;

/** The call both stacks protect. opossum passes it only the arguments of `fire`. */
export type GetStock = (sku: string, signal?: AbortSignal) => Promise<StockResponse>;

/** Before: opossum. */
export function opossumStack(getStock: GetStock) {
  const breaker = new OpossumBreaker((sku: string) => getStock(sku), {
    timeout: 1_000, // each call
    errorThresholdPercentage: 50,
    volumeThreshold: 10,
    rollingCountTimeout: 10_000,
    rollingCountBuckets: 10,
    resetTimeout: 10_000,
    capacity: 10,
  });
  breaker.fallback(() => UNKNOWN);

  const get = (sku: string): Promise<StockResponse | typeof UNKNOWN> => breaker.fire(sku);
  return { get, breaker };
}

/** After: bulwark. */
export function bulwarkStack(getStock: GetStock) {
  const breaker = new CircuitBreaker({
    failureRate: { threshold: 0.5, minimumCalls: 10, window: { duration: 10_000, buckets: 10 } },
    recoveryTimeout: 10_000,
  });
  const fallback = withFallback(UNKNOWN);
  const perCall = withTimeout(1_000);
  const bulkhead = new Bulkhead({ maxConcurrent: 10 });
  const stack = compose(fallback, breaker, perCall, bulkhead); // outermost first

  const get = (sku: string): Promise<StockResponse | typeof UNKNOWN> => stack.execute(({ signal }) => getStock(sku, signal));
  return { get, breaker, fallback, timeout: perCall, bulkhead };
}

/** A stand-in for the stock service: each call answers with the next step of a script after 10 ms. */
export class ScriptedStock {
  calls = 0;
  /** Calls whose signal was aborted while they ran (or before they started). */
  aborted = 0;
  constructor(private readonly script: readonly ('ok' | 'error' | 'hang')[]) {}

  readonly get: GetStock = (sku, signal) => {
    const step = this.script[Math.min(this.calls, this.script.length - 1)];
    this.calls++;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        this.aborted++;
        reject(signal.reason);
        return;
      }
      const timer = step === 'hang' ? undefined : setTimeout(() => (step === 'error' ? reject(new Error(`stock service failed for ${sku}`)) : resolve({ status: 200, sku, count: 7 })), 10);
      signal?.addEventListener('abort', () => {
        this.aborted++;
        clearTimeout(timer);
        reject(signal.reason);
      }, { once: true });
    });
  };
}

async function main(): Promise<void> {
  for (const [name, build] of [['opossum', opossumStack], ['bulwark', bulwarkStack]] as const) {
    const service = new ScriptedStock(['ok', 'error']);
    const stack = build(service.get);
    console.log(`${name}: ${JSON.stringify(await stack.get('sku-1'))}, then ${JSON.stringify(await stack.get('sku-1'))}`);
    if ('shutdown' in stack.breaker) stack.breaker.shutdown(); // opossum's timers
  }
}

runMain(import.meta.url, main);
