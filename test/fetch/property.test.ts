/**
 * The invariant of a resilient fetch, on random scripts of answers (statuses, Retry-After,
 * network errors), methods and retry counts: a call makes at most maxRetries + 1 attempts (one
 * for a request that may not be sent twice); it answers with the last response it received, or
 * stops at the first non-transient one; no retry starts before a Retry-After allows; the body of
 * every response but the answer is cancelled, and the answer's never. And 100 callers at once
 * against the real server each get their own answer.
 */
import fc from 'fast-check';
import { resilientFetch } from 'bulwark/fetch';
import { describe, expect, it } from 'vitest';
import { clock, useServer } from './fixtures.js';

type Answer = { readonly status: number; readonly retryAfter?: number } | { readonly error: true };

const answer: fc.Arbitrary<Answer> = fc.oneof(
  fc.constantFrom(200, 201, 404, 408, 429, 500, 503).map((status) => ({ status })),
  fc.record({ status: fc.constantFrom(429, 503), retryAfter: fc.integer({ min: 0, max: 3 }) }),
  fc.constant({ error: true } as const),
);

describe('the invariant', () => {
  it('holds on random scripts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(answer, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom('GET', 'PUT', 'POST'),
        async (script, maxRetries, method) => {
          const sent: { at: number; response?: Response; cancelled: boolean; notBefore: number }[] = [];
          const scripted: typeof fetch = async () => {
            const step = script[Math.min(sent.length, script.length - 1)] as Answer;
            const record: { at: number; response?: Response; cancelled: boolean; notBefore: number } = { at: clock.now(), cancelled: false, notBefore: -Infinity };
            sent.push(record);
            if ('error' in step) throw new TypeError('fetch failed');
            const headers = step.retryAfter === undefined ? undefined : { 'retry-after': String(step.retryAfter) };
            if (step.retryAfter !== undefined) record.notBefore = record.at + step.retryAfter * 1_000;
            const body = new ReadableStream({ pull: () => undefined, cancel: () => void (record.cancelled = true) });
            record.response = new Response(body, { status: step.status, ...(headers === undefined ? {} : { headers }) });
            return record.response;
          };
          const api = resilientFetch({ fetch: scripted, clock, retry: { maxRetries, baseDelay: 0 }, breaker: false, totalTimeout: Infinity });
          const outcome = await api('https://a.test/', { method, body: method === 'GET' ? null : 'x' }).then(
            (response) => ({ response }),
            (error: unknown) => ({ error }),
          );
          const attemptsAllowed = method === 'POST' ? 1 : maxRetries + 1;
          expect(sent.length).toBeLessThanOrEqual(attemptsAllowed);
          const last = sent[sent.length - 1]!;
          if ('response' in outcome) {
            expect(outcome.response).toBe(last.response);
            expect(last.cancelled).toBe(false);
          } else {
            expect(last.response).toBeUndefined();
          }
          // Every other response was cancelled.
          for (const attempt of sent.slice(0, -1)) if (attempt.response !== undefined) expect(attempt.cancelled).toBe(true);
          // No retry before its Retry-After allowed.
          for (let i = 1; i < sent.length; i++) expect(sent[i]!.at).toBeGreaterThanOrEqual(sent[i - 1]!.notBefore);
          // It stopped only when it had to: a non-transient answer, the retries spent, or a request sent once.
          if (sent.length < attemptsAllowed) {
            const step = script[Math.min(sent.length - 1, script.length - 1)] as Answer;
            expect('status' in step && ![408, 429, 500, 503].includes(step.status)).toBe(true);
          }
        },
      ),
      { numRuns: 80 },
    );
  }, 60_000);
});

describe('100 callers at once', () => {
  const handle = useServer();

  it('each get their own answer, through bursts of failures', async () => {
    // The first request of every path fails (a reset, a 503 or a 429 with Retry-After), the next answers with the path.
    const failed = new Set<string>();
    handle.server.otherwise((request, index) => {
      if (failed.has(request.path)) return { status: 200, body: request.path };
      failed.add(request.path);
      return index % 3 === 0 ? { reset: true } : index % 3 === 1 ? { status: 503 } : { status: 429, retryAfter: 1 };
    });
    // No deadline: on the test's clock (100× real time) the default 30 s would be 300 ms of a loaded machine.
    const api = resilientFetch({ clock, retry: { baseDelay: 10 }, breaker: false, attemptTimeout: Infinity, totalTimeout: Infinity });
    const answers = await Promise.all(Array.from({ length: 100 }, async (_, i) => (await api(`${handle.server.origin}/caller/${i}`)).text()));
    expect(answers).toEqual(Array.from({ length: 100 }, (_, i) => `/caller/${i}`));
    // At least two requests per caller (a client may itself re-send a request whose reused connection was reset).
    expect(handle.server.requests.length).toBeGreaterThanOrEqual(200);
  });
});
