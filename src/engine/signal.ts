/**
 * Caller signals: recognising one, and listening to it with one listener however many calls
 * share it.
 */

/** True for an AbortSignal of this realm or another (a polyfill, another window): checked by shape. */
export function isAbortSignal(value: unknown): value is AbortSignal {
  return typeof value === 'object' && value !== null && typeof (value as AbortSignal).aborted === 'boolean' && typeof (value as AbortSignal).addEventListener === 'function';
}

/**
 * Signals bulwark handed out as `ctx.signal` and aborted by their own abort scope (a timeout
 * that expired), not by a caller: passed by hand to an inner `execute`, their abort is a
 * failure of the dependency there, not a caller giving up.
 */
export const abortedByScope: WeakSet<AbortSignal> = new WeakSet<AbortSignal>();

/** The calls waiting on one caller signal, behind the one listener bulwark adds to it. */
interface SignalSubscribers {
  readonly callbacks: Set<() => void>;
  readonly dispatch: () => void;
}

const subscribersBySignal = new WeakMap<AbortSignal, SignalSubscribers>();

/**
 * Runs `callback` when `signal` aborts; returns the function that unsubscribes. However many
 * calls share one signal, it carries a single listener of bulwark's, removed with the last
 * call, so a signal shared by hundreds of concurrent calls raises no
 * MaxListenersExceededWarning (cockatiel #69, p-retry #71).
 */
export function onAbort(signal: AbortSignal, callback: () => void): () => void {
  let subscribers = subscribersBySignal.get(signal);
  if (subscribers === undefined) {
    const callbacks = new Set<() => void>();
    const dispatch = (): void => {
      subscribersBySignal.delete(signal);
      for (const waiting of callbacks) waiting();
      callbacks.clear();
    };
    subscribers = { callbacks, dispatch };
    subscribersBySignal.set(signal, subscribers);
    signal.addEventListener('abort', dispatch, { once: true });
  }
  const { callbacks, dispatch } = subscribers;
  callbacks.add(callback);
  return () => {
    if (!callbacks.delete(callback) || callbacks.size > 0) return;
    signal.removeEventListener('abort', dispatch);
    // Stryker disable next-line ConditionalExpression: only dispatch replaces the entry, and it empties the old set first, so an old unsubscribe returns above.
    if (subscribersBySignal.get(signal) === subscribers) subscribersBySignal.delete(signal);
  };
}
