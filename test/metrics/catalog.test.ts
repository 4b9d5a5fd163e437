import { describe, expect, it } from 'vitest';
import {
  Bulkhead,
  CircuitBreaker,
  LayerPolicy,
  MetricsRegistry,
  RetryBudget,
  retryWithBackoff,
  withFallback,
  withTimeout,
  type CounterDescription,
  type GaugeDescription,
  type PolicyDescription,
} from '../../src/index.js';
import { renderPrometheus } from '../../src/prometheus/index.js';

describe('the kinds catalog of a snapshot', () => {
  it('holds every metric any policy of a kind describes, whichever was tracked first', () => {
    for (const order of ['plain first', 'budget first'] as const) {
      const registry = new MetricsRegistry();
      const plain = retryWithBackoff({ name: 'plain' });
      const budgeted = retryWithBackoff({ name: 'budgeted', budget: new RetryBudget() });
      if (order === 'plain first') {
        registry.track(plain);
        registry.track(budgeted);
      } else {
        registry.track(budgeted);
        registry.track(plain);
      }
      const retry = registry.snapshot().kinds?.retry;
      expect(retry?.counters.map((counter) => counter.field), order).toEqual(expect.arrayContaining(['retries', 'retryBudgetGiveUps']));
      expect(retry?.gauges.map((gauge) => gauge.field), order).toContain('retryBudgetAvailable');
      const fields = retry?.counters.map((counter) => counter.field) ?? [];
      expect(new Set(fields).size, `${order}: each field once`).toBe(fields.length);
      const text = renderPrometheus(registry.snapshot());
      expect(text, order).toContain('bulwark_retry_budget_available_retries{policy="budgeted",kind="retry"}');
      expect(text, order).toMatch(/bulwark_retry_budget_give_ups_total\{policy="budgeted",kind="retry"\} 0/);
    }
  });

  it('lists a kind\'s metrics once however many policies of it are tracked', () => {
    const one = new MetricsRegistry();
    one.track(retryWithBackoff({ name: 'a' }));
    const two = new MetricsRegistry();
    two.track(retryWithBackoff({ name: 'a' }));
    two.track(retryWithBackoff({ name: 'b' }));
    expect(two.snapshot().kinds?.retry).toEqual(one.snapshot().kinds?.retry);
    expect(one.snapshot().kinds?.retry?.counters.map((counter) => counter.field)).toContain('retries');
  });
});

/** A policy of one's own that describes itself as the test says. */
function described(description: PolicyDescription): LayerPolicy<void> {
  class Described extends LayerPolicy<void> {
    protected describe(): PolicyDescription {
      return description;
    }
  }
  return new Described();
}

const DROPS: readonly CounterDescription[] = [{ field: 'drops', event: 'drop', unit: '{drop}', description: 'Dropped calls.' }];
const SHEDS: readonly CounterDescription[] = [{ field: 'sheds', event: 'shed', unit: '{shed}', description: 'Shed calls.' }];
const IDLE: readonly GaugeDescription[] = [{ field: 'idle', prometheus: 'pool_idle', otel: 'pool.idle', description: 'Idle.', unit: '{conn}', type: 'count' }];
const BUSY: readonly GaugeDescription[] = [{ field: 'busy', prometheus: 'pool_busy', otel: 'pool.busy', description: 'Busy.', unit: '{conn}', type: 'count' }];

