/**
 * Runs examples/rate-limit.ts on fake timers: the partner client waits for permits, the server
 * answers 429 with Retry-After, and the text-message quota holds every minute to 3.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { fetchOrder, handle, partnerQuota, perClient, sendText } from './rate-limit.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});

afterEach(() => {
  vi.useRealTimers();
});

it('the partner client queues a burst for permits instead of failing', async () => {
  const sentAt: number[] = [];
  const get = vi.fn(async (url: string) => {
    sentAt.push(Date.now());
    return url;
  });
  const orders = Promise.all(Array.from({ length: 60 }, (_, i) => fetchOrder(String(i), get)));
  expect(partnerQuota.queued).toBe(10);
  await vi.advanceTimersByTimeAsync(200);
  await expect(orders).resolves.toHaveLength(60);
  expect(sentAt.filter((at) => at === 0)).toHaveLength(50);
  expect(sentAt.slice(50)).toEqual([20, 40, 60, 80, 100, 120, 140, 160, 180, 200]);
  expect(vi.getTimerCount()).toBe(0);
});

it('the server answers 429 with Retry-After once a client spent its permits, per client', async () => {
  const replies = await Promise.all(Array.from({ length: 21 }, () => handle('client-a', async () => 'data')));
  expect(replies.slice(0, 20).every((reply) => reply.status === 200)).toBe(true);
  expect(replies[20]).toEqual({
    status: 429,
    headers: { 'retry-after': '1' }, // 50 ms to the next permit, rounded up to a whole second
    body: { error: 'Rate limit of 20 per 1000 ms reached: the next permit is 50 ms away' },
  });
  expect((await handle('client-b', async () => 'data')).status).toBe(200);
  expect(perClient.get('client-a').name).toBe('clients:client-a');
  vi.advanceTimersByTime(50);
  expect((await handle('client-a', async () => 'data')).status).toBe(200);
});

it('the text-message quota holds any minute to 3 messages', async () => {
  const send = vi.fn(async () => undefined);
  expect(await sendText('+1', send)).toBe('sent');
  vi.advanceTimersByTime(20_000);
  expect(await sendText('+1', send)).toBe('sent');
  expect(await sendText('+1', send)).toBe('sent');
  expect(await sendText('+1', send)).toEqual({ retryInSeconds: 40 });
  vi.advanceTimersByTime(40_000);
  expect(await sendText('+1', send)).toBe('sent');
  expect(await sendText('+1', send)).toEqual({ retryInSeconds: 20 });
  expect(send).toHaveBeenCalledTimes(4);
});
