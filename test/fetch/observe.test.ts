/**
 * What a resilient fetch shows: per-origin policies named `<name>:<origin>` in a registry (a
 * bounded set of them), Prometheus families, log lines naming method, origin and status and
 * never the path, query string or headers; and a breaker per origin.
 */
import { MetricsRegistry, isCircuitOpenError, logPolicyEvents, type PolicyLogger } from 'bulwark';
import { resilientFetch } from 'bulwark/fetch';
import { renderPrometheus } from 'bulwark/prometheus';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { clock, useServer } from './fixtures.js';
import { startServer, type TestServer } from './server.js';

const handle = useServer();
const quick = { baseDelay: 10, jitter: 'none', maxRetries: 1 } as const;

/** A logger that keeps its lines. */
function capture(): PolicyLogger & { lines: { level: string; fields: Record<string, unknown>; message: string }[] } {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, fields, message });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

describe('metrics', () => {
  it('tracks each origin\'s policies as <name>:<origin>, counting retries, failures and calls per origin', async () => {
    handle.server.script({ status: 503 }, { status: 200 });
    const registry = new MetricsRegistry();
    const api = resilientFetch({ name: 'billing', clock, retry: quick, metrics: registry });
    await (await api(`${handle.server.origin}/invoices?id=1`)).text();
    const key = `billing:${handle.server.origin}`;
    const byName = Object.fromEntries(registry.snapshot().policies.map((policy) => [`${policy.kind} ${policy.name}`, policy]));
    expect(Object.keys(byName).sort()).toEqual([`circuit-breaker ${key}`, `fetch ${key}`, `retry ${key}`, `timeout ${key}:attempt`, `timeout ${key}:total`].sort());
    expect(byName[`fetch ${key}`]).toMatchObject({ calls: 1, successes: 1, requestsFailed: 0 });
    expect(byName[`retry ${key}`]).toMatchObject({ retries: 1 });
    expect(byName[`timeout ${key}:attempt`]).toMatchObject({ calls: 2 });
    expect(byName[`circuit-breaker ${key}`]).toMatchObject({ calls: 2, state: 'closed' });
  });

  it('renders the client\'s families in Prometheus, one series per origin', async () => {
    handle.server.otherwise({ status: 503 });
    const registry = new MetricsRegistry();
    const api = resilientFetch({ name: 'search', clock, retry: quick, metrics: registry });
    await (await api(`${handle.server.origin}/q?term=secret`)).text();
    const text = renderPrometheus(registry.snapshot());
    expect(text).toContain(`bulwark_requests_failed_total{policy="search:${handle.server.origin}",kind="fetch"} 1`);
    expect(text).not.toContain('secret');
  });

  it('keeps at most maxOrigins origins (the least recently used closed one goes), and untracks what it forgets', async () => {
    const registry = new MetricsRegistry();
    const ok: typeof fetch = async () => new Response('ok');
    const api = resilientFetch({ fetch: ok, name: 'many', clock, maxOrigins: 2, metrics: registry });
    for (const origin of ['https://a.test', 'https://b.test', 'https://a.test', 'https://c.test']) await api(`${origin}/`);
    expect(api.origins().sort()).toEqual(['https://a.test', 'https://c.test']);
    expect(api.breakers?.size).toBe(2);
    const tracked = new Set(registry.snapshot().policies.map((policy) => policy.name));
    expect(tracked).toEqual(new Set(['many:https://a.test', 'many:https://a.test:total', 'many:https://a.test:attempt', 'many:https://c.test', 'many:https://c.test:total', 'many:https://c.test:attempt']));
  });

  it('keeps at most maxOrigins origins without breakers too', async () => {
    const ok: typeof fetch = async () => new Response('ok');
    const api = resilientFetch({ fetch: ok, clock, maxOrigins: 1, breaker: false });
    await api('https://a.test/');
    await api('https://b.test/');
    expect(api.origins()).toEqual(['https://b.test']);
    expect(api.breakers).toBeUndefined();
  });

  it('reports, and does not throw, when another client of the same name is tracked in the registry', async () => {
    const registry = new MetricsRegistry();
    const reported: unknown[] = [];
    const original = globalThis.reportError;
    globalThis.reportError = (error: unknown) => void reported.push(error);
    try {
      const ok: typeof fetch = async () => new Response('ok');
      await resilientFetch({ fetch: ok, metrics: registry, clock })('https://a.test/');
      const second = await resilientFetch({ fetch: ok, metrics: registry, clock })('https://a.test/');
      expect(second.status).toBe(200);
      expect(reported).toHaveLength(1);
    } finally {
      globalThis.reportError = original;
    }
  });
  it('writes what failed to console.error where there is no reportError: the client\'s name and origin, and the registry\'s error', async () => {
    const registry = new MetricsRegistry();
    const original = globalThis.reportError;
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    (globalThis as { reportError?: unknown }).reportError = undefined;
    try {
      const ok: typeof fetch = async () => new Response('ok');
      await resilientFetch({ fetch: ok, name: 'billing', metrics: registry, clock })('https://a.test/');
      expect((await resilientFetch({ fetch: ok, name: 'billing', metrics: registry, clock })('https://a.test/')).status).toBe(200);
      expect(errors).toHaveBeenCalledTimes(1);
      const [message, error] = errors.mock.calls[0]!;
      expect(message).toBe('bulwark: tracking the policies of "billing:https://a.test" failed');
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toBe('track: another fetch named "billing:https://a.test" is already tracked; give each one its own name');
    } finally {
      globalThis.reportError = original;
      errors.mockRestore();
    }
  });
});

