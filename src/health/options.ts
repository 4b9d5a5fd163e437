/**
 * The option checks of `bulwark/health`: the shared ones, and the two durations its timeouts
 * and cache take. `cacheTtl` is only compared with the clock, never waited on by a timer, so
 * it has no upper bound.
 */
import { reportUncaught } from '../shared/report.js';
import { MAX_TIMER_DELAY } from '../shared/clock.js';
import { boolean, clock, options, show } from '../shared/validate.js';

export { systemClock as defaultClock } from '../shared/clock.js';
export { boolean, clock, options, show };

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

/**
 * Reports an error that must not break a probe (a throwing `verbose` predicate): through
 * `reportError` where the runtime has it, else `console.error`, like the core's listeners.
 */
export function reportError(what: string, error: unknown): void {
  reportUncaught(`bulwark/health: ${what} threw`, error);
}
