import { defineConfig, mergeConfig } from 'vitest/config';
import stryker from './vitest.stryker.config.js';

/**
 * vitest.stryker.config.ts without the tests of bulwark/redis and bulwark/fetch: for mutation
 * runs of the core policies while those subpaths' tests are being written (a failing test
 * stops Stryker's initial run). Pass it with `--vitest.configFile vitest.stryker.local.config.ts`.
 */
export default mergeConfig(stryker, defineConfig({
  test: { exclude: ['test/redis/**', 'test/fetch/**'] },
}));