describe('each origin\'s policies', () => {
  const answer = async (_input: string): Promise<Response> => new Response('');
  const stackOf = (options: Parameters<typeof resilientFetch>[0]): string[][] => {
    const registry = new MetricsRegistry();
    resilientFetch({ fetch: answer, ...options, metrics: registry }).policyOf('https://a.test/x');
    return registry.snapshot().policies.map((policy) => [policy.name!, policy.kind]);
  };

  it('are composed outermost first: total timeout, bulkhead, retry, hedge, rate limit, breaker, attempt timeout', () => {
    expect(stackOf({ name: 'api', hedge: { delay: 10 }, rateLimit: { rate: 5 }, bulkhead: { maxConcurrent: 2 } })).toEqual([
      ['api:https://a.test', 'fetch'],
      ['api:https://a.test:total', 'timeout'],
      ['api:https://a.test', 'bulkhead'],
      ['api:https://a.test', 'retry'],
      ['api:https://a.test', 'hedge'],
      ['api:https://a.test', 'rate-limiter'],
      ['api:https://a.test', 'circuit-breaker'],
      ['api:https://a.test:attempt', 'timeout'],
    ]);
  });

  it('leave out what is turned off: no timeout of Infinity, no retry, no breaker', () => {
    expect(stackOf({ totalTimeout: Infinity, attemptTimeout: Infinity, retry: false, breaker: false })).toEqual([['fetch:https://a.test', 'fetch']]);
    expect(stackOf({})).toEqual([
      ['fetch:https://a.test', 'fetch'],
      ['fetch:https://a.test:total', 'timeout'],
      ['fetch:https://a.test', 'retry'],
      ['fetch:https://a.test', 'circuit-breaker'],
      ['fetch:https://a.test:attempt', 'timeout'],
    ]);
  });
});

