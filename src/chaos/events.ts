/**
 * The `injected` event of a chaos policy. The core's emitter is not exported, and this
 * subpath takes only the public API and src/shared/ from the core, so it has its own: one
 * event, listeners replaced (never mutated) on subscribe and unsubscribe, a throwing or
 * rejecting listener reported and never given to the call.
 */
import type { Listener, Unsubscribe } from 'bulwark';
import { reportCallbackError, watchReturned } from '../shared/report.js';
import { show } from '../shared/show.js';

/** The events of one chaos policy: `injected` only. */
export class InjectedEvent<Payload> {
  private listeners: readonly Listener<Payload>[] | undefined = undefined;

  /** True when someone listens: the payload is built only then. */
  get heard(): boolean {
    return this.listeners !== undefined;
  }

  on(event: string, listener: Listener<Payload>): Unsubscribe {
    if (event !== 'injected') throw new TypeError(`Unknown event ${JSON.stringify(event)}: expected one of "injected"`);
    if (typeof listener !== 'function') throw new TypeError(`The listener for "injected" must be a function, got ${show(listener)}`);
    const entry: Listener<Payload> = (payload) => listener(payload); // its own identity: one function may subscribe twice
    this.listeners = [...(this.listeners ?? []), entry];
    return () => {
      const remaining = (this.listeners ?? []).filter((candidate) => candidate !== entry);
      this.listeners = remaining.length === 0 ? undefined : remaining;
    };
  }

  emit(payload: Payload): void {
    const current = this.listeners;
    if (current === undefined) return;
    for (const listener of current) {
      try {
        watchReturned('an "injected" listener', listener(payload));
      } catch (error) {
        reportCallbackError('an "injected" listener', error);
      }
    }
  }
}
