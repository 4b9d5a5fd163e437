/**
 * Webhook delivery on `bulwark/fetch`: one `resilientFetch` POSTs events to the endpoints of
 * many customers. What makes it safe:
 *
 * - each delivery carries the event's id as its `Idempotency-Key`, so a POST may be retried
 *   (the receiver deduplicates), and `Retry-After` from a receiver that is shedding load is
 *   honoured, never beaten;
 * - each customer's origin has its own circuit breaker: one customer's endpoint that is down
 *   costs that customer a skipped delivery (queued for later), not everyone's latency;
 * - `maxOrigins` bounds the breakers and the metrics series whatever the number of customers:
 *   the least recently used healthy origin is forgotten first, a failing one never.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/webhooks.ts
 * It starts two local receivers, one healthy and one down, and delivers to both.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isCircuitOpenError, isTimeoutError, type Clock } from 'bulwark';
import { resilientFetch } from 'bulwark/fetch';
import { runMain } from './is-main.js';

export interface WebhookEvent {
  readonly id: string;
  readonly type: string;
  readonly data: unknown;
}

/** How one delivery ended: `retryLater` means it was not sent now (the endpoint's circuit is open) or gave up. */
export type Delivery = { readonly status: 'delivered' } | { readonly status: 'retryLater'; readonly reason: string };

export interface WebhookSenderOptions {
  /** The fetch to run (Node's global one by default). */
  readonly fetch?: typeof fetch;
  /** For tests: the source of time of every policy. */
  readonly clock?: Clock;
}

/** Delivers webhook events to customers' endpoints. */
export function webhookSender({ fetch, clock }: WebhookSenderOptions = {}) {
  const post = resilientFetch({
    name: 'webhooks',
    totalTimeout: 30_000,
    attemptTimeout: 5_000,
    retry: { maxRetries: 4, baseDelay: 1_000, jitter: 'full' },
    // A customer's endpoint that fails 5 times in a row is left alone for a minute.
    breaker: { failureRate: undefined, failureThreshold: 5, recoveryTimeout: 60_000 },
    maxOrigins: 10_000,
    ...(fetch === undefined ? {} : { fetch }),
    ...(clock === undefined ? {} : { clock }),
  });

  return {
    async deliver(endpoint: string, event: WebhookEvent): Promise<Delivery> {
      try {
        const response = await post(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': event.id, 'x-webhook-type': event.type },
          body: JSON.stringify(event),
        });
        await response.body?.cancel(); // the receiver's answer is not needed: free the connection
        if (response.ok) return { status: 'delivered' };
        return { status: 'retryLater', reason: `answered ${response.status}` };
      } catch (error) {
        if (isCircuitOpenError(error)) return { status: 'retryLater', reason: 'endpoint circuit open' };
        if (isTimeoutError(error)) return { status: 'retryLater', reason: 'timed out' };
        return { status: 'retryLater', reason: error instanceof Error ? error.message : String(error) };
      }
    },
    /** The state of an endpoint's breaker (for a dashboard of customers' endpoints). */
    endpointState: (endpoint: string): string => post.breakers?.peek(new URL(endpoint).origin)?.state ?? 'unknown',
  };
}

/** A local receiver: `answer` decides each request's status; it records the idempotency keys it saw. */
export async function startReceiver(answer: (index: number) => number): Promise<{ url: string; keys: string[]; close(): Promise<void> }> {
  const keys: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      keys.push(String(req.headers['idempotency-key']));
      res.writeHead(answer(keys.length - 1)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    keys,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

runMain(import.meta.url, async () => {
  const healthy = await startReceiver((index) => (index === 0 ? 503 : 204));
  const down = await startReceiver(() => 502);
  const sender = webhookSender();
  try {
    for (let i = 1; i <= 3; i++) {
      const event = { id: `evt_${i}`, type: 'invoice.paid', data: { invoice: i } };
      console.log(event.id, 'healthy:', await sender.deliver(healthy.url, event), 'down:', await sender.deliver(down.url, event));
    }
    console.log('breakers:', { healthy: sender.endpointState(healthy.url), down: sender.endpointState(down.url) });
  } finally {
    await Promise.all([healthy.close(), down.close()]);
  }
});
