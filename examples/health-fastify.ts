/**
 * Health checks in a Fastify 5 app. Fastify has no `(req, res, next)` middleware of its own,
 * so each health path gets a route that hands the raw request and response to the handler
 * (`reply.hijack()` tells Fastify the response is taken care of). `app.all` lets the handler
 * answer `HEAD` and the 405 for other methods itself.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/health-fastify.ts
 * It starts the app on a free port, probes it, drains it and exits.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { HealthMonitor, nodeHealthHandler } from 'bulwark/health';
import { runMain } from './is-main.js';

/** A stand-in for a database client. */
const db = { ping: ({ signal }: { signal: AbortSignal }) => (signal.aborted ? Promise.reject(signal.reason) : Promise.resolve()) };

export const health = new HealthMonitor({ timeout: 2_000, cacheTtl: 1_000 }).addCheck('database', ({ signal }) => db.ping({ signal }), {
  timeout: 500,
});

/** Registers `/health`, `/ready` and `/live` (or the paths given to the handler) on a Fastify app. */
export function registerHealthRoutes(app: FastifyInstance, monitor: HealthMonitor): void {
  const handle = nodeHealthHandler(monitor);
  for (const path of Object.values(handle.paths)) {
    if (path === false) continue;
    app.all(path, { logLevel: 'warn' }, (request, reply) => {
      reply.hijack();
      return handle(request.raw, reply.raw);
    });
  }
}

export function buildApp(): FastifyInstance {
  const app = Fastify();
  registerHealthRoutes(app, health);
  app.get('/products', () => [{ id: 1, name: 'teapot' }]);
  return app;
}

/** SIGTERM: fail readiness at once, keep serving while the load balancers notice, then close (app.close() lets in-flight requests finish). */
export function shutDownGracefully(app: FastifyInstance, drainDelay = 15_000): void {
  process.once('SIGTERM', () => {
    health.drain();
    setTimeout(() => void app.close(), drainDelay);
  });
}

async function main(): Promise<void> {
  const app = buildApp();
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  health.markReady();
  try {
    for (const [method, path] of [['GET', '/health'], ['HEAD', '/health'], ['GET', '/ready'], ['POST', '/ready'], ['GET', '/products']] as const) {
      const response = await fetch(base + path, { method });
      console.log(`${method} ${path} → ${response.status} ${await response.text()}`);
    }
  } finally {
    await app.close();
  }
}

runMain(import.meta.url, main);
