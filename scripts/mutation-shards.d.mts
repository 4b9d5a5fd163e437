/** Types of scripts/mutation-shards.mjs, for its test. */
export interface Shard {
  /** The job's name, and its artifact's: `mutation-<name>`. */
  name: string;
  /** Globs of the files it mutates, from the repository's root. */
  mutate: string[];
}
export const SHARDS: readonly Shard[];
export function matchesGlob(glob: string, file: string): boolean;
export function shardsOf(file: string): string[];
export function matrix(): { include: { name: string; mutate: string }[] };
export function missingReports(dir: string): string[];
