/**
 * Option checks of `bulwark/prometheus`, with the same messages as the core's; the ones the
 * subpaths share are in `../shared/validate.ts`.
 */

import { options, show } from '../shared/validate.js';

export { options, show };

/** A URL path the handler answers on: a string that starts with `/`, without query or fragment. */
export function path(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${show(value)}`);
  if (!value.startsWith('/') || value.includes('?') || value.includes('#')) {
    throw new RangeError(`${name} must be a path that starts with "/" and has no query or fragment, got ${show(value)}`);
  }
  return value;
}
