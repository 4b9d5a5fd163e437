/**
 * The extension contract from a policy author's side: small policies written against
 * `LayerPolicy` and the `LayerCall` handle alone, and what the engine promises them.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  CircuitBreaker,
  LayerPolicy,
  MetricsRegistry,
  compose,
  isRefusal,
  refusal,
  retryWithBackoff,
  withTimeout,
  type LayerCall,
  type PolicyDescription,
} from '../../src/index.js';
import { renderPrometheus } from '../../src/prometheus/index.js';
import { deferred } from '../fixtures/promises.js';

/** A policy whose hooks a test sets. */
class Probe extends LayerPolicy<unknown> {
  readonly description: PolicyDescription;
  constructor(
    readonly hooks: {
      enter?: (call: LayerCall) => unknown;
      onValue?: (token: unknown, value: unknown, call: LayerCall) => unknown;
      onError?: (token: unknown, error: unknown, call: LayerCall) => unknown;
      released?: (token: unknown) => void;
    },
    description: Partial<PolicyDescription> = {},
  ) {
    super();
    this.description = { kind: 'probe', name: 'probe', ...description };
  }
  protected override enter(call: LayerCall): unknown {
    return this.hooks.enter?.(call);
  }
  protected override onValue(token: unknown, value: unknown, call: LayerCall): unknown {
    return this.hooks.onValue === undefined ? value : this.hooks.onValue(token, value, call);
  }
  protected override onError(token: unknown, error: unknown, call: LayerCall): unknown {
    if (this.hooks.onError === undefined) throw error;
    return this.hooks.onError(token, error, call);
  }
  protected override released(token: unknown): void {
    this.hooks.released?.(token);
  }
  protected describe(): PolicyDescription {
    return this.description;
  }
}

describe('LayerPolicy: refusals', () => {
  it('what enter throws is a refusal, branded by the engine: a breaker around does not count it, a retry does not repeat it', async () => {
    const enter = vi.fn(() => {
      throw new Error('not now');
    });
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const stack = compose(breaker, retryWithBackoff({ baseDelay: 0 }), new Probe({ enter }));
    const error = await stack.execute(() => 'never').catch((thrown: unknown) => thrown);
    expect(isRefusal(error)).toBe(true);
    expect((error as Error).message).toBe('not now');
    expect(enter).toHaveBeenCalledTimes(1);
    expect(breaker.state).toBe('closed');
  });

  it('an error refused through a wait is branded too', async () => {
    const probe = new Probe({
      enter: (call) => {
        const admission = call.wait();
        queueMicrotask(() => admission.refuse(new Error('queue full')));
        return admission;
      },
    });
    const error = await probe.execute(() => 'never').catch((thrown: unknown) => thrown);
    expect(isRefusal(error)).toBe(true);
  });

  it('refusal() brands a frozen error without changing it', () => {
    const frozen = Object.freeze(new Error('frozen'));
    expect(refusal(frozen)).toBe(frozen);
    expect(isRefusal(frozen)).toBe(true);
    expect(isRefusal(new Error('plain'))).toBe(false);
    expect(isRefusal('a string')).toBe(false);
  });
});

describe('LayerPolicy: trackWork and released', () => {
  it('a policy that called trackWork and then refused gets released at once, with no token: no place is lost', async () => {
    const released = vi.fn();
    const probe = new Probe({
      enter: (call) => {
        call.trackWork();
        throw new Error('refused after all');
      },
      released,
    });
    await expect(probe.execute(() => 'never')).rejects.toThrow('refused after all');
    expect(released).toHaveBeenCalledWith(undefined);
    // Also where the work is tracked (a timeout in the stack can answer early).
    const tracked = vi.fn();
    const inner = new Probe({
      enter: (call) => {
        call.trackWork();
        throw new Error('refused');
      },
      released: tracked,
    });
    await expect(compose(withTimeout(1_000), inner).execute(() => 'never')).rejects.toThrow('refused');
    expect(tracked).toHaveBeenCalledTimes(1);
  });

  it('released runs once the work has really settled, after a timeout answered the caller', async () => {
    vi.useFakeTimers();
    try {
      const released = vi.fn();
      const probe = new Probe({ enter: (call) => (call.trackWork(), 'token'), released });
      const work = deferred<string>();
      const call = compose(withTimeout(10), probe).execute(() => work.promise);
      const rejected = expect(call).rejects.toThrow('timed out');
      await vi.advanceTimersByTimeAsync(10);
      await rejected;
      expect(released).not.toHaveBeenCalled();
      work.resolve('late');
      await vi.advanceTimersByTimeAsync(0);
      expect(released).toHaveBeenCalledWith('token');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('LayerPolicy: the handle', () => {
  it('is valid only while its hook runs, and says so', async () => {
    let kept: LayerCall | undefined;
    const probe = new Probe({ enter: (call) => void (kept = call) });
    await probe.execute(() => 1);
    expect(() => kept?.attempt).toThrow('valid only while the hook that received it runs');
    expect(() => kept?.trackWork()).toThrow('can only be called in enter');
  });

  it('refuses openAbortScope to a policy that did not declare abortsWork', async () => {
    const probe = new Probe({ enter: (call) => call.openAbortScope() });
    const error = await probe.execute(() => 1).catch((thrown: unknown) => thrown);
    expect(String(error)).toContain('only a policy whose abortsWork is true');
  });
});

describe('LayerPolicy: descriptions', () => {
  it('refuses a counter or gauge that would overwrite a field of the snapshot, or another one', () => {
    const registry = new MetricsRegistry();
    const bad = (gauges: NonNullable<PolicyDescription['gauges']>) => new Probe({}, { gauges });
    const gauge = (field: string) => ({ field, prometheus: 'probe_x', otel: 'bulwark.probe.x', description: 'x', unit: '1', type: 'count' as const });
    expect(() => registry.track(bad([gauge('calls')]))).toThrow(new TypeError('track: the probe describes a counter or gauge named "calls"; each needs a field of its own, not one of "name", "kind", "calls", "successes", "failures", "rejections", "latency"'));
    expect(() => registry.track(bad([gauge('depth'), gauge('depth')]))).toThrow('named "depth"');
    expect(() => registry.track(bad([gauge('depth')]))).not.toThrow();
  });

  it('names a camelCase counter in snake case for Prometheus', async () => {
    const registry = new MetricsRegistry();
    let emit: (payload: unknown) => void = () => {};
    const probe = new Probe(
      {},
      {
        counters: [{ field: 'inFlightSaturations', event: 'saturated', unit: '{saturation}', description: 'Times the limit was reached.' }],
        on: (_event, listener) => {
          emit = listener;
          return () => {};
        },
      },
    );
    registry.track(probe);
    emit({});
    const text = renderPrometheus(registry);
    expect(text).toContain('# TYPE bulwark_in_flight_saturations_total counter');
    expect(text).toContain('bulwark_in_flight_saturations_total{policy="probe",kind="probe"} 1');
  });
});
