/**
 * The catalog client of examples/fetch-client.ts against its flaky local catalog: every third
 * request answers 503 with `Retry-After: 1`, and the client's callers never see it. The
 * policies run on a clock a hundred times faster than real time, so a second is 10 ms.
 */
import { MetricsRegistry, type Clock } from 'bulwark';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogClient, startFlakyCatalog } from './fetch-client.js';

const fast: Clock = (() => {
  const start = performance.now();
  const epoch = Date.now();
  return {
    now: () => epoch + (performance.now() - start) * 100,
    setTimeout: (callback: () => void, ms: number) => setTimeout(callback, Math.ceil(ms / 100) + 1),
    clearTimeout: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout),
  };
})();

let catalog: Awaited<ReturnType<typeof startFlakyCatalog>>;
beforeAll(async () => {
  catalog = await startFlakyCatalog();
});
afterAll(() => catalog.close());

describe('the catalog client', () => {
  it('reads products through the catalog\'s 503s, and a 404 is undefined', async () => {
    const registry = new MetricsRegistry();
    const client = catalogClient({ baseUrl: catalog.baseUrl, registry, clock: fast });
    const products = [];
    for (const id of ['a1', 'b2', 'c3', 'd4', 'e5', 'f6']) products.push(await client.product(id));
    expect(products.map((product) => product?.name)).toEqual(['Product a1', 'Product b2', 'Product c3', 'Product d4', 'Product e5', 'Product f6']);
    expect(await client.product('missing')).toBeUndefined();
    const retry = registry.snapshot().policies.find((policy) => policy.kind === 'retry');
    expect(retry?.name).toBe(`catalog:${catalog.baseUrl}`);
    expect(retry?.retries).toBeGreaterThan(0);
    expect(client.state()).toBe('closed');
  });

  it('retries an order with its idempotency key, and the catalog books it once', async () => {
    const client = catalogClient({ baseUrl: catalog.baseUrl, clock: fast });
    const before = catalog.orders.size;
    const orders = [];
    for (let i = 0; i < 4; i++) orders.push(await client.order('a1', 1, 'key-1'));
    expect(new Set(orders.map((order) => order.orderId)).size).toBe(1);
    expect(catalog.orders.size).toBe(before + 1);
  });
});
