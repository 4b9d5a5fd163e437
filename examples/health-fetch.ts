/**
 * Health checks for runtimes built on the web's `Request` and `Response`: Bun, Deno,
 * Cloudflare Workers and other edge runtimes, Hono, and Next.js route handlers. The handler
 * resolves to a `Response` for a health path and to `undefined` for any other, so the request
 * goes on to the app.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/health-fetch.ts
 * It builds real `Request` objects, passes them through, prints the answers and exits.
 */
import { HealthMonitor, fetchHealthHandler } from 'bulwark/health';
import { runMain } from './is-main.js';

/** A stand-in for an HTTP dependency with its own health endpoint. */
const INVENTORY_URL = 'https://inventory.internal.example/health';

export const health = new HealthMonitor({ timeout: 2_000, cacheTtl: 1_000 })
  // A dependency over HTTP: fetch takes the signal, so a timed-out probe closes its socket.
  .addCheck('inventory', async ({ signal }) => (await fetch(INVENTORY_URL, { signal })).ok, { critical: false })
  .addCheck('config', () => true); // loaded at startup: passes once the process runs

const healthHandler = fetchHealthHandler(health);

/** The application itself. */
function app(request: Request): Response {
  return Response.json({ path: new URL(request.url).pathname });
}

/**
 * One `fetch` function for the whole service, in the shape Bun.serve({ fetch }),
 * Deno.serve(fetch) and a worker's `export default { fetch }` take.
 */
export async function handleRequest(request: Request): Promise<Response> {
  return (await healthHandler(request)) ?? app(request);
}

export default { fetch: handleRequest };

/**
 * Hono: `app.use(healthMiddleware)` before the routes. (Typed by the shape it uses, so this
 * file needs no Hono; with Hono installed, `c` is its `Context` and `next` its `Next`.)
 */
export async function healthMiddleware(c: { req: { raw: Request } }, next: () => Promise<void>): Promise<Response | undefined> {
  const response = await healthHandler(c.req.raw);
  if (response !== undefined) return response;
  await next();
  return undefined;
}

/**
 * Next.js App Router: each of `app/health/route.ts`, `app/ready/route.ts` and
 * `app/live/route.ts` holds `export { GET, HEAD, dynamic } from '…/health-routes'`.
 */
export async function GET(request: Request): Promise<Response> {
  return (await healthHandler(request)) ?? new Response(null, { status: 404 });
}
export const HEAD = GET;
/** Never prerender or cache a health route at build time. */
export const dynamic = 'force-dynamic';

async function main(): Promise<void> {
  // No inventory service runs here: its check fails (not critical: the service is degraded).
  const probes = [
    new Request('http://localhost/health'),
    new Request('http://localhost/health', { headers: { accept: 'application/health+json' } }),
    new Request('http://localhost/ready'),
    new Request('http://localhost/products'),
  ];
  health.markReady();
  for (const request of probes) {
    const response = await handleRequest(request);
    console.log(`${request.method} ${new URL(request.url).pathname} → ${response.status} ${await response.text()}`);
  }
  health.drain();
  const ready = await GET(new Request('http://localhost/ready'));
  console.log(`after drain: GET /ready → ${ready.status} ${await ready.text()}`);
}

runMain(import.meta.url, main);
