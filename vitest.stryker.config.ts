import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The unit tests as Stryker runs them for each mutant: the tests of src/ only. Type tests, the
 * examples (the demo runs for seconds) and the tests of the packed package and of other
 * runtimes (they read dist/, which a mutant never reaches) only slow every mutant down.
 */
export default defineConfig({
  resolve: {
    alias: [
      { find: /^bulwark$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^bulwark\/(health|prometheus|otel|chaos|fetch|redis)$/, replacement: fileURLToPath(new URL('./src/$1/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/package*.test.ts', 'test/runtimes.test.ts', 'test/size.test.ts', 'test/docs-*.test.ts', 'test/mutation-*.test.ts', '**/node_modules/**'],
    testTimeout: 20_000,
  },
});
