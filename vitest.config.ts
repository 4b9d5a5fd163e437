import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // examples/ import the library by its package name, as a user's code does.
  resolve: {
    alias: [
      { find: /^bulwark$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^bulwark\/(health|prometheus|otel|chaos|fetch|redis)$/, replacement: fileURLToPath(new URL('./src/$1/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './test/tsconfig.json',
    },
    testTimeout: 20_000,
  },
});
