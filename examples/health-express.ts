/**
 * Health checks in an Express 5 app: one `app.use(nodeHealthHandler(health))` before the
 * routes, a verbose report for requests from inside the cluster, and the SIGTERM sequence.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/health-express.ts
 * It starts the app on a free port, probes it, drains it and exits.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Request } from 'express';
import { CircuitBreaker } from 'bulwark';
import { HealthMonitor, nodeHealthHandler } from 'bulwark/health';
import { runMain } from './is-main.js';

/** Stand-ins for a database and a cache client. */
const db = { query: (_sql: string, _options: { signal: AbortSignal }) => Promise.resolve([{ ok: 1 }]) };
const redis = { ping: () => Promise.resolve('PONG') };

export const recommendationsBreaker = new CircuitBreaker({ name: 'recommendations' });

export const health = new HealthMonitor({ timeout: 2_000, cacheTtl: 1_000 })
  .addCheck('database', ({ signal }) => db.query('SELECT 1', { signal }), { timeout: 500 })
  .addCheck('cache', () => redis.ping(), { critical: false })     // slower without it, not down
  .addCircuitBreaker('recommendations', recommendationsBreaker);

/** Error text only for callers that present the internal token; everyone else sees statuses. */
const INTERNAL_TOKEN = process.env['HEALTH_TOKEN'];

export const app = express();
app.use(
  nodeHealthHandler(health, {
    verbose: (req: Request) => INTERNAL_TOKEN !== undefined && req.get('x-health-token') === INTERNAL_TOKEN,
  }),
);
app.get('/products', (_req, res) => {
  res.json([{ id: 1, name: 'teapot' }]);
});

/** SIGTERM: fail readiness, keep serving while the load balancers notice, then close. */
export function shutDownGracefully(server: Server, drainDelay = 15_000): void {
  process.once('SIGTERM', () => {
    health.drain();
    void sleep(drainDelay).then(() => {
      server.close();
      server.closeIdleConnections();
    });
  });
}

async function main(): Promise<void> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  health.markReady();
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const path of ['/health', '/ready', '/live', '/products']) {
      const response = await fetch(base + path);
      console.log(`GET ${path} → ${response.status} ${await response.text()}`);
    }
    health.drain();
    const ready = await fetch(`${base}/ready`);
    console.log(`after drain: GET /ready → ${ready.status} ${await ready.text()}`);
  } finally {
    server.close();
    server.closeAllConnections();
  }
}

runMain(import.meta.url, main);
