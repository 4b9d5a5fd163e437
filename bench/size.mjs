// What each way of importing bulwark adds to a user's bundle: the built ESM entry bundled by
// esbuild with tree shaking, minified, then gzipped (level 9), as a bundler ships it. Run it with
// `npm run size` (after a build); test/size.test.ts holds every row to its budget in `npm test`.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Each row: what a user imports, and the most it may weigh, in bytes, minified and gzipped:
 * what it weighs now with a margin of about 4 %, so that growth fails `npm test` and has to
 * be argued. `goal` is where the row should get to (the per-policy 4 KB, five primitives 9 KB
 * and whole core 13 KB of the package's size budget); the engine alone (`compose`) is most of
 * every row today. A policy added later states its own row.
 */
export const BUDGETS = [
  { name: 'compose alone (the engine)', code: "export { compose } from 'bulwark'", budget: 6_050 },
  { name: 'CircuitBreaker alone', code: "export { CircuitBreaker } from 'bulwark'", budget: 13_500, goal: 4 * 1024 },
  { name: 'retryWithBackoff alone', code: "export { retryWithBackoff } from 'bulwark'", budget: 9_200, goal: 4 * 1024 },
  { name: 'Bulkhead alone', code: "export { Bulkhead } from 'bulwark'", budget: 7_900, goal: 4 * 1024 },
  { name: 'withTimeout alone', code: "export { withTimeout } from 'bulwark'", budget: 7_700, goal: 4 * 1024 },
  { name: 'RateLimiter alone', code: "export { RateLimiter } from 'bulwark'", budget: 9_900, goal: 4 * 1024 },
  { name: 'hedge alone', code: "export { hedge } from 'bulwark'", budget: 9_200, goal: 4 * 1024 },
  { name: 'RetryBudget alone (no engine)', code: "export { RetryBudget } from 'bulwark'", budget: 3_050 },
  { name: 'withFallback alone', code: "export { withFallback } from 'bulwark'", budget: 7_500, goal: 4 * 1024 },
  {
    name: 'the five primitives and compose',
    code: "export { compose, CircuitBreaker, retryWithBackoff, Bulkhead, withTimeout, withFallback } from 'bulwark'",
    budget: 17_650,
    goal: 9 * 1024,
  },
  { name: 'the whole core', code: "export * from 'bulwark'", budget: 28_100, goal: 13 * 1024 },
  { name: 'bulwark/health', code: "export * from 'bulwark/health'", budget: 5_100 },
  { name: 'bulwark/prometheus', code: "export * from 'bulwark/prometheus'", budget: 3_850 },
  { name: 'bulwark/otel', code: "export * from 'bulwark/otel'", budget: 2_900 },
  { name: 'bulwark/chaos (with the engine it extends)', code: "export * from 'bulwark/chaos'", budget: 9_050 },
  { name: 'bulwark/fetch (with the policies it composes)', code: "export * from 'bulwark/fetch'", budget: 26_700 },
  { name: 'RedisCircuitBreaker (with the CircuitBreaker it falls back to)', code: "export { RedisCircuitBreaker } from 'bulwark/redis'", budget: 23_100 },
  { name: 'RedisRateLimiter (with the RateLimiter it falls back to)', code: "export { RedisRateLimiter } from 'bulwark/redis'", budget: 14_150 },
  { name: 'RedisBulkhead (with the Bulkhead it falls back to)', code: "export { RedisBulkhead } from 'bulwark/redis'", budget: 11_800 },
  { name: 'bulwark/redis (with the breaker, limiter and bulkhead it falls back to)', code: "export * from 'bulwark/redis'", budget: 29_600 },
];

/**
 * `bulwark` and its subpaths resolved to the built ESM files, as a bundler resolves the exports
 * map, with the package's `sideEffects: false`: a module nothing is imported from is dropped.
 */
const builtEntries = {
  name: 'built-bulwark',
  setup(plugin) {
    plugin.onResolve({ filter: /^bulwark(\/(health|prometheus|otel|chaos|fetch|redis))?$/ }, ({ path }) => ({
      path: `${root}dist/${path === 'bulwark' ? 'index' : path.slice('bulwark/'.length)}.js`,
      sideEffects: false,
    }));
  },
};

/** Bytes of `code` bundled, minified and gzipped. */
export async function measure(code) {
  const result = await build({
    stdin: { contents: code, resolveDir: root, loader: 'js' },
    bundle: true,
    minify: true,
    treeShaking: true,
    format: 'esm',
    platform: 'neutral',
    write: false,
    plugins: [builtEntries],
  });
  const bundle = result.outputFiles[0].contents;
  return { minified: bundle.byteLength, gzipped: gzipSync(bundle, { level: 9 }).byteLength };
}

/** Every row of {@link BUDGETS}, measured. */
export async function measureAll() {
  const rows = [];
  for (const row of BUDGETS) rows.push({ ...row, ...(await measure(row.code)) });
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
  console.log('| import | minified | min + gzip | budget | goal |\n|---|---:|---:|---:|---:|');
  for (const row of await measureAll()) {
    const goal = row.goal === undefined ? '' : `${kb(row.goal)}${row.gzipped > row.goal ? ' (not yet)' : ''}`;
    console.log(`| ${row.name} | ${kb(row.minified)} | ${kb(row.gzipped)} | ${kb(row.budget)}${row.gzipped > row.budget ? ' **over**' : ''} | ${goal} |`);
  }
}
