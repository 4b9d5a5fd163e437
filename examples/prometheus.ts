/**
 * Prometheus metrics for a service's dependencies: one `MetricsRegistry` tracks each
 * dependency's stack, and `bulwark/prometheus` serves it on `/metrics` — with `node:http`
 * here, with Express as middleware, or from a `fetch`-style server. No Prometheus client
 * library is needed.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/prometheus.ts
 * It sends a few calls through a stack whose dependency fails now and then, serves the
 * metrics on 127.0.0.1 (a free port), scrapes them once and prints what Prometheus would see.
 *
 * A scrape config for it:
 *   scrape_configs:
 *     - job_name: checkout
 *       static_configs: [{ targets: ['127.0.0.1:9464'] }]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CircuitBreaker, MetricsRegistry, compose, retryWithBackoff, withFallback, withTimeout } from 'bulwark';
import { prometheusFetchHandler, prometheusHandler } from 'bulwark/prometheus';
import { runMain } from './is-main.js';

/** Every member of the stack is named after the dependency, so its series carry `policy="recommendations"`. */
export const recommendations = compose(
  withFallback([] as string[], { name: 'recommendations' }),
  new CircuitBreaker({ name: 'recommendations', failureThreshold: 5, recoveryTimeout: 10_000 }),
  retryWithBackoff({ name: 'recommendations', maxRetries: 2, baseDelay: 20, maxDelay: 200 }),
  withTimeout(300, { name: 'recommendations' }),
);

export const registry = new MetricsRegistry();
registry.track(recommendations);

/** `node:http`: the handler answers GET/HEAD /metrics and 404 elsewhere. With Express: `app.use(metricsHandler)`. */
export const metricsHandler = prometheusHandler(registry, { constantLabels: { service: 'checkout' } });

/** Bun, Deno, Hono, workers: `metricsFetch(request) ?? app.fetch(request)`. */
export const metricsFetch = prometheusFetchHandler(registry, { constantLabels: { service: 'checkout' } });

async function main(): Promise<void> {
  let calls = 0;
  const flaky = async (): Promise<string[]> => {
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 30));
    if (++calls % 3 === 0) throw new Error('upstream 503');
    return ['socks', 'scarf'];
  };
  for (let i = 0; i < 12; i++) await recommendations.execute(flaky);

  const server = createServer(metricsHandler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    console.log(`GET /metrics → ${response.status} ${response.headers.get('content-type')}\n`);
    console.log(await response.text());
  } finally {
    server.close();
    server.closeAllConnections();
  }
}

runMain(import.meta.url, main);
