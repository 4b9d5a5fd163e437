/**
 * The events of a resilient fetch. The core's emitter is not exported, and this subpath takes
 * only the public API and src/shared/ from the core, so it has its own: listener lists replaced
 * (never mutated) on subscribe and unsubscribe, a throwing or rejecting listener reported and
 * never given to the call.
 */
import type { Listener, Unsubscribe } from 'bulwark';
import { reportCallbackError, watchReturned } from '../shared/report.js';
import { show } from '../shared/show.js';

/** Events of one client, or of one origin's part of it. */
export interface ResilientFetchEvents {
  /**
   * A call answered with a response (any status, a transient one included): its method, origin
   * (never its path or query string) and status, and the attempts it took.
   */
  response: { readonly method: string; readonly origin: string; readonly status: number; readonly attempts: number };
  /**
   * A call ended badly: with a transient status (returned, or thrown as an `HttpError`) after
   * its retries, or with an error (a network error, a timeout, an open circuit). `status` is
   * set for a response, `error` for an error. Not emitted for a caller's abort.
   */
  requestFailed: {
    readonly method: string;
    readonly origin: string;
    readonly attempts: number;
    readonly status: number | undefined;
    readonly error: unknown;
  };
}

export const EVENT_NAMES: readonly (keyof ResilientFetchEvents)[] = ['response', 'requestFailed'];

/** A small typed event source; `has(event)` is tested before a payload is built. */
export class FetchEmitter {
  private readonly listeners: { [K in keyof ResilientFetchEvents]?: readonly Listener<ResilientFetchEvents[K]>[] | undefined } = {};

  has(event: keyof ResilientFetchEvents): boolean {
    return this.listeners[event] !== undefined;
  }

  on<K extends keyof ResilientFetchEvents>(event: K, listener: Listener<ResilientFetchEvents[K]>): Unsubscribe {
    if (!EVENT_NAMES.includes(event)) {
      throw new TypeError(`Unknown event ${show(event)}: expected one of ${EVENT_NAMES.map((name) => JSON.stringify(name)).join(', ')}`);
    }
    if (typeof listener !== 'function') throw new TypeError(`The listener for ${JSON.stringify(event)} must be a function, got ${show(listener)}`);
    const entry: Listener<ResilientFetchEvents[K]> = (payload) => listener(payload); // its own identity: one function may subscribe twice
    (this.listeners[event] as readonly Listener<ResilientFetchEvents[K]>[] | undefined) = [...((this.listeners[event] as readonly Listener<ResilientFetchEvents[K]>[] | undefined) ?? []), entry];
    return () => {
      const remaining = ((this.listeners[event] as readonly Listener<ResilientFetchEvents[K]>[] | undefined) ?? []).filter((candidate) => candidate !== entry);
      (this.listeners[event] as readonly Listener<ResilientFetchEvents[K]>[] | undefined) = remaining.length === 0 ? undefined : remaining;
    };
  }

  emit<K extends keyof ResilientFetchEvents>(event: K, payload: ResilientFetchEvents[K]): void {
    const current = this.listeners[event] as readonly Listener<ResilientFetchEvents[K]>[] | undefined;
    if (current === undefined) return;
    for (const listener of current) {
      try {
        watchReturned(`a "${event}" listener`, listener(payload));
      } catch (error) {
        reportCallbackError(`a "${event}" listener`, error);
      }
    }
  }
}
