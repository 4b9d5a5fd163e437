import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isCircuitOpenError } from 'bulwark';
import { serve } from '../test/fixtures/http.js';
import { inventoryStack } from './first-screen.js';

/** The lines between the README markers of examples/first-screen.ts, unindented. */
function exampleRegion(): string {
  const source = readFileSync(new URL('./first-screen.ts', import.meta.url), 'utf8');
  const region = source.slice(source.indexOf('// README:start\n') + '// README:start\n'.length, source.indexOf('  // README:end'));
  return region
    .split('\n')
    .map((line) => line.replace(/^ {2}/, ''))
    .join('\n')
    .trim();
}

/** The README's first TypeScript block. */
function readmeFirstExample(): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  return block.trim();
}

/**
 * Runs `work` with the timers of the policies faked (retry backoff, timeouts, the breaker's
 * recovery) while the sockets stay real: fake time moves on only once the real I/O in flight
 * has had its turn.
 */
async function withFakeTime<T>(work: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  let done = false;
  const result = work().finally(() => (done = true));
  while (!done) {
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    if (!done && vi.getTimerCount() > 0) await vi.advanceTimersToNextTimerAsync();
  }
  return result;
}

afterEach(() => vi.useRealTimers());

describe("the README's first example", () => {
  it('is the code this file runs', () => {
    const readme = readmeFirstExample();
    expect(readme).toContain(exampleRegion());
    expect(readme).toMatch(/^import \{ Bulkhead, CircuitBreaker, compose, retryWithBackoff, withFallback, withTimeout \} from 'bulwark';/);
  });

  it('against a server answering 503 to everything: retries each read, opens the breaker after 5 failing reads, and answers every caller from the fallback', async () => {
    let hits = 0;
    const url = await serve((_request, response) => {
      hits++;
      response.writeHead(503, { 'content-type': 'text/plain' }).end('unavailable');
    });
    const { breaker, check } = inventoryStack(`${url}/stock/42`);
    const rejected: unknown[] = [];
    breaker.on('rejected', ({ error }) => rejected.push(error));

    const answers = await withFakeTime(async () => {
      const seen: unknown[] = [];
      for (let i = 0; i < 10; i++) seen.push(await check());
      return seen;
    });

    // Every caller gets the fallback's value, never a 503 Response.
    expect(answers).toEqual(Array.from({ length: 10 }, () => ({ stock: 'unknown' })));
    // Five reads of four attempts each (3 retries), then the breaker is open: no more requests.
    expect(hits).toBe(5 * 4);
    expect(breaker.state).toBe('open');
    expect(rejected).toHaveLength(5);
    expect(rejected.every(isCircuitOpenError)).toBe(true);
  });

  it('passes a healthy answer through unchanged', async () => {
    const url = await serve((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"stock":7}');
    });
    const { check } = inventoryStack(`${url}/stock/42`);
    const answer = await check();
    expect(answer).toBeInstanceOf(Response);
    expect(await (answer as Response).json()).toEqual({ stock: 7 });
  });
});
