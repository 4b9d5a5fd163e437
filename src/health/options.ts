/**
 * What every file of `bulwark/health` shares: option checks and the default clock. Type and
 * clock errors read like the core's; the duration ranges differ, as `cacheTtl` is only
 * compared with the clock, never waited on by a timer, so it has no upper bound. The health
 * entry takes nothing but types from the core, so no code of the core is bundled twice;
 * these few lines are the price.
 */
import type { Clock } from '../shared/clock.js';
import { reportUncaught } from '../shared/report.js';
import { options, show } from '../subpath-options.js';

/** Largest delay a JavaScript timer can wait (2³¹ − 1 ms); longer ones fire at once. */
const MAX_TIMER_DELAY = 2_147_483_647;

/**
 * The clock used when none is given. Like the core's `systemClock`, it looks up `Date.now`,
 * `setTimeout` and `clearTimeout` on `globalThis` at every call, so fake timers installed
 * after bulwark was loaded still drive it.
 */
export const defaultClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};


export { options, show };

/** A timeout in ms: finite, > 0 and no longer than a timer can wait. */
export function positiveDuration(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${show(value)}`);
  if (!(value > 0) || !Number.isFinite(value) || value > MAX_TIMER_DELAY) {
    throw new RangeError(`${name} must be a duration in ms greater than 0 and at most ${MAX_TIMER_DELAY}, got ${show(value)}`);
  }
  return value;
}

/** A duration in ms: finite and ≥ 0. */
export function duration(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${show(value)}`);
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a finite duration in ms ≥ 0, got ${show(value)}`);
  }
  return value;
}

export function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false, got ${show(value)}`);
  return value;
}

export function clock(name: string, value: unknown): Clock {
  const candidate = value as { now?: unknown; setTimeout?: unknown; clearTimeout?: unknown } | null;
  if (
    typeof candidate !== 'object' || candidate === null ||
    typeof candidate.now !== 'function' || typeof candidate.setTimeout !== 'function' || typeof candidate.clearTimeout !== 'function'
  ) {
    throw new TypeError(`${name} must be a Clock with now(), setTimeout() and clearTimeout(), got ${show(value)}`);
  }
  return value as Clock;
}

/**
 * Reports an error that must not break a probe (a throwing `verbose` predicate): through
 * `reportError` where the runtime has it, else `console.error`, like the core's listeners.
 */
export function reportError(what: string, error: unknown): void {
  reportUncaught(`bulwark/health: ${what} threw`, error);
}
