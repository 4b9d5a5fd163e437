/**
 * Metrics and logs for a dependency's stack: a `MetricsRegistry` counts what every policy of
 * the stack does and keeps a latency histogram per policy; `logPolicyEvents` writes what
 * changes (the breaker opening and closing, give-ups, refusals) to a logger, summarising
 * bursts. `registry.snapshot()` is plain data: print it, serve it as JSON, or export it with
 * `bulwark/prometheus` or `bulwark/otel`.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/metrics.ts
 * It sends 60 calls to a quotes service that fails for a while, then prints the snapshot.
 */
import {
  CircuitBreaker,
  MetricsRegistry,
  compose,
  logPolicyEvents,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type MetricsSnapshot,
  type PolicyMetricsSnapshot,
} from 'bulwark';
import { runMain } from './is-main.js';

/** A stand-in for a quotes API: answers in 2–12 ms, and fails every call while `down`. */
export const quotesApi = {
  down: false,
  async quote(symbol: string, signal: AbortSignal): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 2 + Math.random() * 10);
      signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
    });
    if (quotesApi.down) throw new Error('quotes: 503 Service Unavailable');
    return symbol.length * 10;
  },
};

// One name for the whole stack: every policy is named, and the registry tells them apart by kind.
const name = 'quotes';
export const quotes = compose(
  withFallback(() => Number.NaN, { name }), // "no quote" rather than an error page
  new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 200, name }),
  retryWithBackoff({ maxRetries: 2, baseDelay: 5, maxDelay: 20, name }),
  withTimeout(100, { name }),
);

export const registry = new MetricsRegistry();
registry.track(quotes);

/** One line per policy: what a dashboard would show. */
export function describePolicy(policy: PolicyMetricsSnapshot): string {
  const { kind, calls, successes, failures, rejections, retries, fallbacks, latency } = policy;
  const gauges = policy.state === undefined ? '' : ` state=${policy.state}`;
  return (
    `${kind.padEnd(15)} calls=${calls} ok=${successes} failed=${failures} rejected=${rejections} ` +
    `retries=${retries} fallbacks=${fallbacks} p50=${latency.p50.toFixed(1)}ms p99=${latency.p99.toFixed(1)}ms${gauges}`
  );
}

/** The snapshot as JSON: the +Infinity bucket bound is written as null there. */
export function toJson(snapshot: MetricsSnapshot): string {
  return JSON.stringify(snapshot, null, 2);
}

async function main(): Promise<void> {
  // winston's signature is (message, fields); pino's is (fields, message), the default.
  const stopLogging = logPolicyEvents(registry, console, { style: 'message-first', summaryInterval: 1_000 });
  const stopSlowCalls = registry.onCall(({ policy, kind, durationMs, outcome }) => {
    if (kind === 'fallback' && durationMs > 50) console.warn(`slow ${policy} call: ${durationMs.toFixed(0)} ms (${outcome})`);
  });

  for (let i = 0; i < 60; i++) {
    quotesApi.down = i >= 15 && i < 35; // an outage from call 15 to call 34
    if (i === 35) await new Promise((resolve) => setTimeout(resolve, 250)); // past the breaker's recovery timeout
    await quotes.execute(({ signal }) => quotesApi.quote('ACME', signal));
  }

  stopSlowCalls();
  stopLogging(); // writes the summaries still pending, then removes every listener and timer
  console.log('\nper policy:');
  for (const policy of registry.snapshot().policies) console.log(`  ${describePolicy(policy)}`);
}

runMain(import.meta.url, main);
