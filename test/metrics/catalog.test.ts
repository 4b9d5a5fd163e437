import { describe, expect, it } from 'vitest';
import { MetricsRegistry, RetryBudget, retryWithBackoff } from '../../src/index.js';
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
