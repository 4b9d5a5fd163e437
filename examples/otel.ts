/**
 * OpenTelemetry metrics for a service's dependencies: `bulwark/otel` reports a
 * `MetricsRegistry` through the `Meter` the application already has (`@opentelemetry/api`),
 * so the metrics leave with the rest of its telemetry (OTLP, Prometheus exporter, console…).
 * bulwark imports nothing of OpenTelemetry itself.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/otel.ts
 * It sets up an SDK MeterProvider with the console exporter, sends a few calls through a
 * stack, and prints one export.
 */
import { metrics } from '@opentelemetry/api';
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { Bulkhead, CircuitBreaker, MetricsRegistry, compose, withTimeout } from 'bulwark';
import { registerOpenTelemetryMetrics } from 'bulwark/otel';
import { runMain } from './is-main.js';

export const search = compose(
  new CircuitBreaker({ name: 'search', failureThreshold: 3, recoveryTimeout: 5_000 }),
  withTimeout(100, { name: 'search' }),
  new Bulkhead({ name: 'search', maxConcurrent: 4, maxQueue: 8 }),
);

export const registry = new MetricsRegistry();
registry.track(search);

/**
 * Call once at startup, after the SDK set the global MeterProvider. Returns the function that
 * stops reporting (at shutdown, or in a test).
 */
export function reportBulwarkMetrics(): () => void {
  return registerOpenTelemetryMetrics(registry, metrics.getMeter('checkout'), {
    // seconds; the default follows the registry's buckets (1 ms … 10 s)
    durationBuckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
  });
}

async function main(): Promise<void> {
  const provider = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: 60_000 })],
  });
  metrics.setGlobalMeterProvider(provider);
  const stop = reportBulwarkMetrics();

  const lookups = Array.from({ length: 10 }, (_, i) =>
    search
      .execute(({ signal }) => new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => resolve(`result ${i}`), i % 4 === 0 ? 150 : 20); // every 4th call is too slow
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason);
        });
      }))
      .catch((error: unknown) => (error instanceof Error ? error.name : String(error))),
  );
  console.log(await Promise.all(lookups));

  await provider.forceFlush(); // one export to the console now, rather than in a minute
  stop();
  await provider.shutdown();
}

runMain(import.meta.url, main);