describe('logs', () => {
  it('write the method, origin and status of a failed request, never its path, query string or headers', async () => {
    handle.server.otherwise({ status: 503, body: 'no' });
    const registry = new MetricsRegistry();
    const logger = capture();
    const stop = logPolicyEvents(registry, logger, { summaryInterval: 0, levels: { response: 'info', retry: 'info' } });
    const api = resilientFetch({ name: 'accounts', clock, retry: quick, metrics: registry });
    const response = await api(`${handle.server.origin}/users/ada@example.com?token=secret-token`, { method: 'DELETE', headers: { authorization: 'Bearer secret-header' } });
    expect(response.status).toBe(503);
    stop();
    const failed = logger.lines.find((line) => line.fields['event'] === 'requestFailed');
    expect(failed).toMatchObject({
      level: 'warn',
      fields: { policy: `accounts:${handle.server.origin}`, kind: 'fetch', method: 'DELETE', origin: handle.server.origin, status: 503, attempts: 2 },
      message: `fetch "accounts:${handle.server.origin}": DELETE ${handle.server.origin} answered 503 after 2 attempts`,
    });
    expect(logger.lines.find((line) => line.fields['event'] === 'response')?.fields).toMatchObject({ method: 'DELETE', status: 503 });
    const everything = JSON.stringify(logger.lines);
    expect(everything).not.toMatch(/secret|ada@example|users/);
  });

  it('write a network failure with the error\'s name and message', async () => {
    handle.server.otherwise({ reset: true });
    const registry = new MetricsRegistry();
    const logger = capture();
    const stop = logPolicyEvents(registry, logger, { summaryInterval: 0 });
    await resilientFetch({ name: 'flaky', clock, retry: quick, metrics: registry })(`${handle.server.origin}/x?key=secret`).catch(() => undefined);
    stop();
    const failed = logger.lines.find((line) => line.fields['event'] === 'requestFailed');
    expect(failed?.fields).toMatchObject({ method: 'GET', origin: handle.server.origin, attempts: 2, error: { name: 'TypeError' } });
    expect(JSON.stringify(logger.lines)).not.toContain('secret');
  });

  it('write each line whole: a response at the level asked, a transient answer and a network failure after 1 attempt', async () => {
    const answers = [200, 503, 0];
    let made = 0;
    const handMade = async (_input: string, _init?: RequestInit): Promise<Response> => {
      const status = answers[made++]!;
      if (status === 0) throw new TypeError('fetch failed');
      return new Response('', { status });
    };
    const registry = new MetricsRegistry();
    const logger = capture();
    const stop = logPolicyEvents(registry, logger, { summaryInterval: 0, levels: { response: 'info' } });
    const api = resilientFetch({ fetch: handMade, name: 'orders', retry: false, metrics: registry });
    await api('https://a.test/1', { method: 'POST' });
    await api('https://a.test/2');
    const error = await api('https://a.test/3').catch((caught: unknown) => caught);
    stop();
    const policy = 'orders:https://a.test';
    expect(logger.lines.filter((line) => line.fields['event'] !== 'stateChange').map(({ level, fields, message }) => ({ level, fields, message }))).toEqual([
      { level: 'info', fields: expect.objectContaining({ event: 'response', method: 'POST', origin: 'https://a.test', status: 200, attempts: 1 }), message: `fetch "${policy}": POST https://a.test answered 200 (1 attempt)` },
      { level: 'info', fields: expect.objectContaining({ event: 'response', method: 'GET', origin: 'https://a.test', status: 503, attempts: 1 }), message: `fetch "${policy}": GET https://a.test answered 503 (1 attempt)` },
      { level: 'warn', fields: expect.objectContaining({ event: 'requestFailed', method: 'GET', origin: 'https://a.test', status: 503, attempts: 1 }), message: `fetch "${policy}": GET https://a.test answered 503 after 1 attempt` },
      { level: 'warn', fields: expect.objectContaining({ event: 'requestFailed', method: 'GET', origin: 'https://a.test', attempts: 1, error: { name: 'TypeError', message: 'fetch failed' } }), message: `fetch "${policy}": GET https://a.test failed after 1 attempt: fetch failed` },
    ]);
    expect(error).toBeInstanceOf(TypeError);
    expect(logger.lines.find((line) => line.fields['event'] === 'requestFailed' && 'error' in line.fields)?.fields).not.toHaveProperty('status');
  });

  it('are not written for a caller\'s abort', async () => {
    handle.server.otherwise({ hang: true });
    const api = resilientFetch({ clock });
    const events: unknown[] = [];
    api.on('requestFailed', (payload) => void events.push(payload));
    await expect(api(handle.server.origin, { signal: AbortSignal.timeout(5) })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(events).toEqual([]);
  });
});

describe('one breaker per origin', () => {
  let other: TestServer;
  beforeAll(async () => {
    other = await startServer(clock.now);
  });
  afterAll(() => other.close());

  it('opens for the origin that fails, and only for it', async () => {
    handle.server.otherwise({ status: 503 });
    const api = resilientFetch({ clock, retry: false, breaker: { failureRate: undefined, failureThreshold: 2, recoveryTimeout: 600_000 } });
    expect((await api(handle.server.origin)).status).toBe(503);
    expect((await api(handle.server.origin)).status).toBe(503);
    // Counted from here: a request the previous test aborted may still reach the shared server late.
    const sent = handle.server.requests.length;
    const refused = await api(handle.server.origin).catch((error: unknown) => error);
    expect(isCircuitOpenError(refused)).toBe(true);
    expect(handle.server.requests).toHaveLength(sent); // refused without a request
    expect((await api(other.origin)).status).toBe(200);
    expect(api.breakers?.peek(handle.server.origin)?.state).toBe('open');
    expect(api.breakers?.peek(other.origin)?.state).toBe('closed');
  });

  it('opens by default at 10 % failures once 100 calls were seen, as the standard handler does', async () => {
    handle.server.otherwise((request) => (Number(request.path.slice(1)) % 10 === 0 ? { status: 500 } : { status: 200 }));
    // The real clock: 100 calls fit in the 30 s window however slow the machine is.
    const api = resilientFetch({ retry: false });
    for (let i = 1; i <= 99; i++) await (await api(`${handle.server.origin}/${i}`)).text();
    expect(api.breakers?.peek(handle.server.origin)?.state).toBe('closed');
    await (await api(`${handle.server.origin}/100`)).text();
    expect(api.breakers?.peek(handle.server.origin)?.state).toBe('open');
  });
});
