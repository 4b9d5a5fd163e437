/**
 * The shop's traffic: calls arrive at a steady rate per dependency whatever the dependency
 * does (open loop), as requests from users do. A slow dependency therefore piles calls up,
 * which is what bulkheads and timeouts are for.
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
 * Starts calling each dependency `dependency.rate` times per second. `interrupt` is passed to
 * every call as the caller's signal: aborting it ends the calls in flight at once.
 */
export function startLoad(dependencies: readonly Dependency[], interrupt: AbortSignal): Load {
  const started = performance.now();
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
    const elapsed = (performance.now() - started) / 1000;
    dependencies.forEach((dependency, index) => {
      const due = Math.floor(elapsed * dependency.rate) - (issued[index] ?? 0);
      // After a stall of the event loop, start at most 100 ms worth of calls at once.
      const now = Math.min(due, Math.ceil(dependency.rate / 10));
      for (let i = 0; i < now; i++) launch(dependency);
      issued[index] = (issued[index] ?? 0) + Math.max(due, 0);
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
