/**
 * Option checks shared by every policy, so each bad value gets the same kind of message:
 * the option's full name and the value that was given.
 */
import type { Clock } from './clock.js';
import { MAX_TIMER_DELAY } from './clock.js';
import { options, type PeerNames } from './options.js';
import { show } from './show.js';

export { options, show, type PeerNames };

function requireNumber(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${show(value)}`);
  if (Number.isNaN(value)) throw new RangeError(`${name} must be a number, got NaN`);
  return value;
}

/** A whole number ≥ `min`, or `Infinity` when `infinite` allows it. */
export function count(name: string, value: unknown, min: number, infinite = false): number {
  const n = requireNumber(name, value);
  if (n === Infinity && infinite) return n;
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`${name} must be a whole number ≥ ${min}${infinite ? ' or Infinity' : ''}, got ${show(value)}`);
  }
  return n;
}

export { MAX_TIMER_DELAY };

/** A duration in ms: finite, ≥ 0 and no longer than a timer can wait, or `Infinity` when `infinite` allows it. */
export function duration(name: string, value: unknown, infinite = false): number {
  const n = requireNumber(name, value);
  if (n === Infinity && infinite) return n;
  if (!(n >= 0) || !Number.isFinite(n) || n > MAX_TIMER_DELAY) {
    throw new RangeError(`${name} must be a duration in ms from 0 to ${MAX_TIMER_DELAY}${infinite ? ' or Infinity' : ''}, got ${show(value)}`);
  }
  return n;
}

/** A span of time in ms that no timer waits for (compared with a clock only): ≥ 0, finite or `Infinity`. */
export function span(name: string, value: unknown): number {
  const n = requireNumber(name, value);
  if (!(n >= 0)) throw new RangeError(`${name} must be a duration in ms ≥ 0 or Infinity, got ${show(value)}`);
  return n;
}

/** A finite number ≥ `min`. */
export function finite(name: string, value: unknown, min: number): number {
  const n = requireNumber(name, value);
  if (!Number.isFinite(n) || n < min) throw new RangeError(`${name} must be a finite number ≥ ${min}, got ${show(value)}`);
  return n;
}

export function fn<F>(name: string, value: F): F {
  if (typeof value !== 'function') throw new TypeError(`${name} must be a function, got ${show(value)}`);
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new (typeof value === 'string' ? RangeError : TypeError)(
      `${name} must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}, got ${show(value)}`,
    );
  }
  return value as T;
}

export function clock<C = Clock>(name: string, value: C): C {
  const candidate = value as { now?: unknown; setTimeout?: unknown; clearTimeout?: unknown } | null;
  if (
    typeof candidate !== 'object' || candidate === null ||
    typeof candidate.now !== 'function' || typeof candidate.setTimeout !== 'function' || typeof candidate.clearTimeout !== 'function'
  ) {
    throw new TypeError(`${name} must be a Clock with now(), setTimeout() and clearTimeout(), got ${show(value)}`);
  }
  return value;
}

export function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false, got ${show(value)}`);
  return value;
}

export function text(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${show(value)}`);
  return value;
}
