/**
 * No socket stays held: the body of every discarded response is cancelled. Each retried
 * response here carries 100 kB, more than a client buffers unread, so a body left alone would
 * keep its connection busy and every retry would open another one (the control shows it).
 */
import { resilientFetch } from 'bulwark/fetch';
import { describe, expect, it } from 'vitest';
import { clock, fetches, until, useServer } from './fixtures.js';

const handle = useServer();
const BIG = 100_000;
const CALLS = 1_000;
const AT_ONCE = 10;

/** Runs `calls` calls of `one`, `atOnce` at a time. */
async function inWaves(calls: number, atOnce: number, one: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: atOnce }, async () => {
    while (next < calls) await one(next++);
  }));
}

describe.each(fetches)('with %s', (_name, fetch) => {
  it('control: a response left unread holds its connection', async () => {
    handle.server.otherwise({ status: 503, body: BIG });
    const kept: Response[] = [];
    for (let i = 0; i < 20; i++) kept.push(await fetch(handle.server.origin));
    expect(handle.server.openSockets()).toBeGreaterThanOrEqual(20);
    await Promise.all(kept.map((response) => response.body?.cancel()));
    await until(() => handle.server.openSockets() < 20);
  });

  it(`leaves no socket held after ${CALLS} retried calls, ${AT_ONCE} at a time`, async () => {
    // The first request of each call answers a 100 kB 503; its retry answers 200.
    const seen = new Set<string>();
    handle.server.otherwise((request) => (seen.has(request.path) ? { status: 200, body: 'ok' } : (seen.add(request.path), { status: 503, body: BIG })));
    // Half the attempts fail: a breaker would rightly open, so there is none here. No deadline
    // either: on the test's fast clock a loaded machine would turn a slow attempt into a retry.
    const api = resilientFetch({ fetch, clock, retry: { baseDelay: 0 }, breaker: false, attemptTimeout: Infinity, totalTimeout: Infinity });
    let ok = 0;
    const openBefore = handle.server.openSockets();
    const openedBefore = handle.server.socketsOpened();
    await inWaves(CALLS, AT_ONCE, async (index) => {
      const response = await api(`${handle.server.origin}/call/${index}`);
      if (response.status === 200) ok++;
      await response.text();
    });
    expect(ok).toBe(CALLS);
    expect(handle.server.requests).toHaveLength(2 * CALLS);
    // Every 503 was cancelled, which closes its connection: a thousand of them were opened...
    expect(handle.server.socketsOpened() - openedBefore).toBeGreaterThanOrEqual(CALLS);
    // ...and what stays open is the keep-alive pool of the callers running at once (a
    // connection still closing as the next attempt goes out may take one more each): bounded
    // by the callers, not the calls (100 calls leave as many as 1 000).
    // Connections being closed (a cancelled body's) close within moments.
    await until(() => handle.server.openSockets() - openBefore <= 2 * AT_ONCE).catch(() => undefined);
    expect(handle.server.openSockets() - openBefore).toBeLessThanOrEqual(2 * AT_ONCE);
  }, 60_000);
});
