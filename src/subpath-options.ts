/**
 * Option checks shared by the subpath entries (`bulwark/health`, `bulwark/prometheus`), with
 * the same messages as the core's. The entries take nothing but types from the core (and
 * `show.ts`, which imports nothing), so no code of the core is bundled twice; the core never
 * imports this file.
 * @internal
 */

import { show } from './show.js';

export { show };

/**
 * An options object (or `undefined`), with no key outside `known`: a misspelt option
 * (`constLabels`) would otherwise be ignored without a word.
 */
export function options<T extends object>(name: string, value: T | undefined, known: readonly (keyof T & string)[]): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${name} options must be an object, got ${show(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!(known as readonly string[]).includes(key)) {
      throw new TypeError(`${name} has no option ${JSON.stringify(key)}; known options: ${known.map((k) => JSON.stringify(k)).join(', ')}`);
    }
  }
  return value;
}
