/**
 * The webhook sender of examples/webhooks.ts against two local receivers: a healthy one that
 * sheds load once (503) and one that is down (502). POSTs are retried because each carries its
 * event's id as Idempotency-Key; the failing endpoint's circuit opens, and only its own.
 */
import type { Clock } from 'bulwark';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, webhookSender } from './webhooks.js';

const fast: Clock = (() => {
  const start = performance.now();
  const epoch = Date.now();
  return {
    now: () => epoch + (performance.now() - start) * 100,
    setTimeout: (callback: () => void, ms: number) => setTimeout(callback, Math.ceil(ms / 100) + 1),
    clearTimeout: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout),
  };
})();

let healthy: Awaited<ReturnType<typeof startReceiver>>;
let down: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  healthy = await startReceiver((index) => (index === 0 ? 503 : 204));
  down = await startReceiver(() => 502);
});
afterAll(() => Promise.all([healthy.close(), down.close()]));

describe('webhook delivery', () => {
  it('retries a POST with the event id as its key, and keeps one customer\'s outage to that customer', async () => {
    const sender = webhookSender({ clock: fast });
    const event = (i: number) => ({ id: `evt_${i}`, type: 'invoice.paid', data: { invoice: i } });

    expect(await sender.deliver(healthy.url, event(1))).toEqual({ status: 'delivered' });
    // The 503 was retried with the same key: the receiver can tell it is one delivery.
    expect(healthy.keys).toEqual(['evt_1', 'evt_1']);

    // Five attempts of the first delivery to the endpoint that is down: its circuit opens.
    expect(await sender.deliver(down.url, event(1))).toEqual({ status: 'retryLater', reason: 'answered 502' });
    expect(down.keys).toEqual(['evt_1', 'evt_1', 'evt_1', 'evt_1', 'evt_1']);
    expect(sender.endpointState(down.url)).toBe('open');
    expect(await sender.deliver(down.url, event(2))).toEqual({ status: 'retryLater', reason: 'endpoint circuit open' });
    expect(down.keys).toHaveLength(5);

    // The healthy customer is not affected.
    expect(await sender.deliver(healthy.url, event(2))).toEqual({ status: 'delivered' });
    expect(sender.endpointState(healthy.url)).toBe('closed');
  });
});
