/** Small helpers the bulwark/redis policies share. */
import * as validate from '../shared/validate.js';

/** A finite duration in ms > 0, or a `TypeError`/`RangeError` naming the option and the value. */
export function positive(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${validate.show(value)}`);
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a finite duration in ms > 0, got ${validate.show(value)}`);
  return value;
}
