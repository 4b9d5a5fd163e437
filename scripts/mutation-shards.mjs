// The parts of src/ the weekly mutation workflow (.github/workflows/mutation.yml) mutates in
// parallel, one job each: a run of all of src/ takes hours, and a GitHub job stops at six.
// Every file of src/ belongs to exactly one shard (test/mutation-shards.test.ts checks it).
//   node scripts/mutation-shards.mjs              prints the jobs' matrix as JSON
//   node scripts/mutation-shards.mjs --check DIR  exits 1 naming each shard without
//                                                 DIR/mutation-<name>/mutation.json
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Roughly 2 000 mutants each (the Redis shard's are slower: its tests talk to redis-server). */
export const SHARDS = [
  { name: 'core', mutate: ['src/*.ts', 'src/engine/**/*.ts'] },
  { name: 'breakers-limits', mutate: ['src/circuit-breaker/**/*.ts', 'src/rate-limit/**/*.ts', 'src/shared/**/*.ts'] },
  { name: 'observability', mutate: ['src/health/**/*.ts', 'src/metrics/**/*.ts', 'src/prometheus/**/*.ts', 'src/otel/**/*.ts'] },
  { name: 'fetch-hedge-chaos', mutate: ['src/fetch/**/*.ts', 'src/hedge/**/*.ts', 'src/chaos/**/*.ts'] },
  { name: 'redis', mutate: ['src/redis/**/*.ts'] },
];

/** Whether `file` (a path from the repository's root, with `/`) matches `glob`: `*` and `**` only. */
export function matchesGlob(glob, file) {
  const pattern = glob
    .split('**/')
    .map((part) => part.split('*').map(escapeRegExp).join('[^/]*'))
    .join('(?:[^/]+/)*');
  return new RegExp(`^${pattern}$`).test(file);
}

/** The names of the shards whose globs match `file`. */
export function shardsOf(file) {
  return SHARDS.filter((shard) => shard.mutate.some((glob) => matchesGlob(glob, file))).map((shard) => shard.name);
}

/** The matrix of the workflow's mutation jobs: `--mutate` takes a comma-separated list. */
export function matrix() {
  return { include: SHARDS.map(({ name, mutate }) => ({ name, mutate: mutate.join(',') })) };
}

/** The shards with no report in `dir` (as actions/download-artifact lays them out). */
export function missingReports(dir) {
  return SHARDS.filter(({ name }) => !existsSync(join(dir, `mutation-${name}`, 'mutation.json'))).map(({ name }) => name);
}

function escapeRegExp(text) {
  return text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

function main(argv) {
  if (argv.length === 0) {
    console.log(JSON.stringify(matrix()));
    return;
  }
  if (argv[0] !== '--check' || argv.length !== 2) throw new TypeError(`usage: mutation-shards.mjs [--check DIR], got ${argv.join(' ')}`);
  const missing = missingReports(argv[1]);
  if (missing.length > 0) {
    console.error(`No report from shard(s) ${missing.join(', ')} in ${argv[1]}: their job failed before Stryker wrote one.`);
    process.exitCode = 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.slice(2));
