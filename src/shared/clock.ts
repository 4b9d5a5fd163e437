/**
 * The source of time for every policy: reading the time and arming timers.
 *
 * Pass your own to a policy's `clock` option to drive it from a test, or to run it on a
 * runtime with its own timers. `now()` returns epoch milliseconds, like `Date.now()`.
 */
export interface Clock {
  /** Milliseconds since the epoch, like `Date.now()`. */
  now(): number;
  /** Runs `callback` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer armed by `setTimeout`; a handle that already fired is ignored. */
  clearTimeout(handle: unknown): void;
}

/** Largest delay a JavaScript timer can wait (2³¹ − 1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_DELAY = 2_147_483_647;

/**
 * The default clock. It looks up `Date.now`, `setTimeout` and `clearTimeout` on
 * `globalThis` at every call rather than capturing them at import, so fake timers installed
 * after bulwark was loaded (`vi.useFakeTimers()`, @sinonjs/fake-timers) still drive it —
 * capturing them at import is what broke fake timers in p-timeout (#16).
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};
