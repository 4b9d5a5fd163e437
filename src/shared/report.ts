/**
 * How bulwark reports an error that must not reach the call it happened in (a throwing
 * listener, a broken metrics hook), and how it watches what a user's callback returns. It
 * imports nothing, so the core and the subpath entries share it without taking any of the
 * core's code. Nothing here is part of the public API.
 */

/**
 * Reports an error without letting it reach the call it happened in: a broken metrics hook
 * must not fail a payment. `reportError` (browsers, Deno, Bun) dispatches it as an uncaught
 * error event; elsewhere it goes to `console.error` after `message`.
 */
export function reportUncaught(message: string, error: unknown): void {
  const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
  if (typeof report === 'function') {
    report(error);
  } else {
    console.error(message, error);
  }
}

/** Reports an error a user's callback (`what`: a listener, a logger, a predicate) threw or rejected with. */
export function reportCallbackError(what: string, error: unknown): void {
  reportUncaught(`bulwark: ${what} failed`, error);
}

/** True for a promise or any other object with a `then` method; a `then` getter that throws counts as one. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  try {
    return typeof (value as { then?: unknown }).then === 'function';
  } catch {
    return true;
  }
}

/**
 * Watches what a user's callback returned, when its result is otherwise ignored: a promise
 * (an `async` listener) that rejects is reported like a callback that throws. Left alone it
 * would be an unhandled rejection, which ends a Node process by default.
 */
export function watchReturned(what: string, returned: unknown): void {
  if (!isThenable(returned)) return;
  try {
    (returned as PromiseLike<unknown>).then(undefined, (error: unknown) => reportCallbackError(what, error));
  } catch (thrown) {
    reportCallbackError(what, thrown);
  }
}

/**
 * The answer of a predicate that must decide at once (`isFailure`, `retryOn`, `handles`): a
 * promise cannot be read in time, and a pending promise is truthy, so it would silently count
 * as "yes". It is watched (its rejection is reported, never unhandled) and refused with a
 * `TypeError` saying so.
 */
export function synchronousAnswer(what: string, answer: unknown): unknown {
  if (!isThenable(answer)) return answer;
  watchReturned(what, answer);
  throw new TypeError(`${what} must return its answer synchronously, got a promise (an async function?)`);
}
