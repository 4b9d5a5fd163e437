/**
 * The event source of every policy, of the core and of the subpaths alike (the subpaths take
 * it from here, since the core exports only its types).
 */
import { reportCallbackError, watchReturned } from './report.js';
import { show } from './show.js';

/** A listener of one event. It may be `async`: a promise it returns that rejects is reported like a throw. */
export type Listener<Payload> = (payload: Payload) => void;

/** Removes the listener it was returned for; calling it again does nothing. */
export type Unsubscribe = () => void;

/**
 * Reports an error thrown by a listener without letting it reach the call that emitted the event.
 */
export function reportListenerError(event: string, error: unknown): void {
  reportCallbackError(listenerOf(event), error);
}

/** `a "retry" listener`, `an "injected" listener`: how a report names the listener that failed. */
function listenerOf(event: string): string {
  return `${/^[aeiou]/i.test(event) ? 'an' : 'a'} "${event}" listener`;
}

/**
 * A small typed event source. Listener lists are replaced, never mutated, on subscribe and
 * unsubscribe, so a listener that unsubscribes during an emit does not disturb the others.
 * Callers test `has(event)` before building a payload, so an event nobody listens to costs
 * one property read.
 */
export class Emitter<Events extends object> {
  private readonly listeners: { [K in keyof Events]?: readonly Listener<Events[K]>[] | undefined } = {};
  private readonly known: readonly (keyof Events)[];

  constructor(known: readonly (keyof Events)[]) {
    this.known = known;
  }

  has<K extends keyof Events>(event: K): boolean {
    // Stryker disable next-line ConditionalExpression: every caller only guards building a payload with it, and emit() with no listener returns at once.
    return this.listeners[event] !== undefined;
  }

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): Unsubscribe {
    if (!this.known.includes(event)) {
      throw new TypeError(`Unknown event ${JSON.stringify(event)}: expected one of ${this.known.map((name) => JSON.stringify(name)).join(', ')}`);
    }
    if (typeof listener !== 'function') {
      throw new TypeError(`The listener for ${JSON.stringify(event)} must be a function, got ${show(listener)}`);
    }
    const entry: Listener<Events[K]> = (payload) => listener(payload); // a distinct identity, so the same function can subscribe twice
    this.listeners[event] = [...(this.listeners[event] ?? []), entry];
    return () => {
      const current = this.listeners[event];
      if (current === undefined) return;
      const remaining = current.filter((candidate) => candidate !== entry);
      // Stryker disable next-line ConditionalExpression: an empty list instead of undefined only makes has() answer true, which (see has()) no caller can tell.
      this.listeners[event] = remaining.length === 0 ? undefined : remaining;
    };
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const current = this.listeners[event];
    if (current === undefined) return;
    for (const listener of current) {
      try {
        // An async listener's promise is watched: a rejection is reported like a throw.
        watchReturned(listenerOf(String(event)), listener(payload));
      } catch (error) {
        reportListenerError(String(event), error);
      }
    }
  }
}