describe('the kinds catalog: what an exporter of your own reads', () => {
  it("describes bulwark's five kinds: every counter and gauge with its unit, exported names and meaning", () => {
    const registry = new MetricsRegistry();
    registry.track(withTimeout(10, { name: 'x' }));
    registry.track(retryWithBackoff({ name: 'x' }));
    registry.track(withFallback(0, { name: 'x' }));
    registry.track(new CircuitBreaker({ name: 'x' }));
    registry.track(new Bulkhead({ name: 'x', maxConcurrent: 1 }));
    expect(registry.snapshot().kinds).toEqual({
      timeout: { refuses: false, counters: [{ field: 'timeouts', event: 'timeout', unit: '{timeout}', description: 'Calls the timeout policy ended at its deadline.' }], gauges: [] },
      retry: { refuses: false, counters: [{ field: 'retries', event: 'retry', unit: '{retry}', description: 'Retries the retry policy scheduled (its backoff began).' }], gauges: [] },
      fallback: { refuses: false, counters: [{ field: 'fallbacks', event: 'fallback', unit: '{fallback}', description: 'Calls the fallback policy answered with its fallback.' }], gauges: [] },
      'circuit-breaker': {
        refuses: true,
        counters: [],
        gauges: [
          {
            field: 'state',
            prometheus: 'circuit_state',
            otel: 'bulwark.circuit.status',
            description: 'The state of the circuit breaker: 1 for the current state, 0 for the others.',
            unit: '1',
            type: 'state',
            states: ['closed', 'open', 'half-open', 'isolated'],
            stateLabel: { prometheus: 'state', otel: 'bulwark.circuit.state' },
          },
          { field: 'failureRate', prometheus: 'circuit_failure_ratio', otel: 'bulwark.circuit.failure_ratio', description: 'Share of recent calls the circuit breaker counted as failures, from 0 to 1.', unit: '1', type: 'ratio' },
          { field: 'slowCallRate', prometheus: 'circuit_slow_call_ratio', otel: 'bulwark.circuit.slow_call_ratio', description: 'Share of recent calls the circuit breaker counted as slow, from 0 to 1.', unit: '1', type: 'ratio' },
        ],
      },
      bulkhead: {
        refuses: true,
        counters: [],
        gauges: [
          { field: 'active', prometheus: 'bulkhead_active_calls', otel: 'bulwark.bulkhead.call.active', description: 'Calls running in the bulkhead now.', unit: '{call}', type: 'count' },
          { field: 'queued', prometheus: 'bulkhead_queued_calls', otel: 'bulwark.bulkhead.call.queued', description: 'Calls waiting in the bulkhead queue now.', unit: '{call}', type: 'count' },
        ],
      },
    });
  });

  it('joins what policies of one kind describe differently: counters, gauges, and refusing', () => {
    const pool = (...policies: LayerPolicy<void>[]) => {
      const registry = new MetricsRegistry();
      for (const policy of policies) registry.track(policy);
      return registry.snapshot().kinds?.pool;
    };
    // other counters, the same gauges
    expect(pool(described({ kind: 'pool', name: 'a', counters: DROPS, gauges: IDLE }), described({ kind: 'pool', name: 'b', counters: SHEDS, gauges: IDLE }))).toEqual({
      refuses: false,
      counters: [...DROPS, ...SHEDS],
      gauges: IDLE,
    });
    // the same counters, other gauges
    expect(pool(described({ kind: 'pool', name: 'a', counters: DROPS, gauges: IDLE }), described({ kind: 'pool', name: 'b', counters: DROPS, gauges: BUSY }))).toEqual({
      refuses: false,
      counters: DROPS,
      gauges: [...IDLE, ...BUSY],
    });
    // a kind refuses when any of its policies does, whichever came first
    expect(pool(described({ kind: 'pool', name: 'a', counters: DROPS, refuses: true }), described({ kind: 'pool', name: 'b', counters: SHEDS }))?.refuses).toBe(true);
    expect(pool(described({ kind: 'pool', name: 'a', counters: DROPS }), described({ kind: 'pool', name: 'b', counters: SHEDS, refuses: true }))?.refuses).toBe(true);
  });

  it('marks a kind as refusing when a later policy of it refuses, with the same counters and gauges', () => {
    const registry = new MetricsRegistry();
    registry.track(described({ kind: 'pool', name: 'a', counters: DROPS, gauges: IDLE }));
    registry.track(described({ kind: 'pool', name: 'b', counters: DROPS, gauges: IDLE, refuses: true }));
    expect(registry.snapshot().kinds?.pool).toEqual({ refuses: true, counters: DROPS, gauges: IDLE });
    const text = renderPrometheus(registry);
    expect(text).toContain('bulwark_rejections_total{policy="a",kind="pool"} 0\n');
    expect(text).toContain('bulwark_rejections_total{policy="b",kind="pool"} 0\n');
  });
});
