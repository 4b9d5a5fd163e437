/**
 * Each origin's policies (src/fetch/stacks.ts) with a hand-written fetch and fake timers: when
 * a transient response's retry fits before the total timeout, and which origins a client keeps;
 * timeouts and retries on the client's clock, decorrelated jitter from one retry to the next, a
 * breaker the group forgot, and what the client's own policy tells metrics, OpenTelemetry and logs.
 */
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { CircuitOpenError, MetricsRegistry, TimeoutError, logPolicyEvents } from 'bulwark';
import { resilientFetch } from 'bulwark/fetch';
import { registerOpenTelemetryMetrics } from 'bulwark/otel';
import { renderPrometheus } from 'bulwark/prometheus';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CountingClock } from '../fixtures/clock.js';

afterEach(() => {
  vi.useRealTimers();
});

/** An OpenTelemetry reader the test drives: `collect()` reads every instrument at once, like a scrape. */
class CollectingReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A fetch answering 503 with `Retry-After: <seconds>` first, then 200, noting when each request came. */
function asking(seconds: number): { fetch: (input: string) => Promise<Response>; at: number[] } {
  const start = Date.now();
  const at: number[] = [];
  const fetch = async (): Promise<Response> => {
    at.push(Date.now() - start);
    return new Response('', at.length === 1 ? { status: 503, headers: { 'retry-after': String(seconds) } } : { status: 200 });
  };
  return { fetch, at };
}

