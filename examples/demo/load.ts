/**
 * The shop's traffic: calls arrive at a steady rate per dependency whatever the dependency
 * does (open loop), as requests from users do. A slow dependency therefore piles calls up,
 * which is what bulkheads and timeouts are for. The rate of a dependency may change while
 * the load runs (the scenario's rush), and the arrivals follow it.
 */
import type { Dependency } from './stacks.js';

/** Traffic in progress. */
export interface Load {
  /** Calls started and not settled yet. */
  readonly inFlight: number;
  /** Calls that rejected although the run was not interrupted (a stack let an error through). */
  readonly unexpected: number;
  /** Starts no more calls; resolves when every call started has settled. */
  stop(): Promise<void>;
}

/** How often arrivals are checked; calls due in between start together. */
const ARRIVAL_STEP_MS = 10;

/**
 * Starts calling each dependency `rateOf(dependency)` times per second (read at every step;
 * `dependency.rate` by default). `interrupt` is passed to every call as the caller's signal:
 * aborting it ends the calls in flight at once.
 */
export function startLoad(dependencies: readonly Dependency[], interrupt: AbortSignal, rateOf: (dependency: Dependency) => number = (dependency) => dependency.rate): Load {
  let last = performance.now();
  /** Calls due per dependency since the start, fractions included: the rate integrated over time. */
  const due = dependencies.map(() => 0);
  const issued = dependencies.map(() => 0);
  const pending = new Set<Promise<void>>();
  let unexpected = 0;
  let nextId = 1;

  const launch = (dependency: Dependency): void => {
    const call = dependency.call(nextId++, interrupt).then(
      () => undefined,
      () => {
        if (!interrupt.aborted) unexpected++;
      },
    );
    const settled = call.finally(() => pending.delete(settled));
    pending.add(settled);
  };

  const arrive = (): void => {
    const now = performance.now();
    const step = (now - last) / 1000;
    last = now;
    dependencies.forEach((dependency, index) => {
      const rate = rateOf(dependency);
      due[index] = (due[index] ?? 0) + step * rate;
      const late = Math.floor(due[index] ?? 0) - (issued[index] ?? 0);
      // After a stall of the event loop, start at most 100 ms worth of calls at once.
      const starting = Math.min(late, Math.ceil(rate / 10));
      for (let i = 0; i < starting; i++) launch(dependency);
      issued[index] = (issued[index] ?? 0) + Math.max(late, 0);
    });
  };
  const timer = setInterval(arrive, ARRIVAL_STEP_MS);

  return {
    get inFlight() {
      return pending.size;
    },
    get unexpected() {
      return unexpected;
    },
    async stop() {
      clearInterval(timer);
      while (pending.size > 0) await Promise.all(pending);
    },
  };
}
