/**
 * The chaos policies in every observability output, through their descriptions only:
 * MetricsRegistry, logPolicyEvents, Prometheus and OpenTelemetry.
 */
import { DataPointType, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { MetricsRegistry, compose, logPolicyEvents, type LogLevel, type PolicyLogger } from '../../src/index.js';
import { registerOpenTelemetryMetrics } from '../../src/otel/index.js';
import { renderPrometheus } from '../../src/prometheus/index.js';
import { chaosFault, chaosLatency, chaosOutcome } from '../../src/chaos/index.js';
import { CountingClock } from '../fixtures/clock.js';
import { flush, track } from '../fixtures/promises.js';

/** A random source that draws `draws` in turn (0 injects at any rate above 0, 0.99 injects at a rate of 0.5 never). */
const scripted = (...draws: number[]) => () => draws.shift() ?? 0.99;

function recordingLogger() {
  const lines: [LogLevel, ...unknown[]][] = [];
  const logger = {
    info: (...args: unknown[]) => void lines.push(['info', ...args]),
    warn: (...args: unknown[]) => void lines.push(['warn', ...args]),
    error: (...args: unknown[]) => void lines.push(['error', ...args]),
  } satisfies PolicyLogger;
  return { logger, lines };
}

/**
 * One stack, tracked as "search": call 1 gets a fault, call 2 a latency of 40 ms (held pending
 * until `release`), call 3 an outcome.
 */
async function trackedScenario() {
  const clock = new CountingClock();
  const fault = chaosFault({ rate: 0.5, fault: new Error('injected: search down'), random: scripted(0, 0.99, 0.99) });
  const latency = chaosLatency({ rate: 0.5, latency: 40, clock, random: scripted(0, 0.99) });
  // Call 3 reaches it before call 2, which waits in the latency.
  const outcome = chaosOutcome({ rate: 0.5, outcome: { hits: [] }, random: scripted(0, 0.99) });
  const stack = compose(fault, latency, outcome);
  const registry = new MetricsRegistry({ now: () => clock.now() });
  registry.track(stack, { name: 'search' });
  await stack.execute(() => ({ hits: ['a'] })).catch(() => undefined);
  const delayed = track(stack.execute(() => ({ hits: ['b'] })));
  await flush();
  await stack.execute(() => ({ hits: ['c'] }));
  const release = async (): Promise<void> => {
    await clock.advance(40);
    expect(delayed.value).toEqual({ hits: ['b'] });
  };
  return { registry, release, clock };
}

describe('chaos policies observed', () => {
  it('MetricsRegistry counts their calls and injections, and reads the latency gauge', async () => {
    const { registry, release } = await trackedScenario();
    const entry = (kind: string) => registry.snapshot().policies.find((policy) => policy.kind === kind);
    expect(entry('chaos-fault')).toMatchObject({ name: 'search', calls: 3, failures: 1, faultsInjected: 1 });
    expect(entry('chaos-latency')).toMatchObject({ name: 'search', calls: 2, successes: 1, latenciesInjected: 1, delayed: 1 });
    expect(entry('chaos-outcome')).toMatchObject({ name: 'search', calls: 1, successes: 1, outcomesInjected: 1 });
    expect(registry.snapshot().kinds).toMatchObject({
      'chaos-fault': { refuses: false, counters: [{ field: 'faultsInjected' }], gauges: [] },
      'chaos-latency': { refuses: false, counters: [{ field: 'latenciesInjected' }], gauges: [{ field: 'delayed' }] },
      'chaos-outcome': { refuses: false, counters: [{ field: 'outcomesInjected' }], gauges: [] },
    });
    await release();
    expect(entry('chaos-latency')).toMatchObject({ calls: 2, successes: 2, delayed: 0 });
    expect(entry('chaos-outcome')).toMatchObject({ calls: 2, successes: 2, outcomesInjected: 1 });
    expect(entry('chaos-fault')).toMatchObject({ calls: 3, successes: 2, failures: 1, rejections: 0 });
  });

  it('renderPrometheus exports their counters and the gauge with HELP and TYPE lines, and no rejections', async () => {
    const { registry, release } = await trackedScenario();
    const text = renderPrometheus(registry);
    const labels = (kind: string) => `{policy="search",kind="${kind}"}`;
    expect(text).toContain(
      '# HELP bulwark_faults_injected_total Calls the chaos fault policy failed with an injected fault instead of running them.\n' +
        '# TYPE bulwark_faults_injected_total counter\n' +
        `bulwark_faults_injected_total${labels('chaos-fault')} 1\n`,
    );
    expect(text).toContain(
      '# HELP bulwark_latencies_injected_total Calls the chaos latency policy made wait an injected latency before running.\n' +
        '# TYPE bulwark_latencies_injected_total counter\n' +
        `bulwark_latencies_injected_total${labels('chaos-latency')} 1\n`,
    );
    expect(text).toContain(
      '# HELP bulwark_outcomes_injected_total Calls the chaos outcome policy answered with an injected outcome instead of running them.\n' +
        '# TYPE bulwark_outcomes_injected_total counter\n' +
        `bulwark_outcomes_injected_total${labels('chaos-outcome')} 1\n`,
    );
    expect(text).toContain(
      '# HELP bulwark_chaos_latency_delayed_calls Calls waiting in an injected latency of the chaos latency policy now.\n' +
        '# TYPE bulwark_chaos_latency_delayed_calls gauge\n' +
        `bulwark_chaos_latency_delayed_calls${labels('chaos-latency')} 1\n`,
    );
    expect(text).toContain(`bulwark_failures_total${labels('chaos-fault')} 1\n`);
    expect(text).not.toMatch(/bulwark_rejections_total\{[^}]*chaos/);
    await release();
    expect(renderPrometheus(registry)).toContain(`bulwark_chaos_latency_delayed_calls${labels('chaos-latency')} 0\n`);
  });

  it('registerOpenTelemetryMetrics exports them through a real MeterProvider', async () => {
    class CollectingReader extends MetricReader {
      protected override onForceFlush(): Promise<void> {
        return Promise.resolve();
      }
      protected override onShutdown(): Promise<void> {
        return Promise.resolve();
      }
    }
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    const { registry, release } = await trackedScenario();
    const stop = registerOpenTelemetryMetrics(registry, provider.getMeter('chaos-test'));
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const metrics = new Map(resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => [metric.descriptor.name, metric] as const)));
    const valueOf = (metric: MetricData | undefined, kind: string): number | undefined => {
      if (metric === undefined || (metric.dataPointType !== DataPointType.SUM && metric.dataPointType !== DataPointType.GAUGE)) return undefined;
      return metric.dataPoints.find((point) => point.attributes['bulwark.policy.kind'] === kind)?.value;
    };
    expect(valueOf(metrics.get('bulwark.faults_injected'), 'chaos-fault')).toBe(1);
    expect(valueOf(metrics.get('bulwark.latencies_injected'), 'chaos-latency')).toBe(1);
    expect(valueOf(metrics.get('bulwark.outcomes_injected'), 'chaos-outcome')).toBe(1);
    expect(metrics.get('bulwark.faults_injected')?.descriptor).toMatchObject({ unit: '{fault}', description: 'Calls the chaos fault policy failed with an injected fault instead of running them.' });
    expect(metrics.get('bulwark.latencies_injected')?.descriptor).toMatchObject({ unit: '{delay}', description: 'Calls the chaos latency policy made wait an injected latency before running.' });
    expect(metrics.get('bulwark.outcomes_injected')?.descriptor).toMatchObject({ unit: '{outcome}', description: 'Calls the chaos outcome policy answered with an injected outcome instead of running them.' });
    expect(metrics.get('bulwark.chaos_latency.call.delayed')?.descriptor).toMatchObject({ unit: '{call}', description: 'Calls waiting in an injected latency of the chaos latency policy now.' });
    expect(valueOf(metrics.get('bulwark.chaos_latency.call.delayed'), 'chaos-latency')).toBe(1);
    await release();
    stop();
    await provider.shutdown();
  });

  it('logPolicyEvents writes an info line per injection, then summarises the repeats', async () => {
    const clock = new CountingClock();
    const { logger, lines } = recordingLogger();
    const fault = chaosFault({ rate: 1, fault: new Error('injected: search down'), name: 'search' });
    const stop = logPolicyEvents(fault, logger, { summaryInterval: 1_000, clock });
    for (let i = 0; i < 3; i++) await fault.execute(() => 'ran').catch(() => undefined);
    const fields = { policy: 'search', kind: 'chaos-fault', event: 'injected' };
    expect(lines).toEqual([['info', { ...fields, error: { name: 'Error', message: 'injected: search down' } }, 'chaos fault "search" injected a fault: injected: search down']]);
    await clock.advance(1_000);
    expect(lines[1]).toEqual(['info', { ...fields, repeated: 2, intervalMs: 1_000 }, 'chaos fault "search": 2 more injected faults in the last 1000 ms']);
    stop();

    const latency = chaosLatency({ rate: 1, latency: 0, name: 'search' });
    const outcome = chaosOutcome({ rate: 1, outcome: 'cached', name: 'search' });
    const more = recordingLogger();
    const stops = [logPolicyEvents(latency, more.logger, { summaryInterval: 0 }), logPolicyEvents(outcome, more.logger, { summaryInterval: 0 })];
    await latency.execute(() => 'ran');
    await outcome.execute(() => 'ran');
    expect(more.lines).toEqual([
      ['info', { policy: 'search', kind: 'chaos-latency', event: 'injected', latency: 0 }, 'chaos latency "search" delayed a call by 0 ms'],
      ['info', { policy: 'search', kind: 'chaos-outcome', event: 'injected' }, 'chaos outcome "search" answered a call with an injected outcome'],
    ]);
    for (const stopLogging of stops) stopLogging();
    // Once per summary window for these too, the repeats counted.
    const summed = recordingLogger();
    const summedStops = [logPolicyEvents(latency, summed.logger, { summaryInterval: 1_000, clock }), logPolicyEvents(outcome, summed.logger, { summaryInterval: 1_000, clock })];
    for (let i = 0; i < 3; i++) {
      await latency.execute(() => 'ran');
      await outcome.execute(() => 'ran');
    }
    expect(summed.lines.map(([, , message]) => message)).toEqual(['chaos latency "search" delayed a call by 0 ms', 'chaos outcome "search" answered a call with an injected outcome']);
    await clock.advance(1_000);
    expect(summed.lines.slice(2)).toEqual([
      ['info', { policy: 'search', kind: 'chaos-latency', event: 'injected', repeated: 2, intervalMs: 1_000 }, 'chaos latency "search": 2 more injected latencies in the last 1000 ms'],
      ['info', { policy: 'search', kind: 'chaos-outcome', event: 'injected', repeated: 2, intervalMs: 1_000 }, 'chaos outcome "search": 2 more injected outcomes in the last 1000 ms'],
    ]);
    for (const stopLogging of summedStops) stopLogging();
    // Turned off like any described event.
    const quiet = recordingLogger();
    logPolicyEvents(fault, quiet.logger, { levels: { injected: 'off' } });
    await fault.execute(() => 'ran').catch(() => undefined);
    expect(quiet.lines).toEqual([]);
  });
});
