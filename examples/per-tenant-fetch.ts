/**
 * Per-tenant limits in front of one `bulwark/fetch` client: a multi-tenant service calls a
 * partner API on behalf of its tenants, and no tenant may use more than its share of the
 * partner's quota. The client keeps its per-origin pipeline (timeouts, retries honouring
 * Retry-After, breaker); a `RateLimiterGroup` keyed by tenant sits in front of it, so a noisy
 * tenant is refused with a `RateLimitedError` (and a `retryAfter` to answer 429 with) while the
 * others go on.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/per-tenant-fetch.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RateLimiterGroup, isRateLimitedError, type Clock } from 'bulwark';
import { resilientFetch } from 'bulwark/fetch';
import { runMain } from './is-main.js';

/** A partner API client that gives every tenant `perSecond` requests a second (and a burst of as many). */
export function partnerClient(baseUrl: string, perSecond: number, clock?: Clock) {
  const api = resilientFetch({ name: 'partner', totalTimeout: 5_000, ...(clock === undefined ? {} : { clock }) });
  const tenants = new RateLimiterGroup({ rate: perSecond, name: 'tenants', ...(clock === undefined ? {} : { clock }) }, { maxKeys: 10_000 });

  /** One lookup for `tenant`: the partner's answer, or `{ status: 429, retryAfter }` when the tenant is over its share. */
  async function lookup(tenant: string, id: string): Promise<{ status: number; retryAfter?: number }> {
    try {
      const response = await tenants.execute(tenant, ({ signal }) => api(`${baseUrl}/lookup/${encodeURIComponent(id)}`, { signal }));
      await response.body?.cancel();
      return { status: response.status };
    } catch (error) {
      if (isRateLimitedError(error)) return { status: 429, retryAfter: Math.ceil(error.retryAfter / 1_000) };
      throw error;
    }
  }
  return { api, tenants, lookup };
}

async function main(): Promise<void> {
  const server = createServer((_request, response) => response.writeHead(200).end('ok'));
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { lookup } = partnerClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 5);
  const noisy = await Promise.all(Array.from({ length: 8 }, (_, i) => lookup('noisy', String(i))));
  const quiet = await Promise.all(Array.from({ length: 3 }, (_, i) => lookup('quiet', String(i))));
  console.log('noisy tenant:', noisy.map((answer) => answer.status).join(' '));
  console.log('quiet tenant:', quiet.map((answer) => answer.status).join(' '));
  server.closeAllConnections();
  server.close();
}

runMain(import.meta.url, main);
