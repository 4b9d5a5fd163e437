/**
 * Hedging a read against a dependency with a long tail: when no answer came 15 ms after a
 * request started, send a second one and take whichever answers first; the other is aborted
 * through its signal (fetch closes its connection). A budget caps the hedges at about 10 % of
 * the calls, so a dependency slow for everyone does not get its load doubled. A total timeout
 * outside, a breaker and a per-attempt timeout inside: the breaker sees each request, and a
 * request aborted because the other one won is not counted as a failure.
 *
 * Run it: npx tsx --tsconfig examples/tsconfig.json examples/hedging.ts [calls]
 * It starts a local server whose answers take 5 ms, or 100 ms for 5 % of them, makes the calls
 * without and then with hedging, and prints the latencies callers saw and the server's load.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CircuitBreaker, RetryBudget, compose, hedge, withTimeout } from 'bulwark';
import { runMain } from './is-main.js';

/** Hedges of one call: at most 10 % of recent calls, plus 5 a second. */
export const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 5 });

export const hedging = hedge({ delay: 15, maxHedgedAttempts: 1, budget, name: 'search' });

export const breaker = new CircuitBreaker({ failureThreshold: 5, name: 'search' });

/** Total deadline outside the hedging; breaker and per-attempt deadline inside, so each request is judged on its own. */
export const searchStack = compose(withTimeout(1_000), hedging, breaker, withTimeout(300));

/** GETs `url` through the hedged stack and returns the body. */
export function hedgedGet(url: string): Promise<string> {
  return searchStack.execute(async ({ signal }) => {
    const response = await fetch(url, { signal });
    return response.text();
  });
}

/** A local server with a long tail: `slowShare` of its answers take `slowMs`, the others `fastMs`. It counts the requests it got. */
export async function startLongTailServer({ fastMs = 5, slowMs = 100, slowShare = 0.05 } = {}): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  // Every 20th request is slow (with the default share): the same tail on every run.
  const every = Math.round(1 / slowShare);
  const server: Server = createServer((request, response) => {
    requests++;
    const slow = requests % every === 0;
    const timer = setTimeout(() => response.end('ok'), slow ? slowMs : fastMs);
    request.on('close', () => {
      if (!response.writableEnded) clearTimeout(timer); // the client gave up: a hedge lost
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/search`;
  const close = (): Promise<void> => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return { url, requests: () => requests, close };
}

/** Makes `calls` calls of `call`, 4 at a time, and returns each one's latency in ms, sorted. */
export async function latencies(calls: number, call: () => Promise<unknown>): Promise<number[]> {
  const measured: number[] = [];
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < calls) {
      started++;
      const start = performance.now();
      await call();
      measured.push(performance.now() - start);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return measured.sort((a, b) => a - b);
}

const at = (sorted: readonly number[], p: number): string => `${(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? NaN).toFixed(1)} ms`;

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 400);
  const server = await startLongTailServer();
  let hedges = 0;
  hedging.on('hedge', () => void hedges++);
  try {
    const bare = await latencies(calls, () => fetch(server.url).then((response) => response.text()));
    const bareRequests = server.requests();
    const hedged = await latencies(calls, () => hedgedGet(server.url));
    const hedgedRequests = server.requests() - bareRequests;
    console.log(`without hedging: p50 ${at(bare, 0.5)}, p99 ${at(bare, 0.99)}, ${bareRequests} requests`);
    console.log(`with hedging:    p50 ${at(hedged, 0.5)}, p99 ${at(hedged, 0.99)}, ${hedgedRequests} requests (${hedges} hedges)`);
  } finally {
    await server.close();
  }
}

runMain(import.meta.url, main);
