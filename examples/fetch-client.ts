/**
 * An HTTP API client on `bulwark/fetch`: one `resilientFetch` for a catalog service, with the
 * standard pipeline per origin (total timeout → retry → circuit breaker → attempt timeout), its
 * metrics in a registry and its failures in the logs. Reads are hedged after 300 ms; an order
 * is a POST, retried only because it carries an `Idempotency-Key`; a 404 is an answer, not a
 * failure, and comes back as `undefined`.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/fetch-client.ts
 * It starts a local catalog that fails now and then, and prints what the client saw.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MetricsRegistry, logPolicyEvents, type Clock, type PolicyLogger } from 'bulwark';
import { isHttpError, resilientFetch } from 'bulwark/fetch';
import { runMain } from './is-main.js';

export interface Product {
  readonly id: string;
  readonly name: string;
  readonly cents: number;
}

export interface CatalogClientOptions {
  /** `https://catalog.internal`: the client keeps one breaker (and one metrics series) per origin. */
  readonly baseUrl: string;
  /** Where the client's policies report; `logPolicyEvents(registry, logger)` writes their lines. */
  readonly registry?: MetricsRegistry;
  /** The fetch to run (Node's global one by default). */
  readonly fetch?: typeof fetch;
  /** For tests: the source of time of every policy. */
  readonly clock?: Clock;
}

/** A catalog client: every call goes through the same resilient fetch. */
export function catalogClient({ baseUrl, registry, fetch, clock }: CatalogClientOptions) {
  const api = resilientFetch({
    name: 'catalog',
    attemptTimeout: 2_000,
    totalTimeout: 10_000,
    retry: { maxRetries: 3, baseDelay: 200 },
    hedge: { delay: 300 },
    throwOnTransient: true, // a 503 after the retries is an exception to this client, with its status
    ...(registry === undefined ? {} : { metrics: registry }),
    ...(fetch === undefined ? {} : { fetch }),
    ...(clock === undefined ? {} : { clock }),
  });

  return {
    /** The product, or `undefined` when the catalog has none with this id. */
    async product(id: string, signal?: AbortSignal): Promise<Product | undefined> {
      const response = await api(`${baseUrl}/products/${encodeURIComponent(id)}`, { headers: { accept: 'application/json' }, ...(signal === undefined ? {} : { signal }) });
      if (response.status === 404) {
        await response.body?.cancel();
        return undefined;
      }
      if (!response.ok) throw new Error(`catalog answered ${response.status}`);
      return (await response.json()) as Product;
    },

    /** Orders a product once, however many times the request is sent: the key makes the POST safe to retry. */
    async order(productId: string, quantity: number, idempotencyKey: string): Promise<{ readonly orderId: string }> {
      const response = await api(`${baseUrl}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
        body: JSON.stringify({ productId, quantity }),
      });
      if (!response.ok) throw new Error(`catalog refused the order: ${response.status}`);
      return (await response.json()) as { orderId: string };
    },

    /** The breaker of the catalog's origin, for a health check. */
    state: (): string => api.breakers?.peek(new URL(baseUrl).origin)?.state ?? 'closed',
  };
}

/** A local catalog that answers 503 to every third request, and deduplicates orders by key. */
export async function startFlakyCatalog(): Promise<{ baseUrl: string; orders: Map<string, string>; close(): Promise<void> }> {
  let requests = 0;
  const orders = new Map<string, string>();
  const server = createServer((req, res) => {
    requests++;
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (requests % 3 === 0) {
        res.writeHead(503, { 'retry-after': '1' }).end('busy');
        return;
      }
      if (req.method === 'POST' && req.url === '/orders') {
        const key = String(req.headers['idempotency-key']);
        if (!orders.has(key)) orders.set(key, `order-${orders.size + 1}`);
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ orderId: orders.get(key), body: JSON.parse(body) as unknown }));
        return;
      }
      const id = /^\/products\/(\w+)$/.exec(req.url ?? '')?.[1];
      if (id === undefined || id === 'missing') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, name: `Product ${id}`, cents: 1_999 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    orders,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

runMain(import.meta.url, async () => {
  const catalog = await startFlakyCatalog();
  const registry = new MetricsRegistry();
  const logger: PolicyLogger = console;
  const stopLogging = logPolicyEvents(registry, logger, { style: 'message-first', levels: { retry: 'info' } });
  const client = catalogClient({ baseUrl: catalog.baseUrl, registry });
  try {
    for (const id of ['a1', 'b2', 'missing', 'c3']) console.log(id, await client.product(id));
    console.log(await client.order('a1', 2, 'order-2026-0001'));
    console.log(await client.order('a1', 2, 'order-2026-0001'), '(the same order: the key deduplicates it)');
  } catch (error) {
    console.error(isHttpError(error) ? `gave up: ${error.message}` : error);
  } finally {
    for (const policy of registry.snapshot().policies) console.log(`${policy.kind} ${policy.name}: ${policy.calls} calls, ${policy.failures} failures, ${policy.retries} retries`);
    stopLogging();
    await catalog.close();
  }
});
