/**
 * The hedging example against its real local server, with small numbers. No timing is asserted
 * (the CPU is shared): what is checked is that every call answers, that hedges start and win,
 * that the server's load is the calls plus the hedges, and that losers leave the breaker closed.
 */
import { describe, expect, it } from 'vitest';
import { HedgeLostError, type HedgeEvents } from 'bulwark';
import { breaker, hedgedGet, hedging, latencies, searchStack, startLongTailServer } from './hedging.js';

describe('examples/hedging.ts', () => {
  it('answers every call through the hedged stack; the server gets at most one request per call plus one per hedge', async () => {
    // Every other request is slow (200 ms): hedges start at 15 ms and win.
    const server = await startLongTailServer({ fastMs: 1, slowMs: 200, slowShare: 0.5 });
    const hedges: HedgeEvents['hedge'][] = [];
    const wins: HedgeEvents['won'][] = [];
    const offHedge = hedging.on('hedge', (event) => void hedges.push(event));
    const offWon = hedging.on('won', (event) => void wins.push(event));
    try {
      const measured = await latencies(12, () => hedgedGet(server.url).then((body) => expect(body).toBe('ok')));
      expect(measured).toHaveLength(12);
      expect(hedges.length).toBeGreaterThan(0);
      expect(wins.length).toBeGreaterThan(0);
      expect(wins.length).toBeLessThanOrEqual(hedges.length);
      // A hedge aborted before its request left (the other answered first) never reaches the server.
      expect(server.requests()).toBeGreaterThanOrEqual(12);
      expect(server.requests()).toBeLessThanOrEqual(12 + hedges.length);
      expect(breaker.stats()).toMatchObject({ state: 'closed', failures: 0 });
    } finally {
      offHedge();
      offWon();
      await server.close();
    }
  });

  it('a request that lost is aborted through its signal with HedgeLostError and is not a failure of the breaker', async () => {
    const server = await startLongTailServer({ fastMs: 1, slowMs: 200, slowShare: 0.5 });
    try {
      const reasons: unknown[] = [];
      // Requests 1 and 2 of this server: 1 is fast, 2 slow; request 2 is the first of this call.
      await fetch(server.url).then((response) => response.text());
      const body = await searchStack.execute(async ({ signal, attempt }) => {
        signal.addEventListener('abort', () => reasons.push(signal.reason));
        const response = await fetch(server.url, { signal });
        return `${await response.text()} from attempt ${attempt}`;
      });
      expect(body).toBe('ok from attempt 2');
      expect(reasons).toEqual([new HedgeLostError(2)]);
      expect(breaker.stats()).toMatchObject({ state: 'closed', failures: 0 });
    } finally {
      await server.close();
    }
  });
});
