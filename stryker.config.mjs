// Mutation testing of src/ with StrykerJS: `npm run test:mutation` for all of src/, or
// `npm run build && npx stryker run --mutate 'src/engine/**/*.ts'` for one folder (the engine: about 15 minutes on 2 cores; the tests of the errors read dist/).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts' },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  mutate: ['src/**/*.ts'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // Not copied into the sandbox: reports, and the sandboxes of other runs (a run given its own
  // tempDirName, to run beside another), which change while being copied.
  ignorePatterns: ['/reports', '/.stryker-tmp*'],
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  timeoutMS: 10_000,
  // Every file of src/ at 95 % or more: Stryker fails the run under it, and scripts/mutation-score.mjs fails any file under it.
  thresholds: { high: 95, low: 90, break: 95 },
};