describe('a retry and the total timeout', () => {
  it('retries when the wait ends before the total timeout', async () => {
    vi.useFakeTimers();
    const { fetch, at } = asking(2);
    const answer = resilientFetch({ fetch, totalTimeout: 3_000, retry: { baseDelay: 1, jitter: 'none' } })('https://a.test/');
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await answer).status).toBe(200);
    expect(at).toEqual([0, 2_000]);
  });

  it('returns the response at once when the wait would end just as the total timeout does', async () => {
    vi.useFakeTimers();
    const { fetch, at } = asking(3);
    const response = await resilientFetch({ fetch, totalTimeout: 3_000, retry: { baseDelay: 1, jitter: 'none' } })('https://a.test/');
    expect(response.status).toBe(503);
    expect(at).toEqual([0]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('origins a client keeps', () => {
  const answer = async (_input: string): Promise<Response> => new Response('');

  it.each([
    ['with breakers', {}],
    ['without breakers', { breaker: false as const }],
  ])('forgets the least recently used origin beyond maxOrigins, %s', async (_kind, options) => {
    const api = resilientFetch({ fetch: answer, maxOrigins: 2, ...options });
    await api('https://a.test/');
    await api('https://b.test/');
    await api('https://a.test/');
    expect(api.origins().sort()).toEqual(['https://a.test', 'https://b.test']);
    await api('https://c.test/');
    expect(api.origins().sort()).toEqual(['https://a.test', 'https://c.test']);
  });
});

describe('the client\'s clock', () => {
  /** A fetch that never answers, and rejects with its signal's reason once aborted. */
  const hanging = (_input: string, init?: RequestInit): Promise<Response> =>
    new Promise((_resolve, reject) => {
      init?.signal?.addEventListener('abort', () => reject(init.signal?.reason));
    });

  it.each([
    ['an attempt', { attemptTimeout: 1_000, totalTimeout: 5_000 }],
    ['the call', { attemptTimeout: Infinity, totalTimeout: 1_000 }],
  ])('times out %s on the clock given', async (_which, timeouts) => {
    const clock = new CountingClock();
    const api = resilientFetch({ fetch: hanging, clock, retry: false, ...timeouts });
    let outcome: unknown = 'pending';
    void api('https://a.test/').then(
      (response) => (outcome = response),
      (error: unknown) => (outcome = error),
    );
    await clock.advance(999);
    expect(outcome).toBe('pending');
    await clock.advance(1);
    expect(outcome).toBeInstanceOf(TimeoutError);
    expect((outcome as Error).message).toBe('Operation timed out after 1000 ms');
    expect(clock.armed).toBe(0);
  });

  it('waits between retries on the clock given', async () => {
    const clock = new CountingClock();
    const at: number[] = [];
    const start = clock.now();
    const fetch = async (_input: string): Promise<Response> => {
      at.push(clock.now() - start);
      return new Response('', { status: at.length === 1 ? 503 : 200 });
    };
    const api = resilientFetch({ fetch, clock, retry: { baseDelay: 1_000, jitter: 'none' }, attemptTimeout: Infinity, totalTimeout: Infinity });
    let status: number | undefined;
    void api('https://a.test/').then((response) => (status = response.status));
    await clock.advance(999);
    expect(at).toEqual([0]);
    await clock.advance(1);
    expect(at).toEqual([0, 1_000]);
    expect(status).toBe(200);
  });
});

describe('decorrelated jitter', () => {
  it('draws each retry\'s wait from the wait before it', async () => {
    vi.useFakeTimers();
    const at: number[] = [];
    const start = Date.now();
    const fetch = async (_input: string): Promise<Response> => {
      at.push(Date.now() - start);
      return new Response('', { status: at.length <= 3 ? 503 : 200 });
    };
    // base 100, random 0.5: 100 + 0.5 × (3 × previous − 100), the first previous being the base: 200, 350, 575.
    const api = resilientFetch({ fetch, retry: { baseDelay: 100, maxRetries: 3, jitter: 'decorrelated', random: () => 0.5 } });
    const answer = api('https://a.test/');
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await answer).status).toBe(200);
    expect(at).toEqual([0, 200, 550, 1_125]);
  });
});

describe('a breaker the group forgot', () => {
  it('is replaced by a new one, closed, tracked under the same names in place of the old', async () => {
    const registry = new MetricsRegistry();
    const reported: unknown[] = [];
    const original = globalThis.reportError;
    globalThis.reportError = (error: unknown) => void reported.push(error);
    try {
      let status = 503;
      const fetch = async (_input: string): Promise<Response> => new Response('', { status });
      const api = resilientFetch({ fetch, name: 'api', retry: false, metrics: registry, breaker: { failureRate: undefined, failureThreshold: 1, recoveryTimeout: 600_000 } });
      expect((await api('https://a.test/')).status).toBe(503);
      await expect(api('https://a.test/')).rejects.toBeInstanceOf(CircuitOpenError);
      expect(api.breakers?.delete('https://a.test')).toBe(true);
      status = 200;
      expect((await api('https://a.test/')).status).toBe(200);
      const breakers = registry.snapshot().policies.filter((policy) => policy.kind === 'circuit-breaker');
      expect(breakers).toMatchObject([{ name: 'api:https://a.test', state: 'closed', calls: 1, successes: 1 }]);
      expect(api.breakers?.get('https://a.test').state).toBe('closed');
      expect(reported).toEqual([]);
    } finally {
      globalThis.reportError = original;
    }
  });
});

describe('what the client\'s own policy tells', () => {
  it('describes its counter in Prometheus\'s HELP line', async () => {
    const registry = new MetricsRegistry();
    const fetch = async (_input: string): Promise<Response> => new Response('', { status: 503 });
    await resilientFetch({ fetch, name: 'api', retry: false, metrics: registry })('https://a.test/');
    expect(renderPrometheus(registry.snapshot())).toContain(
      '# HELP bulwark_requests_failed_total Calls through a resilient fetch that ended with a transient status or an error (a caller\'s abort aside).\n'
      + '# TYPE bulwark_requests_failed_total counter\n'
      + 'bulwark_requests_failed_total{policy="api:https://a.test",kind="fetch"} 1\n',
    );
  });

  it('gives its counter to OpenTelemetry as bulwark.requests_failed in {request}', async () => {
    const registry = new MetricsRegistry();
    const fetch = async (_input: string): Promise<Response> => new Response('', { status: 503 });
    await resilientFetch({ fetch, name: 'api', retry: false, metrics: registry })('https://a.test/');
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    try {
      registerOpenTelemetryMetrics(registry, provider.getMeter('fetch-test'));
      await reader.collect(); // the first collection learns the kinds the registry holds
      const { resourceMetrics } = await reader.collect();
      const metric = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((found) => found.descriptor.name === 'bulwark.requests_failed');
      expect(metric?.descriptor).toMatchObject({
        unit: '{request}',
        description: 'Calls through a resilient fetch that ended with a transient status or an error (a caller\'s abort aside).',
      });
      expect(metric?.dataPoints.map((point) => [point.attributes, point.value])).toEqual([[{ 'bulwark.policy.name': 'api:https://a.test', 'bulwark.policy.kind': 'fetch' }, 1]]);
    } finally {
      await provider.shutdown();
    }
  });

  it.each([
    ['requestFailed', 'warn', 503, 'GET https://a.test answered 503 after 1 attempt', 'failed requests'],
    ['response', 'info', 200, 'GET https://a.test answered 200 (1 attempt)', 'responses'],
  ])('logs %s once per window, then how many more there were', async (event, level, status, line, plural) => {
    const clock = new CountingClock();
    const registry = new MetricsRegistry();
    const lines: [string, string][] = [];
    const at = (lineLevel: string) => (fields: Record<string, unknown>, message: string) => void (fields['event'] === event && lines.push([lineLevel, message]));
    const stop = logPolicyEvents(registry, { info: at('info'), warn: at('warn'), error: at('error') }, { clock, summaryInterval: 10_000, levels: { response: 'info' } });
    const fetch = async (_input: string): Promise<Response> => new Response('', { status });
    const api = resilientFetch({ fetch, name: 'api', clock, retry: false, metrics: registry, breaker: false });
    for (let call = 0; call < 3; call++) await api('https://a.test/');
    expect(lines).toEqual([[level, `fetch "api:https://a.test": ${line}`]]);
    await clock.advance(10_000);
    expect(lines).toEqual([
      [level, `fetch "api:https://a.test": ${line}`],
      [level, `fetch "api:https://a.test": 2 more ${plural} in the last 10000 ms`],
    ]);
    stop();
  });
});
