/**
 * The events of a bulwark/redis policy. The core's emitter is not exported and a subpath takes
 * only the public API and src/shared/ from the core, so it has its own: listeners replaced
 * (never mutated) on subscribe and unsubscribe, a throwing or rejecting listener reported and
 * never given to a call.
 */
import type { Listener, Unsubscribe } from 'bulwark';
import { reportCallbackError, watchReturned } from '../shared/report.js';
import { show } from '../shared/show.js';

export class Events<Map extends object> {
  private readonly listeners = new globalThis.Map<keyof Map, readonly Listener<never>[]>();

  constructor(private readonly names: readonly (keyof Map)[]) {}

  /** True when someone listens to `event`: its payload is built only then. */
  has(event: keyof Map): boolean {
    return this.listeners.has(event);
  }

  on<K extends keyof Map>(event: K, listener: Listener<Map[K]>): Unsubscribe {
    if (!this.names.includes(event)) {
      throw new TypeError(`Unknown event ${JSON.stringify(event)}: expected one of ${this.names.map((name) => JSON.stringify(name)).join(', ')}`);
    }
    if (typeof listener !== 'function') throw new TypeError(`The listener for ${JSON.stringify(event)} must be a function, got ${show(listener)}`);
    const entry: Listener<Map[K]> = (payload) => listener(payload); // its own identity: one function may subscribe twice
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), entry as Listener<never>]);
    return () => {
      const remaining = (this.listeners.get(event) ?? []).filter((candidate) => candidate !== entry);
      if (remaining.length === 0) this.listeners.delete(event);
      else this.listeners.set(event, remaining);
    };
  }

  emit<K extends keyof Map>(event: K, payload: Map[K]): void {
    const current = this.listeners.get(event) as readonly Listener<Map[K]>[] | undefined;
    if (current === undefined) return;
    for (const listener of current) {
      const what = `a ${JSON.stringify(event)} listener`;
      try {
        watchReturned(what, listener(payload));
      } catch (error) {
        reportCallbackError(what, error);
      }
    }
  }
}
