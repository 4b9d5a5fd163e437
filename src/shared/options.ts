/**
 * The check every options object goes through, in the core and in the subpath entries alike:
 * it must be a plain object, and every key must be one the owner knows. A misspelt option
 * (`failureTreshold`) or another library's name for it (p-retry's `retries`) would otherwise
 * be ignored without a word, and the policy would run on its defaults. This file imports only
 * `show.ts`, so the subpaths share it without taking any of the core's code. Nothing here is
 * part of the public API.
 */
import { show } from './show.js';

/**
 * What other libraries call an option, by the name bulwark gives it: users switching from
 * p-retry, cockatiel, opossum or p-limit type the names they know.
 */
export type PeerNames = Readonly<Record<string, string>>;

/**
 * Returns `value` (`{}` for `undefined`) once it is a plain object whose keys are all in
 * `known`; throws a `TypeError` naming the first unknown key, the known option it is closest
 * to (or stands for, in `peerNames`), and every known option.
 */
export function options<T extends object>(owner: string, value: T | undefined, known: readonly (keyof T & string)[], peerNames?: PeerNames): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${owner} options must be an object, got ${show(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!(known as readonly string[]).includes(key)) throw new TypeError(unknownOption(owner, key, known, peerNames));
  }
  return value;
}

function unknownOption(owner: string, key: string, known: readonly string[], peerNames: PeerNames | undefined): string {
  const peer = peerNames !== undefined && Object.hasOwn(peerNames, key) ? peerNames[key] : undefined;
  const nearest = peer ?? closest(key, known);
  const hint = nearest === undefined ? '' : peer === undefined ? ` (did you mean ${JSON.stringify(nearest)}?)` : ` (another library's name: bulwark's is ${nearest})`;
  return `${owner} has no option ${JSON.stringify(key)}${hint}; known options: ${known.map((name) => JSON.stringify(name)).join(', ')}`;
}

/**
 * The known key nearest to `key` in edit distance, ignoring case, when it is near enough to
 * be a slip: at most a third of the longer name's letters apart (`maxQeue` → `maxQueue`,
 * `retries` → `maxRetries`, `maxEntry` → `maxEntries`).
 */
function closest(key: string, known: readonly string[]): string | undefined {
  const typed = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(typed, candidate.toLowerCase());
    if (distance < bestDistance && distance <= Math.max(1, Math.floor(Math.max(typed.length, candidate.length) / 3))) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance: insertions, deletions and substitutions of one letter. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, at) => at);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(substitution, (previous[j] as number) + 1, (current[j - 1] as number) + 1));
    }
    previous = current;
  }
  return previous[b.length] as number;
}
