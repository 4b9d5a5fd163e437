/**
 * Health checks on a plain `node:http` server: `/health`, `/ready` and `/live` in front of
 * the app, a database check with a timeout, a circuit breaker reporting in, and the SIGTERM
 * sequence that takes the pod out of rotation before the server closes.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/health-node.ts
 * It starts the server on a free port, probes it through startup, a database outage and a
 * drain, prints each answer, and exits. Importing this file starts nothing.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CircuitBreaker } from 'bulwark';
import { HealthMonitor, nodeHealthHandler } from 'bulwark/health';
import { runMain } from './is-main.js';

/** A stand-in for a database pool whose ping honours an AbortSignal, as pg and mysql2 do. */
export const database = {
  up: true,
  ping({ signal }: { signal: AbortSignal }): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!database.up) {
        reject(new Error('connect ECONNREFUSED 10.0.4.12:5432 (user=orders password=s3cret)'));
        return;
      }
      const timer = setTimeout(resolve, 2);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason);
      }, { once: true });
    });
  },
};

/** The payments breaker the app's calls go through (see docs/circuit-breaker.md). */
export const paymentsBreaker = new CircuitBreaker({ failureThreshold: 5, recoveryTimeout: 30_000, name: 'payments' });

/** The monitor: checks have 2 s at most; probes within 1 s share one report. */
export const health = new HealthMonitor({ timeout: 2_000, cacheTtl: 1_000 })
  .addCheck('database', ({ signal }) => database.ping({ signal }), { timeout: 500 })  // critical: no database, no service
  .addCircuitBreaker('payments', paymentsBreaker);                                    // open: degraded, still in rotation

const healthHandler = nodeHealthHandler(health);

/** The application itself. */
function app(_req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ hello: 'world' }));
}

/** The server: health endpoints first, every other path goes to the app. */
export function createAppServer(): Server {
  return createServer((req, res) => {
    void healthHandler(req, res, () => app(req, res));
  });
}

/**
 * On SIGTERM: fail readiness at once, keep serving while load balancers and kube-proxy
 * notice (readiness `periodSeconds × failureThreshold`, plus propagation), then close.
 * `drainDelay` plus the time to finish requests must stay under the pod's
 * `terminationGracePeriodSeconds`.
 */
export function shutDownGracefully(server: Server, { drainDelay = 15_000 } = {}): void {
  process.once('SIGTERM', () => {
    void (async () => {
      health.drain();                       // /ready → 503 from now on; /live stays 200
      await sleep(drainDelay);              // new requests still arrive and are served
      server.close();                       // stop accepting; in-flight requests finish
      server.closeIdleConnections();        // idle keep-alive sockets would hold close() open
      // then: await pool.end(), flush telemetry… and let the process exit on its own
    })();
  });
}

async function main(): Promise<void> {
  const server = createAppServer();
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const probe = async (path: string, accept?: string): Promise<void> => {
    const response = await fetch(base + path, accept === undefined ? {} : { headers: { accept } });
    console.log(`GET ${path} → ${response.status} ${await response.text()}`);
  };
  try {
    await probe('/ready');                  // 503: starting
    health.markReady();                     // warm-up done
    await probe('/ready');                  // 200
    await probe('/health');
    database.up = false;
    await sleep(1_000);                     // let the cached report expire
    await probe('/health');                 // 503, and no password in the body
    await probe('/health', 'application/health+json');
    health.drain();
    await probe('/ready');                  // 503: draining
    await probe('/live');                   // 200
  } finally {
    server.close();
    server.closeAllConnections();
  }
}

runMain(import.meta.url, main);
